"""HTML reports: one page per run, and one page comparing strategies.

A page works offline. plotly.js is inlined once in its head (a single self-contained file),
or, for the pages of a comparison folder, loaded from one shared ``plotly.min.js`` by
relative path (:func:`write_plotlyjs`). Every figure is a ``<div>`` and a
``Plotly.newPlot`` call whose data and layout are built here as plain JSON: numpy arrays
go in as plotly.js typed arrays (base64), and no plotly Python figure object is built,
which keeps writing a report a small share of a run. User-provided text (site name,
session and connector ids) is escaped with :func:`html.escape`; the JSON is made safe
inside ``<script>``.

Long runs stay light: time series are cut into buckets of consecutive steps before they
are plotted (at most :data:`MAX_POINTS` points per trace, :data:`MAX_HEATMAP_COLUMNS` heat
map columns, :data:`MAX_HEATMAP_ROWS` heat map rows). Currents keep the **maximum** of each
bucket, so peaks and limit violations are never hidden; limits keep the minimum; powers
the mean. The kernels (:func:`bucket_max`, :func:`bucket_min`, :func:`bucket_mean`,
:func:`group_max`) are pure functions on numpy arrays.

Notices a user must see (a base load above the limit, no EV able to charge) open the page,
highlighted, in the words of :mod:`evflex.report.summary`.

Times are plotted as wall-clock time in the scenario's zone.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import pkgutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from evflex.report.summary import grouped_notices, is_violation
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
    "sessions_truncated": ("Sessions cut by the window", 0),
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
    "limit_violation_s": ("Time over a limit [s]", 0),
    "max_overload_a": ("Max overload [A]", 2),
    "transient_overshoot_max_a": ("Max transient overshoot [A]", 2),
    "transient_overshoot_steps": ("Steps with a transient overshoot", 0),
    "base_load_over_limit_steps": ("Steps with the base load over the limit", 0),
    "no_ev_can_charge": ("No EV can charge within the limit", 0),
    "phase_unbalance_max_a": ("Max phase unbalance [A]", 1),
    "ev_energy_by_phase_kwh": ("EV energy L1 / L2 / L3 [kWh]", 1),
    "switch_ons_per_session_mean": ("Switch-ons per session, mean", 2),
    "switch_ons_per_session_max": ("Switch-ons per session, max", 0),
    "phase_switches": ("Phase switches (3-to-1 and back)", 0),
    "phase_switches_per_session_max": ("Phase switches per session, max", 0),
    "wait_to_first_charge_max_min": ("Max wait to first charge [min]", 1),
    "sessions_never_charged": ("Sessions never charged", 0),
    "active_steps": ("Steps the controller ran", 0),
    "sim_wall_s": ("Simulation wall time [s]", 2),
}

_PHASE_COLORS = ("#8c564b", "#1f1f1f", "#7f7f7f")  # IEC 60446: brown, black, grey
_LIMIT_COLOR = "#d62728"
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_AXIS_STYLE = {
    "gridcolor": "#EBF0F8",
    "linecolor": "#EBF0F8",
    "zerolinecolor": "#EBF0F8",
    "zerolinewidth": 2,
    "ticks": "",
    "automargin": True,
    "title": {"standoff": 15},
}
#: Look of every figure (the colours of plotly's "plotly_white"), as a plotly.js template.
_TEMPLATE = {
    "layout": {
        "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"],
        "font": {"color": "#2a3f5f"},
        "hoverlabel": {"align": "left"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "title": {"x": 0.05},
        "xaxis": _AXIS_STYLE,
        "yaxis": _AXIS_STYLE,
    }
}
_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 40}
#: Horizontal gap between the panels of a two-panel figure [fraction of the width].
_PANEL_GAP = 0.1
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
.notice { background: #fff4e5; border-left: 6px solid #c00; padding: 0.6em 1em; margin: 1em 0; }
.notice p { margin: 0.3em 0; font-weight: bold; }
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


# ---------------------------------------------------------------- plotly.js and JSON
@functools.cache
def plotlyjs_bytes() -> bytes:
    """The minified plotly.js bundled with the plotly package (read once)."""
    data = pkgutil.get_data("plotly", "package_data/plotly.min.js")
    if data is None:
        raise FileNotFoundError("plotly.min.js not found in the plotly package")
    return data


def write_plotlyjs(path) -> Path:
    """Write plotly.js to ``path`` (for pages that load it by ``plotlyjs_src``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plotlyjs_bytes())
    return path


