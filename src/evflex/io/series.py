"""Readers of time-series CSV files: base load, PV, connection limit, energy price.

Every file has a ``timestamp`` column (ISO-8601 with offset; naive is read as UTC with a
warning) stamping the *start* of the interval its values hold for, and its values in one
of these forms:

- base load [consumption positive] and PV [generation positive], one of:

  - ``l1_a, l2_a, l3_a``: current per phase [A];
  - ``l1_kw, l2_kw, l3_kw``: power per phase [kW], converted with the site's
    phase-to-neutral voltage (A = kW * 1000 / V);
  - ``power_kw``: total power [kW], spread evenly over the three phases.

  A per-phase form may leave out phases: a single-phase PV inverter on L2 is
  ``timestamp, l2_kw`` and loads only L2. A file gives one form: per-phase currents and
  powers together, or a per-phase form with ``power_kw``, is a problem naming what to drop.
- connection limit: ``limit_a`` [A per phase, >= 0; 0 is a curtailment to nothing].
- energy price (a tariff's dynamic prices, e.g. the day-ahead market): ``eur_per_kwh`` or
  ``eur_per_mwh`` (one of the two; negative prices allowed), read as EUR/kWh.
- carbon intensity of the grid: ``g_per_kwh`` [gCO2/kWh, >= 0].

Any series may have a ``known_from`` column: when the row's value was announced (ISO-8601
with offset, not after the row's ``timestamp``; an empty cell: when it takes effect). A
controller sees a value only from then on (:attr:`StepSeries.known_from_s`); it matters for
limits announced ahead, such as a grid operator's curtailment.

Other columns are ignored with a warning. Per-phase and total values come back as current
per phase, shape (k, 3) [A]; a limit as one value per row [A].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem
from evflex.io.common import load_csv, parse_numbers, parse_timestamps, row_lines, sorted_problems, warn
from evflex.model.series import StepSeries
from evflex.units import N_PHASES

PHASE_COLUMNS = ["l1_a", "l2_a", "l3_a"]
PHASE_KW_COLUMNS = ["l1_kw", "l2_kw", "l3_kw"]
TOTAL_COLUMN = "power_kw"
LIMIT_COLUMN = "limit_a"
KNOWN_FROM = "known_from"
PRICE_COLUMNS = {"eur_per_kwh": 1.0, "eur_per_mwh": 1e-3}  # to EUR/kWh
CARBON_COLUMN = "g_per_kwh"
KINDS = ("base_load", "pv", "limit", "price", "carbon")


def read_series(path: Path, kind: str, voltage_ln_v: float, source: str | None = None) -> StepSeries:
    """Read a series of ``kind`` ('base_load', 'pv' or 'limit') from ``path``.

    Base load and PV come back as current per phase, shape (k, 3) [A] (PV generation
    positive), a limit as (k,) [A]. Raises :class:`ValidationError` with every problem.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown series kind {kind!r}")
    src = source or Path(path).name
    df = load_csv(Path(path), src)
    probs: list[Problem] = []
    if "timestamp" not in df.columns:
        probs.append(problem(src, "missing required column 'timestamp'"))
    value_cols, p = _value_columns(list(df.columns), kind, src)
    probs += p
    if probs:
        raise ValidationError(probs)
    known = {"timestamp", KNOWN_FROM, *value_cols}
    extra = [c for c in df.columns if c not in known]
    if extra:
        warn(f"{src}: ignoring unknown column(s) {', '.join(repr(c) for c in extra)}")
    if df.empty:
        raise ValidationError([problem(src, "no data rows")])
    lines = row_lines(df)
    times, p, naive = parse_timestamps(df["timestamp"], src, "timestamp")
    probs += p
    cols = {}
    for c in value_cols:
        v, p = parse_numbers(df[c], src, c)
        probs += p
        if kind in ("limit", "carbon"):
            probs += [
                problem(src, "must be >= 0", line=lines[i], field=c, value=df[c].iloc[i].strip())
                for i in np.flatnonzero(v < 0)
            ]
        cols[c] = v
    known_from = None
    if KNOWN_FROM in df.columns:
        known_from, p, naive_k = parse_timestamps(df[KNOWN_FROM], src, KNOWN_FROM, required=False)
        probs += p
        naive += naive_k
        for i in np.flatnonzero(known_from > times):
            probs.append(
                problem(
                    src,
                    f"after the row's timestamp {df['timestamp'].iloc[i].strip()!r} (a value is announced "
                    "before it takes effect, or when it does)",
                    line=lines[i],
                    field=KNOWN_FROM,
                    value=df[KNOWN_FROM].iloc[i].strip(),
                )
            )
    probs += _increasing(times, df["timestamp"], lines, src)
    if probs:
        raise ValidationError(sorted_problems(probs))
    if naive:
        warn(f"{src}: {naive} timestamp(s) without offset read as UTC")
    if known_from is not None:
        known_from = np.where(np.isnan(known_from), times, known_from)
    if kind == "limit":
        values = cols[LIMIT_COLUMN]
    elif kind == "price":
        (c,) = cols
        values = cols[c] * PRICE_COLUMNS[c]
    elif kind == "carbon":
        values = cols[CARBON_COLUMN]
    else:
        values = _per_phase_a(cols, len(times), voltage_ln_v)
        if kind == "pv" and values.sum() < 0:
            warn(f"{src}: PV is generation-positive, but this file's values are mostly negative")
    return StepSeries(times, values, name=src, known_from_s=known_from)


