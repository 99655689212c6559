"""Readers of time-series CSV files: base load, PV, connection limit.

Every file has a ``timestamp`` column (ISO-8601 with offset; naive is read as UTC with a
warning) stamping the *start* of the interval its values hold for, and:

- base load: ``l1_a, l2_a, l3_a`` [A], or ``power_kw`` [kW] spread evenly over the phases;
- PV: ``power_kw`` [kW, generation positive];
- connection limit: ``limit_a`` [A per phase].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evflex.errors import ValidationError, problem
from evflex.io.common import load_csv, parse_numbers, parse_timestamps, row_lines, sorted_problems, warn
from evflex.model.series import StepSeries
from evflex.units import N_PHASES

PHASE_COLUMNS = ["l1_a", "l2_a", "l3_a"]


def read_series(path: Path, kind: str, voltage_ln_v: float, source: str | None = None) -> StepSeries:
    """Read a series of ``kind`` ('base_load', 'pv' or 'limit') from ``path``."""
    src = source or Path(path).name
    df = load_csv(Path(path), src)
    probs = []
    if "timestamp" not in df.columns:
        probs.append(problem(src, "missing required column 'timestamp'"))
    if kind == "base_load":
        if all(c in df.columns for c in PHASE_COLUMNS):
            value_cols = PHASE_COLUMNS
        elif "power_kw" in df.columns:
            value_cols = ["power_kw"]
        else:
            probs.append(problem(src, "missing required columns 'l1_a', 'l2_a', 'l3_a' (or 'power_kw')"))
            value_cols = []
    else:
        value_cols = ["power_kw" if kind == "pv" else "limit_a"]
        probs += [problem(src, f"missing required column '{c}'") for c in value_cols if c not in df.columns]
    if probs:
        raise ValidationError(probs)
    if df.empty:
        raise ValidationError([problem(src, "no data rows")])
    lines = row_lines(df)
    times, p, naive = parse_timestamps(df["timestamp"], src, "timestamp")
    probs += p
    cols = []
    for c in value_cols:
        v, p = parse_numbers(df[c], src, c)
        probs += p
        if kind == "limit":
            for i in np.flatnonzero(v <= 0):
                probs.append(problem(src, "must be > 0", line=lines[i], field=c, value=df[c].iloc[i]))
        cols.append(v)
    ok = ~np.isnan(times)
    d = np.diff(times[ok])
    for i in np.flatnonzero(d <= 0):
        row = np.flatnonzero(ok)[i + 1]
        probs.append(
            problem(
                src,
                "timestamps must increase",
                line=lines[row],
                field="timestamp",
                value=df["timestamp"].iloc[row],
            )
        )
    if probs:
        raise ValidationError(sorted_problems(probs))
    if naive:
        warn(f"{src}: {naive} timestamp(s) without offset read as UTC")
    values = np.column_stack(cols)
    if kind == "base_load":
        if value_cols == ["power_kw"]:
            values = np.repeat(values * 1000.0 / (N_PHASES * voltage_ln_v), N_PHASES, axis=1)
    else:
        values = values[:, 0]
    return StepSeries(times, values, name=src)