#: plotly.js typed-array type of each numpy dtype sent as such.
_TYPED_ARRAY_CODES = {
    np.dtype(np.int8): "i1",
    np.dtype(np.uint8): "u1",
    np.dtype(np.int16): "i2",
    np.dtype(np.uint16): "u2",
    np.dtype(np.int32): "i4",
    np.dtype(np.uint32): "u4",
    np.dtype(np.float32): "f4",
    np.dtype(np.float64): "f8",
}
_INT32 = np.iinfo(np.int32)


def typed_array(values: np.ndarray) -> dict | list:
    """A numpy array as a plotly.js typed array: ``{"dtype", "bdata"[, "shape"]}`` with
    the little-endian values in base64. Booleans go as int8; 64-bit integers as int32 when
    they fit, else as float64; an empty array as ``[]``."""
    a = np.asarray(values)
    if a.size == 0:
        return []
    if a.dtype == np.bool_:
        a = a.astype(np.int8)
    elif a.dtype.kind in "iu" and a.dtype not in _TYPED_ARRAY_CODES:
        a = a.astype(np.int32) if _INT32.min <= a.min() and a.max() <= _INT32.max else a.astype(np.float64)
    elif a.dtype not in _TYPED_ARRAY_CODES:
        a = a.astype(np.float64)
    code = _TYPED_ARRAY_CODES[a.dtype]
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    spec: dict[str, Any] = {"dtype": code, "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(d) for d in a.shape)
    return spec


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return typed_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot put a {type(obj).__name__} into a figure")


def to_script_json(obj) -> str:
    """``obj`` as compact JSON that is safe inside ``<script>`` (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(obj, default=_json_default, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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


def _title(text: str) -> dict:
    return {"text": text}


def _line(x, y, name: str, color: str | None = None, **kw) -> dict:
    """A line trace; ``kw`` goes into its ``line`` (width, dash, shape)."""
    line = {"color": color, **kw} if color else dict(kw)
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name, "line": line}


def _two_panels(left_title: str, right_title: str) -> dict:
    """Layout of two side-by-side panels (axes x/y and x2/y2) titled above each."""
    half = (1.0 - _PANEL_GAP) / 2

    def title(text: str, x: float) -> dict:
        return {
            "text": text,
            "x": x,
            "y": 1.0,
            "xref": "paper",
            "yref": "paper",
            "xanchor": "center",
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": 16},
        }

    return {
        "xaxis": {"domain": [0.0, half], "anchor": "y"},
        "yaxis": {"domain": [0.0, 1.0], "anchor": "x"},
        "xaxis2": {"domain": [1.0 - half, 1.0], "anchor": "y2"},
        "yaxis2": {"domain": [0.0, 1.0], "anchor": "x2"},
        "annotations": [title(left_title, half / 2), title(right_title, 1.0 - half / 2)],
    }


def _figure(div_id: str, data: list[dict], layout: dict, caption: str = "") -> str:
    """A figure's ``<div>`` and the script drawing it (``height`` in ``layout`` [px])."""
    layout = {"template": _TEMPLATE, "margin": _MARGIN, **layout}
    height = int(layout.get("height", 420))
    args = ",".join(to_script_json(x) for x in (data, layout, _PLOTLY_CONFIG))
    note = f'<p class="caption">{_esc(caption)}</p>' if caption else ""
    return (
        f'<section><div id="{div_id}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>'
        f'<script type="text/javascript">window.Plotly && Plotly.newPlot("{div_id}", {args});</script>'
        f"{note}</section>"
    )


def _page(title: str, body: str, plotlyjs_src: str | None) -> list[bytes]:
    """The page as byte chunks: plotly.js inlined (``plotlyjs_src`` None) or loaded from
    ``plotlyjs_src``, a URL relative to the page."""
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n"
    )
    tail = f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    if plotlyjs_src is None:
        return [(head + '<script type="text/javascript">').encode(), plotlyjs_bytes(), ("</script>\n" + tail).encode()]
    src = _esc(quote(plotlyjs_src))
    missing = (
        f'<p id="no-plotly" class="notice" hidden>The figures need plotly.js at {src}, '
        "next to this page: keep the output folder together.</p>\n"
        '<script type="text/javascript">'
        'if (!window.Plotly) document.getElementById("no-plotly").hidden = false;</script>\n'
    )
    return [
        (head + f'<script type="text/javascript" src="{src}" charset="utf-8"></script>\n').encode(),
        tail.replace("<body>\n", "<body>\n" + missing, 1).encode(),
    ]