def _value_columns(columns: list[str], kind: str, src: str) -> tuple[list[str], list[Problem]]:
    """The columns holding the values of a ``kind`` series, or the problems with them."""
    if kind == "limit":
        if LIMIT_COLUMN not in columns:
            return [], [problem(src, f"missing required column '{LIMIT_COLUMN}'")]
        return [LIMIT_COLUMN], []
    if kind == "carbon":
        if CARBON_COLUMN not in columns:
            return [], [problem(src, f"missing required column '{CARBON_COLUMN}'")]
        return [CARBON_COLUMN], []
    if kind == "price":
        given = [c for c in PRICE_COLUMNS if c in columns]
        if len(given) != 1:
            what = "both" if given else "missing"
            return [], [problem(src, f"{what} of the price columns 'eur_per_kwh', 'eur_per_mwh': give one")]
        return given, []
    amps = [c for c in PHASE_COLUMNS if c in columns]
    kws = [c for c in PHASE_KW_COLUMNS if c in columns]
    total = TOTAL_COLUMN in columns
    if amps and kws:
        return [], [
            problem(
                src,
                f"gives both per-phase currents ({_names(amps)}) and per-phase powers ({_names(kws)}): "
                "keep one of the two",
            )
        ]
    phases = amps or kws
    if phases and total:
        return [], [
            problem(
                src,
                f"gives both per-phase columns ({_names(phases)}) and the total '{TOTAL_COLUMN}': "
                f"drop '{TOTAL_COLUMN}' (or the per-phase columns)",
            )
        ]
    if phases:
        return phases, []
    if total:
        return [TOTAL_COLUMN], []
    return [], [
        problem(
            src,
            f"missing value columns: give {_names(PHASE_COLUMNS)} [A], {_names(PHASE_KW_COLUMNS)} [kW] "
            f"or '{TOTAL_COLUMN}' [kW]",
        )
    ]


def _names(cols: list[str]) -> str:
    return ", ".join(f"'{c}'" for c in cols)


def _per_phase_a(cols: dict[str, np.ndarray], k: int, voltage_ln_v: float) -> np.ndarray:
    """(k, 3) current per phase [A] from whichever form the file gave."""
    if TOTAL_COLUMN in cols:
        return np.repeat((cols[TOTAL_COLUMN] * 1000.0 / (N_PHASES * voltage_ln_v))[:, None], N_PHASES, axis=1)
    out = np.zeros((k, N_PHASES))
    for p in range(N_PHASES):
        if PHASE_COLUMNS[p] in cols:
            out[:, p] = cols[PHASE_COLUMNS[p]]
        elif PHASE_KW_COLUMNS[p] in cols:
            out[:, p] = cols[PHASE_KW_COLUMNS[p]] * 1000.0 / voltage_ln_v
    return out


def _increasing(times: np.ndarray, text: pd.Series, lines: np.ndarray, src: str) -> list[Problem]:
    ok = np.flatnonzero(~np.isnan(times))
    return [
        problem(
            src,
            "timestamps must increase",
            line=lines[ok[i + 1]],
            field="timestamp",
            value=text.iloc[ok[i + 1]].strip(),
        )
        for i in np.flatnonzero(np.diff(times[ok]) <= 0)
    ]
