"""HTML reports: one self-contained page per run, and one page comparing strategies.

Each page is a single file that works offline: plotly.js is inlined once in the page head
and every figure is a ``<div>`` drawn by it. User-provided text (site name, session and
connector ids) is escaped with :func:`html.escape`.

Long runs stay light: time series are cut into buckets of consecutive steps before they
are plotted (at most :data:`MAX_POINTS` points per trace, :data:`MAX_HEATMAP_COLUMNS` heat
map columns, :data:`MAX_HEATMAP_ROWS` heat map rows). Currents keep the **maximum** of each
bucket, so peaks and limit violations are never hidden; limits keep the minimum; powers
the mean. The kernels (:func:`bucket_max`, :func:`bucket_min`, :func:`bucket_mean`,
:func:`group_max`) are pure functions on numpy arrays.

Times are plotted as wall-clock time in the scenario's zone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from evflex.sim.results import RECORD_TOL_A
from evflex.units import PHASE_NAMES

if TYPE_CHECKING:
    from evflex.sim.results import SimulationResult

#: Most points per line trace.
MAX_POINTS = 3000
#: Most time columns of the connector heat map.
MAX_HEATMAP_COLUMNS = 1500
#: Most rows of the connector heat map; beyond it connectors are merged by charger.
MAX_HEATMAP_ROWS = 200
#: Bucket lengths preferred when a run is downsampled (the first that is a whole number
#: of steps and long enough) [s].
ROUND_BUCKETS_S = (60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: Session scatter switches to WebGL above this many sessions.
WEBGL_MIN_SESSIONS = 5000

#: Label (with unit) and decimals of each KPI in the tables; unknown KPIs show their key.
KPI_LABELS: dict[str, tuple[str, int]] = {
    "sessions": ("Sessions", 0),
    "steps": ("Simulation steps", 0),
    "period_s": ("Step length [s]", 0),
    "energy_requested_kwh": ("Energy requested [kWh]", 1),
    "energy_delivered_kwh": ("Energy delivered [kWh]", 1),
    "energy_served_pct": ("Energy served [%]", 2),
    "sessions_fully_served_pct": ("Sessions fully served [%]", 1),
    "unmet_energy_kwh": ("Unmet energy [kWh]", 1),
    "peak_site_kw": ("Peak site power [kW]", 1),
    "peak_ev_kw": ("Peak EV power [kW]", 1),
    "max_phase_current_a": ("Max phase current [A]", 1),
    "grid_limit_a": ("Grid limit per phase (lowest) [A]", 1),
    "limit_violation_steps": ("Steps over a limit", 0),
    "max_overload_a": ("Max overload [A]", 2),
    "transient_overshoot_max_a": ("Max transient overshoot [A]", 2),
    "transient_overshoot_steps": ("Steps with a transient overshoot", 0),
    "base_load_over_limit_steps": ("Steps with the base load over the limit", 0),
    "phase_unbalance_max_a": ("Max phase unbalance [A]", 1),
    "ev_energy_by_phase_kwh": ("EV energy L1 / L2 / L3 [kWh]", 1),
    "switch_ons_per_session_mean": ("Switch-ons per session, mean", 2),
    "switch_ons_per_session_max": ("Switch-ons per session, max", 0),
    "phase_switches": ("Phase switches (3-to-1 and back)", 0),
    "wait_to_first_charge_max_min": ("Max wait to first charge [min]", 1),
    "sessions_never_charged": ("Sessions never charged", 0),
    "active_steps": ("Steps the controller ran", 0),
    "sim_wall_s": ("Simulation wall time [s]", 2),
}
#: KPIs shown in red when above zero.
VIOLATION_KPIS = ("limit_violation_steps", "max_overload_a")

_PHASE_COLORS = ("#8c564b", "#1f1f1f", "#7f7f7f")  # IEC 60446: brown, black, grey
_LIMIT_COLOR = "#d62728"
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_TEMPLATE = "plotly_white"
_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.bad { color: #c00; font-weight: bold; } td.best { color: #070; font-weight: bold; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.meta dt { font-weight: bold; } dl.meta dd { margin: 0; }
p.caption { font-size: 0.85em; color: #555; margin-top: 0; }
"""


