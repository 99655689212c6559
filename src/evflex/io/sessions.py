"""The sessions CSV: one row per charging session.

Required columns: ``session_id, connector_id, arrival, departure, energy_kwh``.
Optional: ``max_power_kw`` (the EV's own AC limit), ``max_current_a`` (its onboard
charger's limit per phase), ``phases`` (1, 2 or 3),
``battery_kwh``, ``soc_arrival`` (0-1), ``v2g`` (true/false), ``efficiency`` (0-1),
``declared_departure`` (when the user said, on arrival, they would leave: a timestamp after
``arrival``) and ``declared_energy_kwh`` (the energy they asked for); a controller sees
these declarations where given, the simulated physics the actual ``departure`` and
``energy_kwh``. Other columns are ignored with a warning. ``arrival``/``departure`` are ISO-8601 with an
offset (naive timestamps are read as UTC, with a warning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem
from evflex.io.common import (
    load_csv,
    parse_numbers,
    parse_timestamps,
    require_columns,
    row_lines,
    sorted_problems,
    warn,
)
from evflex.model.sessions import DEFAULT_EFFICIENCY, SessionTable
from evflex.model.topology import Topology

REQUIRED = ["session_id", "connector_id", "arrival", "departure", "energy_kwh"]
OPTIONAL = [
    "max_power_kw",
    "phases",
    "battery_kwh",
    "soc_arrival",
    "v2g",
    "efficiency",
    "max_current_a",
    "declared_departure",
    "declared_energy_kwh",
]
#: Optional columns written only when some session has a value in them.
DECLARED = ["declared_departure", "declared_energy_kwh"]
#: Columns holding timestamps.
TIMESTAMP_COLUMNS = ("arrival", "departure", "declared_departure")
COLUMNS = REQUIRED + OPTIONAL
#: Plausibility bounds: a heavy truck's battery is under 1 MWh, AC charging under 1 MW.
MAX_ENERGY_KWH = 10_000.0
MAX_POWER_KW = 1_000.0
MAX_CURRENT_A = 1_000.0
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def read_sessions(path: str | Path, topology: Topology, source: str | None = None) -> SessionTable:
    """Read and validate a sessions CSV against the site's connectors."""
    src = source or Path(path).name
    return parse_sessions(load_csv(Path(path), src), topology, src)