def _meta(items: dict[str, str]) -> str:
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items.items())
    return f'<dl class="meta">{rows}</dl>'


def _notices(notes: list[tuple[list[str] | None, str]]) -> str:
    """The highlighted notice box opening a page (empty when there is nothing to say);
    ``notes`` as :func:`evflex.report.summary.grouped_notices` gives them."""
    if not notes:
        return ""
    paragraphs = []
    for names, text in notes:
        who = f"<strong>{_esc(', '.join(names))}:</strong> " if names else ""
        paragraphs.append(f"<p>{who}{_esc(text[:1].upper() + text[1:])}.</p>")
    return f'<div class="notice" id="notices" role="alert">{"".join(paragraphs)}</div>'


def _window(result: SimulationResult) -> dict[str, str]:
    sim = result.scenario.simulation
    fmt = "%Y-%m-%d %H:%M %Z"
    start = sim.start.astimezone(sim.tz)
    end = datetime.fromtimestamp(sim.end_s, tz=sim.tz)
    return {"Step": _duration(result.period_s), "Start": start.strftime(fmt), "End": end.strftime(fmt)}


def _write(path, chunks: list[bytes]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    return path


# ---------------------------------------------------------------- single-run figures
def _time_layout(title: str, y_title: str, height: int) -> dict:
    return {
        "title": _title(title),
        "height": height,
        "xaxis": {"type": "date"},
        "yaxis": {"title": _title(y_title), "hoverformat": ".1f"},
        "hovermode": "x unified",
    }


def _phase_figure(ts: pd.DataFrame, t_ms: np.ndarray, period_s: float) -> str:
    phase_a = ts[[f"{p.lower()}_a" for p in PHASE_NAMES]].to_numpy(np.float32)
    base_a = ts[[f"base_{p.lower()}_a" for p in PHASE_NAMES]].to_numpy(np.float32)
    limit_a = ts["limit_a"].to_numpy(np.float32)
    t, phase_max = bucket_max(phase_a, t_ms, MAX_POINTS, period_s)
    _, base_max = bucket_max(base_a, t_ms, MAX_POINTS, period_s)
    _, limit_min = bucket_min(limit_a, t_ms, MAX_POINTS, period_s)
    over = (phase_a.max(axis=1, initial=-np.inf) > limit_a + RECORD_TOL_A).astype(np.int8)
    _, over_any = bucket_max(over, t_ms, MAX_POINTS, period_s)
    data = [_line(t, phase_max[:, p], name, _PHASE_COLORS[p], width=1.2) for p, name in enumerate(PHASE_NAMES)]
    for trace, name in zip(data, PHASE_NAMES):
        trace["legendgroup"] = name
    for p, name in enumerate(PHASE_NAMES):
        base = _line(t, base_max[:, p], f"base load {name}", _PHASE_COLORS[p], width=1, dash="dot")
        data.append({**base, "legendgroup": name})
    data.append(_line(t, limit_min, "limit", _LIMIT_COLOR, shape="hv", dash="dash"))
    hit = over_any.astype(bool)
    if hit.any():
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": t[hit],
                "y": phase_max[hit].max(axis=1),
                "name": "above limit",
                "marker": {"color": _LIMIT_COLOR, "symbol": "x", "size": 7},
            }
        )
    note = _bucket_note(len(ts), MAX_POINTS, period_s, "max (limit: min)")
    return _figure(
        "phase-currents",
        data,
        _time_layout("Phase current at the grid connection [A]", "current [A]", 460),
        "EVs settled at the end of each step plus the base load (building minus PV). " + note,
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
    data = [_line(t, kw[:, k], name, color, width=width) for k, (_, name, color, width) in enumerate(series)]
    return _figure(
        "site-power",
        data,
        _time_layout("Site power [kW]", "power [kW]", 420),
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
    heat = {
        "type": "heatmap",
        "x": t,
        "y": names,
        "z": np.ascontiguousarray(np.asarray(current, dtype=np.float32).T),
        "zmin": 0.0,
        "colorscale": "Viridis",
        "colorbar": {"title": _title("A")},
        "hovertemplate": "%{y}<br>%{x}<br>%{z:.1f} A<extra></extra>",
    }
    layout = {
        "title": _title("Connector current [A]"),
        "height": int(np.clip(150 + 16 * len(names), 300, 1100)),
        "xaxis": {"type": "date"},
        "yaxis": {"type": "category", "autorange": "reversed"},
    }
    return _figure("connector-heatmap", [heat], layout, "Average per-phase current of each connector. " + note)


def _session_figure(sessions: pd.DataFrame) -> str:
    kind = "scattergl" if len(sessions) > WEBGL_MIN_SESSIONS else "scatter"
    served_mask = sessions["fully_served"].to_numpy(bool)
    data = []
    for served, name, color in ((True, "fully served", "#2ca02c"), (False, "not fully served", "#ff7f0e")):
        s = sessions[served_mask == served]
        text = [f"{_esc(i)} on {_esc(c)}" for i, c in zip(s["session_id"], s["connector_id"], strict=True)]
        data.append(
            {
                "type": kind,
                "mode": "markers",
                "x": s["requested_kwh"].to_numpy(np.float64),
                "y": s["delivered_kwh"].to_numpy(np.float64),
                "name": name,
                "text": text,
                "customdata": s["served_pct"].to_numpy(np.float64),
                "marker": {"color": color, "size": 6, "opacity": 0.7},
                "hovertemplate": "%{text}<br>requested %{x:.2f} kWh<br>delivered %{y:.2f} kWh"
                "<br>served %{customdata:.1f} %<extra></extra>",
            }
        )
    top = float(sessions["requested_kwh"].max()) if len(sessions) else 1.0
    data.append(_line([0.0, top], [0.0, top], "delivered = requested", "#999999", dash="dash"))
    layout = {
        "title": _title("Energy per session: delivered vs requested [kWh]"),
        "height": 480,
        "xaxis": {"title": _title("requested [kWh]")},
        "yaxis": {"title": _title("delivered [kWh]")},
    }
    return _figure(
        "session-energy",
        data,
        layout,
        "One marker per session; below the dashed line the EV left with less than it asked for.",
    )


def _histogram_bars(values: np.ndarray, bins, axes: str) -> dict:
    counts, edges = np.histogram(values, bins=bins)
    return {
        "type": "bar",
        "x": (edges[:-1] + edges[1:]) / 2,
        "y": counts,
        "width": np.diff(edges),
        "showlegend": False,
        "marker": {"color": "#1f77b4"},
        "hovertemplate": "%{x:.1f}: %{y} sessions<extra></extra>",
        "xaxis": f"x{axes}",
        "yaxis": f"y{axes}",
    }


def _histogram_figure(sessions: pd.DataFrame) -> str:
    wait_min = sessions["wait_min"].to_numpy(float)
    wait_min = wait_min[np.isfinite(wait_min)]
    served_pct = np.clip(sessions["served_pct"].to_numpy(float), 0.0, 100.0)
    data = [
        _histogram_bars(wait_min, 30 if len(wait_min) else 1, ""),
        _histogram_bars(served_pct, np.linspace(0.0, 100.0, 21), "2"),
    ]
    layout = _two_panels("Wait to first charge [min]", "Energy served per session [%]")
    layout["yaxis"]["title"] = _title("sessions")
    layout.update(title=_title("Sessions: wait and energy served"), height=380, bargap=0.05)
    return _figure("session-histograms", data, layout, "Wait: sessions that charged at all.")


def _kpi_table(kpis: dict) -> str:
    rows = []
    for key, value in kpis.items():
        if key == "strategy":
            continue
        cls = ' class="bad"' if is_violation(key, value) else ""
        rows.append(f"<tr><td>{_label(key)}</td><td{cls}>{_fmt(key, value)}</td></tr>")
    return f'<table id="kpis"><tr><th>KPI</th><th>value</th></tr>{"".join(rows)}</table>'


def write_report(result: SimulationResult, path, plotlyjs_src: str | None = None) -> Path:
    """Write the HTML report of one run to ``path``; returns the path.

    The page is a single offline file with plotly.js inlined, unless ``plotlyjs_src`` (a URL
    relative to the page, e.g. ``"../plotly.min.js"``) names a copy to load instead.
    """
    ts = result.timeseries
    period_s = result.period_s
    t_ms = _plot_ms(ts.index)
    kpis = result.kpis
    site = result.scenario.site.name
    strategy = result.strategy.value
    meta = {"Site": site, "Strategy": strategy, **_window(result), "Sessions": str(len(result.sessions))}
    body = "\n".join(
        [
            f"<h1>evflex report: {_esc(site)} ({_esc(strategy)})</h1>",
            _notices(grouped_notices([kpis])),
            _meta(meta),
            "<h2>Key figures</h2>",
            _kpi_table(kpis),
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
    return _write(path, _page(f"evflex: {site} ({strategy})", body, plotlyjs_src))


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
                "bad" if is_violation(key, value) else "best" if key == "energy_served_pct" and col in best_cols else ""
            )
            cells.append(f'<td class="{cls}">{_fmt(key, value)}</td>' if cls else f"<td>{_fmt(key, value)}</td>")
        rows.append(f"<tr><td>{_label(key)}</td>{''.join(cells)}</tr>")
    return f'<table id="kpi-comparison"><tr><th>KPI</th>{head}</tr>{"".join(rows)}</table>'


def _kpi_row(table: pd.DataFrame, key: str) -> np.ndarray:
    """One KPI across the runs as floats (NaN where a run lacks it)."""
    if key not in table.index:
        return np.full(len(table.columns), np.nan)
    return pd.to_numeric(pd.Series(table.loc[key].to_numpy()), errors="coerce").to_numpy(np.float64)


def _bars_figure(table: pd.DataFrame) -> str:
    names = [_esc(c) for c in table.columns]
    served = _kpi_row(table, "energy_served_pct")
    peak_a = _kpi_row(table, "max_phase_current_a")
    limit_a = _kpi_row(table, "grid_limit_a")
    colors = np.where(peak_a > limit_a + RECORD_TOL_A, _LIMIT_COLOR, "#1f77b4").tolist()
    data: list[dict] = [
        {
            "type": "bar",
            "x": names,
            "y": served,
            "name": "energy served",
            "marker": {"color": "#2ca02c"},
            "showlegend": False,
            "hovertemplate": "%{x}: %{y:.2f} %<extra></extra>",
        },
        {
            "type": "bar",
            "x": names,
            "y": peak_a,
            "name": "max phase current",
            "marker": {"color": colors},
            "hovertemplate": "%{x}: %{y:.1f} A<extra></extra>",
            "xaxis": "x2",
            "yaxis": "y2",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": names,
            "y": limit_a,
            "name": "limit",
            "marker": {"symbol": "line-ew-open", "size": 48, "color": _LIMIT_COLOR, "line": {"width": 3}},
            "hovertemplate": "limit %{y:.1f} A<extra></extra>",
            "xaxis": "x2",
            "yaxis": "y2",
        },
    ]
    layout = _two_panels("Energy served [%]", "Max phase current vs limit [A]")
    layout["yaxis"]["range"] = [0, 100.5]
    layout.update(title=_title("Strategies side by side"), height=420)
    return _figure("strategy-bars", data, layout, "Red bars: the maximum phase current went above the lowest limit.")


def _max_current_figure(results: Sequence[SimulationResult], names: list[str]) -> str:
    data = []
    notes = set()
    for r, name in zip(results, names, strict=True):
        ts = r.timeseries
        phase_a = ts[[f"{p.lower()}_a" for p in PHASE_NAMES]].to_numpy(np.float32).max(axis=1, initial=-np.inf)
        t, peak = bucket_max(phase_a, _plot_ms(ts.index), MAX_POINTS, r.period_s)
        data.append(_line(t, peak, _esc(name), width=1.2))
        notes.add(_bucket_note(len(ts), MAX_POINTS, r.period_s, "max (limit: min)"))
    first = results[0].timeseries
    t, limit_min = bucket_min(
        first["limit_a"].to_numpy(np.float32), _plot_ms(first.index), MAX_POINTS, results[0].period_s
    )
    data.append(_line(t, limit_min, "limit", _LIMIT_COLOR, shape="hv", dash="dash"))
    layout = _time_layout("Highest phase current at the grid connection [A]", "current [A]", 460)
    return _figure(
        "strategy-max-current", data, layout, "Per strategy, the highest of L1, L2, L3. " + " ".join(sorted(notes))
    )


def write_comparison_report(results: Sequence[SimulationResult], path, plotlyjs_src: str | None = None) -> Path:
    """Write an HTML page comparing runs of several strategies on one scenario.

    Links point to each strategy's own report at ``<strategy>/report.html`` next to
    ``path``. plotly.js is inlined unless ``plotlyjs_src`` names a copy to load (see
    :func:`write_report`). Returns the path.
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
            _notices(grouped_notices([r.kpis for r in results])),
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
    return _write(path, _page(f"evflex: {site}, strategy comparison", body, plotlyjs_src))