# ---------------------------------------------------------------- downsampling kernels
def bucket_size(n_points: int, max_points: int, period_s: float | None = None) -> int:
    """Steps per bucket so that ``n_points`` steps make at most ``max_points`` buckets.

    With ``period_s`` [s], the size is rounded up to the first of :data:`ROUND_BUCKETS_S`
    that is a whole number of steps (e.g. 15 min rather than 14 min), when there is one.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    size = max(1, math.ceil(n_points / max_points))
    if size > 1 and period_s:
        for b_s in ROUND_BUCKETS_S:
            steps = b_s / period_s
            if steps >= size and steps == int(steps):
                return int(steps)
    return size


def _starts(n_points: int, size: int) -> np.ndarray:
    return np.arange(0, n_points, size)


def _reduce(ufunc: np.ufunc, values, times, max_points: int, period_s: float | None):
    v, t = np.asarray(values), np.asarray(times)
    if len(v) == 0:
        return t[:0], v[:0]
    size = bucket_size(len(v), max_points, period_s)
    if size == 1:
        return t, v
    return t[::size], ufunc.reduceat(v, _starts(len(v), size), axis=0)


def bucket_max(values, times, max_points: int, period_s: float | None = None):
    """Maximum of each bucket of consecutive steps, NaN ignored.

    Parameters
    ----------
    values : (N,) or (N, k) array
        Reduced along the first axis.
    times : (N,) array
        Time of each step; a bucket takes the time of its first step.
    max_points : int
        Most buckets to return.
    period_s : float, optional
        Step length [s]; rounds the bucket to a round duration (:func:`bucket_size`).

    Returns
    -------
    (times, values) of the buckets, ``times[::size]`` and ``(B,)`` or ``(B, k)``.
    """
    return _reduce(np.fmax, values, times, max_points, period_s)


def bucket_min(values, times, max_points: int, period_s: float | None = None):
    """Minimum of each bucket of consecutive steps, NaN ignored (see :func:`bucket_max`)."""
    return _reduce(np.fmin, values, times, max_points, period_s)


def bucket_mean(values, times, max_points: int, period_s: float | None = None):
    """Mean of each bucket of consecutive steps (see :func:`bucket_max`); the last bucket
    may hold fewer steps and is averaged over those."""
    v, t = np.asarray(values, dtype=np.float64), np.asarray(times)
    if len(v) == 0:
        return t[:0], v[:0]
    size = bucket_size(len(v), max_points, period_s)
    if size == 1:
        return t, v
    starts = _starts(len(v), size)
    counts = np.diff(np.append(starts, len(v))).reshape((-1,) + (1,) * (v.ndim - 1))
    return t[::size], np.add.reduceat(v, starts, axis=0) / counts


def row_groups(charger_of: np.ndarray, max_rows: int) -> np.ndarray:
    """Group label of each connector for a heat map of at most ``max_rows`` rows.

    One row per connector when they fit; else one per charger; else runs of consecutive
    chargers. ``charger_of`` (n,) is each connector's charger index, ascending.
    """
    charger_of = np.asarray(charger_of, dtype=np.int64)
    if len(charger_of) <= max_rows:
        return np.arange(len(charger_of))
    n_chargers = int(charger_of.max()) + 1
    return charger_of // max(1, math.ceil(n_chargers / max_rows))


def group_max(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum over the columns of each group, NaN ignored.

    Parameters
    ----------
    values : (N, n) array
    groups : (n,) int
        Group label of each column.

    Returns
    -------
    labels : (g,) the sorted group labels
    (N, g) array, column ``i`` the maximum over the columns labelled ``labels[i]``.
    """
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    if len(first) == 0:
        return g, np.asarray(values)[:, :0]
    return g[first], np.fmax.reduceat(np.asarray(values)[:, order], first, axis=1)


# ---------------------------------------------------------------- small helpers
def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _duration(seconds: float) -> str:
    """``900`` -> ``'15 min'``."""
    for unit_s, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= unit_s and seconds % unit_s == 0:
            return f"{int(seconds // unit_s)} {unit}"
    return f"{seconds:g} s"