def parse_sessions(df: pd.DataFrame, topology: Topology, source: str = "sessions.csv") -> SessionTable:
    """Validate a table of strings (as read from CSV) and build a :class:`SessionTable`.

    Raises :class:`ValidationError` with every problem found.
    """
    probs = require_columns(df, REQUIRED, source)
    if probs:
        raise ValidationError(probs)
    extra = [c for c in df.columns if c not in COLUMNS]
    if extra:
        warn(f"{source}: ignoring unknown column(s) {', '.join(repr(c) for c in extra)}")
    if df.empty:
        raise ValidationError([problem(source, "no sessions (the file has a header only)")])
    n = len(df)
    lines = row_lines(df)

    sid = df["session_id"].astype(str).str.strip()
    for i in np.flatnonzero((sid == "").to_numpy()):
        probs.append(problem(source, "must not be empty", line=int(lines[i]), field="session_id", value=""))
    dup = sid.duplicated(keep="first") & (sid != "")
    first_line = {s: int(lines[i]) for i, s in reversed(list(enumerate(sid)))}
    for i in np.flatnonzero(dup.to_numpy()):
        probs.append(
            problem(
                source,
                f"duplicate of line {first_line[sid.iloc[i]]}",
                line=int(lines[i]),
                field="session_id",
                value=sid.iloc[i],
            )
        )

    index = topology.index()
    cid = df["connector_id"].astype(str).str.strip()
    conn_ser = cid.map(index)
    for i in np.flatnonzero(conn_ser.isna().to_numpy()):
        probs.append(
            problem(
                source,
                f"unknown connector (the site has {_span(topology.connector_ids)})",
                line=int(lines[i]),
                field="connector_id",
                value=cid.iloc[i],
            )
        )
    conn: np.ndarray = conn_ser.fillna(-1).astype(np.int64).to_numpy()

    arr, p1, naive1 = parse_timestamps(df["arrival"], source, "arrival")
    dep, p2, naive2 = parse_timestamps(df["departure"], source, "departure")
    probs += p1 + p2
    probs += _not_after_arrival(dep, arr, df, "departure", lines, source)

    energy, p = parse_numbers(df["energy_kwh"], source, "energy_kwh")
    probs += p
    probs += _check(energy < 0, df, "energy_kwh", "must be >= 0", lines, source)
    probs += _check(
        energy > MAX_ENERGY_KWH, df, "energy_kwh", f"implausibly large (over {MAX_ENERGY_KWH:g})", lines, source
    )

    opt = {c: df[c] if c in df.columns else pd.Series([""] * n, index=df.index, dtype=str) for c in OPTIONAL}
    max_kw, p = parse_numbers(opt["max_power_kw"], source, "max_power_kw", required=False)
    probs += p + _check(max_kw <= 0, df, "max_power_kw", "must be > 0", lines, source)
    probs += _check(
        max_kw > MAX_POWER_KW, df, "max_power_kw", f"implausibly large (over {MAX_POWER_KW:g})", lines, source
    )
    max_a, p = parse_numbers(opt["max_current_a"], source, "max_current_a", required=False)
    probs += p + _check(max_a <= 0, df, "max_current_a", "must be > 0", lines, source)
    probs += _check(
        max_a > MAX_CURRENT_A, df, "max_current_a", f"implausibly large (over {MAX_CURRENT_A:g})", lines, source
    )
    phases_f, p = parse_numbers(opt["phases"], source, "phases", required=False)
    probs += p + _check(
        ~np.isnan(phases_f) & ~np.isin(phases_f, [1, 2, 3]), df, "phases", "must be 1, 2 or 3", lines, source
    )
    phases = np.where(np.isin(phases_f, [1, 2, 3]), phases_f, 0).astype(np.int64)
    battery, p = parse_numbers(opt["battery_kwh"], source, "battery_kwh", required=False)
    probs += p + _check(battery <= 0, df, "battery_kwh", "must be > 0", lines, source)
    probs += _check(
        battery > MAX_ENERGY_KWH, df, "battery_kwh", f"implausibly large (over {MAX_ENERGY_KWH:g})", lines, source
    )
    soc, p = parse_numbers(opt["soc_arrival"], source, "soc_arrival", required=False)
    probs += p + _check((soc < 0) | (soc > 1), df, "soc_arrival", "must be within 0-1", lines, source)
    eff, p = parse_numbers(opt["efficiency"], source, "efficiency", required=False)
    probs += p + _check((eff <= 0) | (eff > 1), df, "efficiency", "must be within (0, 1]", lines, source)
    eff = np.where(np.isnan(eff), DEFAULT_EFFICIENCY, eff)
    v2g_text = opt["v2g"].astype(str).str.strip().str.lower()
    bad_v2g = ~v2g_text.isin(_TRUE | _FALSE)
    for i in np.flatnonzero(bad_v2g.to_numpy()):
        probs.append(
            problem(source, "must be true or false", line=int(lines[i]), field="v2g", value=opt["v2g"].iloc[i])
        )
    v2g = v2g_text.isin(_TRUE).to_numpy()
    decl_dep, p, naive3 = parse_timestamps(opt["declared_departure"], source, "declared_departure", required=False)
    probs += p
    probs += _not_after_arrival(decl_dep, arr, df, "declared_departure", lines, source)
    decl_e, p = parse_numbers(opt["declared_energy_kwh"], source, "declared_energy_kwh", required=False)
    probs += p + _check(decl_e < 0, df, "declared_energy_kwh", "must be >= 0", lines, source)
    probs += _check(
        decl_e > MAX_ENERGY_KWH,
        df,
        "declared_energy_kwh",
        f"implausibly large (over {MAX_ENERGY_KWH:g})",
        lines,
        source,
    )

    # the EV must be able to charge at the pilot's minimum on its phases, at the voltage
    # across its connector's conductors (line-to-line for a charger between two phases)
    ok_c = conn >= 0
    ev_phases = np.where(phases > 0, phases, np.where(ok_c, topology.charger_phases[np.maximum(conn, 0)], 3))
    volts = np.where(ok_c, topology.voltage_v[np.maximum(conn, 0)], topology.voltage_ln_v)
    with np.errstate(invalid="ignore"):
        ev_a = max_kw * 1000.0 / (volts * ev_phases)
    min_a = np.where(ok_c, topology.min_current_a[np.maximum(conn, 0)], 6.0)
    for i in np.flatnonzero(ev_a < min_a - 1e-9):
        probs.append(
            problem(
                source,
                f"below the {min_a[i]:g} A minimum on {ev_phases[i]} phase(s)",
                line=int(lines[i]),
                field="max_power_kw",
                value=df["max_power_kw"].iloc[i],
            )
        )
    for i in np.flatnonzero((max_a > 0) & (max_a < min_a - 1e-9)):
        probs.append(
            problem(
                source,
                f"below the {min_a[i]:g} A minimum",
                line=int(lines[i]),
                field="max_current_a",
                value=df["max_current_a"].iloc[i],
            )
        )

    if not probs:
        probs += _overlaps(df, conn, arr, dep, lines, topology, source)
    if probs:
        raise ValidationError(sorted_problems(probs))
    if naive1 or naive2 or naive3:
        warn(f"{source}: {max(naive1, naive2, naive3)} timestamp(s) without offset read as UTC")
    room = (1.0 - soc) * battery / eff
    capped = energy > room + 1e-9
    if capped.any():
        ic = int(np.argmax(capped))
        warn(
            f"{source}:{lines[ic]}: energy_kwh={energy[ic]:g} is more than the battery can take "
            f"({room[ic]:.6g} kWh); {int(capped.sum())} session(s) capped to their battery room"
        )
    return SessionTable.build(
        sid.to_numpy(dtype=object),
        conn,
        arr,
        dep,
        energy,
        max_power_kw=max_kw,
        max_current_a=max_a,
        phases=phases,
        battery_kwh=battery,
        soc_arrival=soc,
        efficiency=eff,
        v2g=v2g,
        declared_departure_s=decl_dep,
        declared_energy_kwh=decl_e,
    )