def _plot_ms(index: pd.Index) -> np.ndarray:
    """Local wall-clock time as plotly date numbers [ms since 1970, zone dropped]."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.to_numpy().astype("datetime64[ms]").astype(np.int64).astype(np.float64)


def _bucket_note(n_points: int, max_points: int, period_s: float, how: str, what: str = "point") -> str:
    size = bucket_size(n_points, max_points, period_s)
    if size == 1:
        return f"One {what} per {_duration(period_s)} step."
    return f"Downsampled, each {what}: {how} over {_duration(size * period_s)}."


def _fmt(key: str, value) -> str:
    decimals = KPI_LABELS.get(key, ("", 2))[1]
    if isinstance(value, (list, tuple, np.ndarray)):
        return " / ".join(_fmt(key, v) for v in value)
    if isinstance(value, (bool, np.bool_)) or value is None:
        return _esc(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,d}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.{decimals}f}"
    return _esc(value)


def _label(key: str) -> str:
    return _esc(KPI_LABELS.get(key, (key, 2))[0])


def _is_violation(key: str, value) -> bool:
    return key in VIOLATION_KPIS and isinstance(value, (int, float, np.number)) and bool(value > 0)


def _figure(fig: go.Figure, div_id: str, caption: str = "") -> str:
    fig.update_layout(template=_TEMPLATE, margin=dict(l=60, r=20, t=50, b=40))
    height = fig.layout.height or 420
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_PLOTLY_CONFIG,
        default_width="100%",
        default_height=f"{height}px",
    )
    note = f'<p class="caption">{_esc(caption)}</p>' if caption else ""
    return f"<section>{body}{note}</section>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _meta(items: dict[str, str]) -> str:
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items.items())
    return f'<dl class="meta">{rows}</dl>'


def _window(result: SimulationResult) -> dict[str, str]:
    sim = result.scenario.simulation
    fmt = "%Y-%m-%d %H:%M %Z"
    start = sim.start.astimezone(sim.tz)
    end = datetime.fromtimestamp(sim.end_s, tz=sim.tz)
    return {"Step": _duration(result.period_s), "Start": start.strftime(fmt), "End": end.strftime(fmt)}


def _write(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- single-run figures
def _phase_figure(ts: pd.DataFrame, t_ms: np.ndarray, period_s: float) -> str:
    phase_cols = [f"{p.lower()}_a" for p in PHASE_NAMES]
    base_cols = [f"base_{p.lower()}_a" for p in PHASE_NAMES]
    phase_a = ts[phase_cols].to_numpy(np.float64)
    limit_a = ts["limit_a"].to_numpy(np.float64)
    t, phase_max = bucket_max(phase_a.astype(np.float32), t_ms, MAX_POINTS, period_s)
    _, base_max = bucket_max(ts[base_cols].to_numpy(np.float32), t_ms, MAX_POINTS, period_s)
    _, limit_min = bucket_min(limit_a.astype(np.float32), t_ms, MAX_POINTS, period_s)
    over = (phase_a.max(axis=1, initial=-np.inf) > limit_a + RECORD_TOL_A).astype(np.int8)
    _, over_any = bucket_max(over, t_ms, MAX_POINTS, period_s)
    fig = go.Figure()
    for p, name in enumerate(PHASE_NAMES):
        fig.add_trace(
            go.Scatter(
                x=t, y=phase_max[:, p], name=name, legendgroup=name, line=dict(color=_PHASE_COLORS[p], width=1.2)
            )
        )
    for p, name in enumerate(PHASE_NAMES):
        fig.add_trace(
            go.Scatter(
                x=t,
                y=base_max[:, p],
                name=f"base load {name}",
                legendgroup=name,
                line=dict(color=_PHASE_COLORS[p], width=1, dash="dot"),
            )
        )
    fig.add_trace(go.Scatter(x=t, y=limit_min, name="limit", line=dict(color=_LIMIT_COLOR, shape="hv", dash="dash")))
    hit = over_any.astype(bool)
    if hit.any():
        fig.add_trace(
            go.Scatter(
                x=t[hit],
                y=phase_max[hit].max(axis=1),
                name="above limit",
                mode="markers",
                marker=dict(color=_LIMIT_COLOR, symbol="x", size=7),
            )
        )
    fig.update_layout(
        title="Phase current at the grid connection [A]",
        height=460,
        xaxis_type="date",
        yaxis=dict(title="current [A]", hoverformat=".1f"),
        hovermode="x unified",
    )
    note = _bucket_note(len(ts), MAX_POINTS, period_s, "max (limit: min)")
    return _figure(
        fig, "phase-currents", "EVs settled at the end of each step plus the base load (building minus PV). " + note
    )


def _power_figure(ts: pd.DataFrame, t_ms: np.ndarray, period_s: float) -> str:
    series = (
        ("ev_power_kw", "EV", "#1f77b4", 1.2),
        ("building_power_kw", "building", "#7f7f7f", 1.2),
        ("pv_power_kw", "PV generation", "#bcbd22", 1.2),
        ("site_power_kw", "site total", "#111111", 1.8),
    )
    t, kw = bucket_mean(ts[[s[0] for s in series]].to_numpy(np.float64), t_ms, MAX_POINTS, period_s)
    kw = kw.astype(np.float32)
    fig = go.Figure()
    for k, (_, name, color, width) in enumerate(series):
        fig.add_trace(go.Scatter(x=t, y=kw[:, k], name=name, line=dict(color=color, width=width)))
    fig.update_layout(
        title="Site power [kW]",
        height=420,
        xaxis_type="date",
        yaxis=dict(title="power [kW]", hoverformat=".1f"),
        hovermode="x unified",
    )
    return _figure(
        fig,
        "site-power",
        "Site total = EV + building - PV, drawn from the grid positive. "
        + _bucket_note(len(ts), MAX_POINTS, period_s, "mean"),
    )


def _heatmap_figure(result: SimulationResult, ts: pd.DataFrame, t_ms: np.ndarray, period_s: float) -> str:
    topo = result.topology
    cols = [f"{c}_current_a" for c in topo.connector_ids]
    t, current = bucket_max(ts[cols].to_numpy(np.float32), t_ms, MAX_HEATMAP_COLUMNS, period_s)
    groups = row_groups(topo.charger_of, MAX_HEATMAP_ROWS)
    labels, current = group_max(np.asarray(current), groups)
    note = _bucket_note(len(ts), MAX_HEATMAP_COLUMNS, period_s, "max", "cell")
    if len(labels) == len(cols):
        names = list(topo.connector_ids)
    else:
        members = [np.flatnonzero(groups == g) for g in labels]
        ids = topo.charger_ids
        names = [
            ids[topo.charger_of[m[0]]]
            if topo.charger_of[m[0]] == topo.charger_of[m[-1]]
            else f"{ids[topo.charger_of[m[0]]]}..{ids[topo.charger_of[m[-1]]]}"
            for m in members
        ]
        note += " Rows: the maximum over the connectors of each charger or run of chargers."
    names = [_esc(n) for n in names]
    fig = go.Figure(
        go.Heatmap(
            x=t,
            y=names,
            z=np.asarray(current, dtype=np.float32).T,
            zmin=0.0,
            colorscale="Viridis",
            colorbar=dict(title="A"),
            hovertemplate="%{y}<br>%{x}<br>%{z:.1f} A<extra></extra>",
        )
    )
    height = int(np.clip(150 + 16 * len(names), 300, 1100))
    fig.update_layout(
        title="Connector current [A]",
        height=height,
        xaxis_type="date",
        yaxis=dict(type="category", autorange="reversed"),
    )
    return _figure(fig, "connector-heatmap", "Average per-phase current of each connector. " + note)


def _session_figure(sessions: pd.DataFrame) -> str:
    fig = go.Figure()
    scatter = go.Scattergl if len(sessions) > WEBGL_MIN_SESSIONS else go.Scatter
    for served, name, color in ((True, "fully served", "#2ca02c"), (False, "not fully served", "#ff7f0e")):
        s = sessions[sessions["fully_served"].astype(bool) == served]
        text = [f"{_esc(i)} on {_esc(c)}" for i, c in zip(s["session_id"], s["connector_id"], strict=True)]
        fig.add_trace(
            scatter(
                x=s["requested_kwh"].to_numpy(float),
                y=s["delivered_kwh"].to_numpy(float),
                mode="markers",
                name=name,
                text=text,
                customdata=s["served_pct"].to_numpy(float),
                marker=dict(color=color, size=6, opacity=0.7),
                hovertemplate="%{text}<br>requested %{x:.2f} kWh<br>delivered %{y:.2f} kWh"
                "<br>served %{customdata:.1f} %<extra></extra>",
            )
        )
    top = float(sessions["requested_kwh"].max()) if len(sessions) else 1.0
    fig.add_trace(
        go.Scatter(
            x=[0.0, top],
            y=[0.0, top],
            mode="lines",
            name="delivered = requested",
            line=dict(color="#999999", dash="dash"),
        )
    )
    fig.update_layout(
        title="Energy per session: delivered vs requested [kWh]",
        height=480,
        xaxis_title="requested [kWh]",
        yaxis_title="delivered [kWh]",
    )
    return _figure(
        fig, "session-energy", "One marker per session; below the dashed line the EV left with less than it asked for."
    )


def _histogram_bars(values: np.ndarray, bins) -> go.Bar:
    counts, edges = np.histogram(values, bins=bins)
    return go.Bar(
        x=(edges[:-1] + edges[1:]) / 2,
        y=counts,
        width=np.diff(edges),
        showlegend=False,
        marker_color="#1f77b4",
        hovertemplate="%{x:.1f}: %{y} sessions<extra></extra>",
    )


def _histogram_figure(sessions: pd.DataFrame) -> str:
    wait_min = sessions["wait_min"].to_numpy(float)
    wait_min = wait_min[np.isfinite(wait_min)]
    served_pct = np.clip(sessions["served_pct"].to_numpy(float), 0.0, 100.0)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Wait to first charge [min]", "Energy served per session [%]"))
    fig.add_trace(_histogram_bars(wait_min, 30 if len(wait_min) else 1), row=1, col=1)
    fig.add_trace(_histogram_bars(served_pct, np.linspace(0.0, 100.0, 21)), row=1, col=2)
    fig.update_layout(title="Sessions: wait and energy served", height=380, bargap=0.05)
    fig.update_yaxes(title_text="sessions", row=1, col=1)
    return _figure(fig, "session-histograms", "Wait: sessions that charged at all.")


def _kpi_table(kpis: dict) -> str:
    rows = []
    for key, value in kpis.items():
        if key == "strategy":
            continue
        cls = ' class="bad"' if _is_violation(key, value) else ""
        rows.append(f"<tr><td>{_label(key)}</td><td{cls}>{_fmt(key, value)}</td></tr>")
    return f'<table id="kpis"><tr><th>KPI</th><th>value</th></tr>{"".join(rows)}</table>'


def write_report(result: SimulationResult, path) -> Path:
    """Write the HTML report of one run to ``path`` (a single offline file); returns the path."""
    ts = result.timeseries
    period_s = result.period_s
    t_ms = _plot_ms(ts.index)
    site = result.scenario.site.name
    strategy = result.strategy.value
    meta = {"Site": site, "Strategy": strategy, **_window(result), "Sessions": str(len(result.sessions))}
    body = "\n".join(
        [
            f"<h1>evflex report: {_esc(site)} ({_esc(strategy)})</h1>",
            _meta(meta),
            "<h2>Key figures</h2>",
            _kpi_table(result.kpis),
            "<h2>Grid connection</h2>",
            _phase_figure(ts, t_ms, period_s),
            _power_figure(ts, t_ms, period_s),
            "<h2>Connectors</h2>",
            _heatmap_figure(result, ts, t_ms, period_s),
            "<h2>Sessions</h2>",
            _session_figure(result.sessions),
            _histogram_figure(result.sessions),
        ]
    )
    return _write(path, _page(f"evflex: {site} ({strategy})", body))


# ---------------------------------------------------------------- strategy comparison
def _column_names(results: Sequence[SimulationResult]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for r in results:
        name = r.strategy.value
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def comparison_table(results: Sequence[SimulationResult]) -> pd.DataFrame:
    """KPIs of several runs side by side: rows are KPI names, columns strategies.

    Values are the runs' own KPI values (object dtype; missing ones None). A strategy run
    more than once gets ``"name (2)"``, ``"name (3)"``, ... as column names.
    """
    kpis = [r.kpis for r in results]
    keys: list[str] = []
    for k in kpis:
        keys += [key for key in k if key != "strategy" and key not in keys]
    data = {name: [k.get(key) for key in keys] for name, k in zip(_column_names(results), kpis, strict=True)}
    table = pd.DataFrame(data, index=pd.Index(keys, name="kpi"), dtype=object)
    table.columns.name = "strategy"
    return table


def _comparison_html(table: pd.DataFrame) -> str:
    best_cols = set()
    if "energy_served_pct" in table.index:
        served = pd.Series(
            pd.to_numeric(table.loc["energy_served_pct"].to_numpy(), errors="coerce"), index=table.columns
        )
        if served.notna().any():
            best_cols = set(served.index[served >= served.max() - 1e-9])
    head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
    rows = []
    for key_, values in table.iterrows():
        key = str(key_)
        cells = []
        for col, value in values.items():
            cls = (
                "bad"
                if _is_violation(key, value)
                else "best"
                if key == "energy_served_pct" and col in best_cols
                else ""
            )
            cells.append(f'<td class="{cls}">{_fmt(key, value)}</td>' if cls else f"<td>{_fmt(key, value)}</td>")
        rows.append(f"<tr><td>{_label(key)}</td>{''.join(cells)}</tr>")
    return f'<table id="kpi-comparison"><tr><th>KPI</th>{head}</tr>{"".join(rows)}</table>'


def _bars_figure(table: pd.DataFrame) -> str:
    names = [_esc(c) for c in table.columns]
    served = table.loc["energy_served_pct"].to_numpy(float)
    peak_a = table.loc["max_phase_current_a"].to_numpy(float)
    limit_a = table.loc["grid_limit_a"].to_numpy(float)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Energy served [%]", "Max phase current vs limit [A]"))
    fig.add_trace(
        go.Bar(
            x=names,
            y=served,
            name="energy served",
            marker_color="#2ca02c",
            showlegend=False,
            hovertemplate="%{x}: %{y:.2f} %<extra></extra>",
        ),
        row=1,
        col=1,
    )
    colors = np.where(peak_a > limit_a + RECORD_TOL_A, _LIMIT_COLOR, "#1f77b4")
    fig.add_trace(
        go.Bar(
            x=names,
            y=peak_a,
            name="max phase current",
            marker_color=list(colors),
            hovertemplate="%{x}: %{y:.1f} A<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=limit_a,
            name="limit",
            mode="markers",
            marker=dict(symbol="line-ew-open", size=48, color=_LIMIT_COLOR, line_width=3),
            hovertemplate="limit %{y:.1f} A<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(range=[0, 100.5], row=1, col=1)
    fig.update_layout(title="Strategies side by side", height=420)
    return _figure(fig, "strategy-bars", "Red bars: the maximum phase current went above the lowest limit.")


def _max_current_figure(results: Sequence[SimulationResult], names: list[str]) -> str:
    fig = go.Figure()
    notes = set()
    for r, name in zip(results, names, strict=True):
        ts = r.timeseries
        t_ms = _plot_ms(ts.index)
        phase_a = ts[[f"{p.lower()}_a" for p in PHASE_NAMES]].to_numpy(np.float32).max(axis=1, initial=-np.inf)
        t, peak = bucket_max(phase_a, t_ms, MAX_POINTS, r.period_s)
        fig.add_trace(go.Scatter(x=t, y=peak, name=_esc(name), line=dict(width=1.2)))
        notes.add(_bucket_note(len(ts), MAX_POINTS, r.period_s, "max (limit: min)"))
    first = results[0].timeseries
    t, limit_min = bucket_min(
        first["limit_a"].to_numpy(np.float32), _plot_ms(first.index), MAX_POINTS, results[0].period_s
    )
    fig.add_trace(go.Scatter(x=t, y=limit_min, name="limit", line=dict(color=_LIMIT_COLOR, shape="hv", dash="dash")))
    fig.update_layout(
        title="Highest phase current at the grid connection [A]",
        height=460,
        xaxis_type="date",
        yaxis=dict(title="current [A]", hoverformat=".1f"),
        hovermode="x unified",
    )
    return _figure(fig, "strategy-max-current", "Per strategy, the highest of L1, L2, L3. " + " ".join(sorted(notes)))


def write_comparison_report(results: Sequence[SimulationResult], path) -> Path:
    """Write an HTML page comparing runs of several strategies on one scenario.

    Links point to each strategy's own report at ``<strategy>/report.html`` next to
    ``path``. Returns the path.
    """
    results = list(results)
    if not results:
        raise ValueError("write_comparison_report needs at least one result")
    table = comparison_table(results)
    names = list(table.columns)
    site = results[0].scenario.site.name
    links = "".join(
        f'<li><a href="{_esc(quote(r.strategy.value))}/report.html">{_esc(name)}</a></li>'
        for r, name in zip(results, names, strict=True)
    )
    body = "\n".join(
        [
            f"<h1>evflex strategy comparison: {_esc(site)}</h1>",
            _meta({"Site": site, "Strategies": ", ".join(names), **_window(results[0])}),
            f'<h2>Reports per strategy</h2><ul id="strategy-links">{links}</ul>',
            "<h2>Key figures</h2>",
            _comparison_html(table),
            '<p class="caption">Red: steps over a limit. Green: the best energy served.</p>',
            "<h2>Figures</h2>",
            _bars_figure(table),
            _max_current_figure(results, names),
        ]
    )
    return _write(path, _page(f"evflex: {site}, strategy comparison", body))