def _not_after_arrival(times_s, arrival_s, df: pd.DataFrame, col: str, lines, source: str) -> list[Problem]:
    """One problem per row whose ``col`` time is not after its arrival, both quoted as written."""
    return [
        problem(
            source,
            f"not after arrival {df['arrival'].iloc[i].strip()!r}",
            line=int(lines[i]),
            field=col,
            value=df[col].iloc[i].strip(),
        )
        for i in np.flatnonzero(times_s <= arrival_s)
    ]


def _check(
    mask: np.ndarray, df: pd.DataFrame, field: str, message: str, lines: np.ndarray, source: str
) -> list[Problem]:
    return [
        problem(source, message, line=int(lines[i]), field=field, value=df[field].iloc[i].strip())
        for i in np.flatnonzero(mask)
    ]


def _overlaps(df: pd.DataFrame, conn, arr, dep, lines, topology: Topology, source: str) -> list[Problem]:
    """A connector holds one EV at a time. Timestamps are quoted as the file has them."""
    probs = []
    order = np.lexsort((arr, conn))
    c, a, d = conn[order], arr[order], dep[order]
    clash = (c[1:] == c[:-1]) & (a[1:] < d[:-1])
    for k in np.flatnonzero(clash):
        i, j = order[k + 1], order[k]
        other = df["session_id"].iloc[j].strip()
        until = df["departure"].iloc[j].strip()
        probs.append(
            problem(
                source,
                f"overlaps session {other!r} (line {lines[j]}, until {until!r}) "
                f"on connector {topology.connector_ids[conn[i]]}",
                line=int(lines[i]),
                field="arrival",
                value=df["arrival"].iloc[i].strip(),
            )
        )
    return probs


def _span(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if len(ids) <= 6 else f"{ids[0]} .. {ids[-1]}, {len(ids)} in all"


def sessions_frame(table: SessionTable, topology: Topology, tz=None) -> pd.DataFrame:
    """A :class:`SessionTable` as a DataFrame in the CSV contract's columns."""

    def ts(x):
        t = pd.to_datetime(x, unit="s", utc=True)
        return t.tz_convert(tz) if tz is not None else t

    return pd.DataFrame(
        {
            "session_id": table.session_id.astype(str),
            "connector_id": np.asarray(topology.connector_ids, dtype=object)[table.connector],
            "arrival": ts(table.arrival_s),
            "departure": ts(table.departure_s),
            "energy_kwh": table.energy_kwh,
            "max_power_kw": table.max_power_kw,
            "phases": table.phases,
            "battery_kwh": table.battery_kwh,
            "soc_arrival": table.soc_arrival,
            "v2g": table.v2g,
            "max_current_a": table.max_current_a,
            "declared_departure": ts(table.declared_departure_s),
            "declared_energy_kwh": table.declared_energy_kwh,
        }
    )


def sessions_as_text(df: pd.DataFrame, decimals: int | None = None) -> pd.DataFrame:
    """A sessions DataFrame as the strings its CSV holds: ISO-8601 timestamps, unknown
    values (NaN, NaT, phases 0) as empty cells, ``v2g`` as true/false. With ``decimals``,
    floats are rounded. The columns of :data:`DECLARED` are left out when no session has a
    value in them. :func:`parse_sessions` reads this back, so generated and imported
    sessions take the same validation path as a user's file."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        v = df[col]
        if col in DECLARED and v.isna().all():
            continue
        if col in TIMESTAMP_COLUMNS:
            out[col] = ["" if pd.isna(t) else pd.Timestamp(t).isoformat() for t in v]
        elif col == "phases":
            out[col] = [str(int(p)) if p and p == p else "" for p in v]
        elif col == "v2g":
            out[col] = np.where(v.astype(bool), "true", "false")
        else:
            vals = _rounded(col, v, decimals) if decimals is not None and v.dtype.kind == "f" else v
            out[col] = ["" if (isinstance(x, float) and np.isnan(x)) else str(x) for x in vals]
    return out


#: Columns rounded down (up) when written, so that an energy within the battery room
#: ``(1 - soc_arrival) * battery_kwh / efficiency`` stays within the room read back.
_ROUNDED_DOWN = ("energy_kwh", "declared_energy_kwh", "soc_arrival", "efficiency")
_ROUNDED_UP = ("battery_kwh",)


def _rounded(col: str, v: pd.Series, decimals: int) -> pd.Series:
    scale = 10.0**decimals
    if col in _ROUNDED_DOWN:
        return np.floor(v * scale) / scale
    if col in _ROUNDED_UP:
        return np.ceil(v * scale) / scale
    return v.round(decimals)


def write_sessions_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a sessions DataFrame (contract columns) as CSV with ISO-8601 timestamps.

    The file is written to a temporary name and renamed, so a failed write leaves nothing
    half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        sessions_as_text(df, decimals=4).to_csv(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
