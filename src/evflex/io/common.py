"""Helpers shared by the file readers: CSV loading and timestamp parsing with problems."""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem

_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
#: First data row of a CSV file is line 2 (line 1 is the header).
FIRST_DATA_LINE = 2
#: Rows of the wrong width reported before giving up on a file.
MAX_SHAPE_PROBLEMS = 20
#: Timestamps must lie in [1970, 2200): outputs use nanosecond pandas timestamps.
EARLIEST_S = 0.0
LATEST_S = 7258118400.0  # 2200-01-01T00:00:00Z


class InputWarning(UserWarning):
    """Something in the input was accepted but deserves the user's attention."""


def warn(message: str) -> None:
    warnings.warn(message, InputWarning, stacklevel=3)


def load_csv(path: Path, source: str) -> pd.DataFrame:
    """Read a CSV file as strings, or raise a :class:`ValidationError`.

    Every row must have as many fields as the header: a stray comma would otherwise shift
    a row's values into the wrong columns.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValidationError([problem(source, "file not found")]) from None
    except UnicodeDecodeError:
        raise ValidationError([problem(source, "not a UTF-8 text file")]) from None
    except OSError as exc:
        raise ValidationError([problem(source, f"cannot read: {exc.strerror or exc}")]) from None
    if not text.strip():
        raise ValidationError([problem(source, "empty file")])
    rows = csv.reader(io.StringIO(text))
    width = None
    probs = []
    for line, row in enumerate(rows, start=1):
        if width is None:
            width = len(row)
        elif row and len(row) != width:
            probs.append(problem(source, f"has {len(row)} fields, the header has {width}", line=line))
            if len(probs) >= MAX_SHAPE_PROBLEMS:
                break
    if probs:
        raise ValidationError(probs)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise ValidationError([problem(source, f"not a valid CSV file: {msg}")]) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def require_columns(df: pd.DataFrame, required: list[str], source: str) -> list[Problem]:
    return [problem(source, f"missing required column '{c}'") for c in required if c not in df.columns]


def parse_timestamps(
    values: pd.Series, source: str, field: str, *, required: bool = True
) -> tuple[np.ndarray, list[Problem], int]:
    """ISO-8601 strings -> POSIX seconds (NaN where bad or, when not ``required``, empty),
    the problems, and how many had no offset (those are read as UTC)."""
    text = values.astype(str).str.strip()
    empty = text == ""
    naive = ~text.str.contains(_OFFSET) & ~empty
    parsed = pd.to_datetime(text.where(~empty, None), errors="coerce", utc=True, format="ISO8601")
    bad = (parsed.isna() & ~empty | (empty if required else False)).to_numpy()
    probs = [
        problem(
            source,
            "not an ISO-8601 timestamp" if text.iloc[i] else "is empty",
            line=i + FIRST_DATA_LINE,
            field=field,
            value=text.iloc[i],
        )
        for i in np.flatnonzero(bad)
    ]
    secs = _to_seconds(parsed, bad | empty.to_numpy())
    far = ~bad & ((secs < EARLIEST_S) | (secs >= LATEST_S))
    probs += [
        problem(source, "out of range (years 1970 to 2199)", line=i + FIRST_DATA_LINE, field=field, value=text.iloc[i])
        for i in np.flatnonzero(far)
    ]
    secs[far] = np.nan
    return secs, probs, int((naive & ~pd.Series(bad, index=naive.index)).sum())


def _to_seconds(parsed: pd.Series, bad: np.ndarray) -> np.ndarray:
    out = np.full(len(parsed), np.nan)
    ok = ~bad
    if ok.any():
        good = pd.DatetimeIndex(parsed[ok]).as_unit("us")  # microseconds reach far beyond 2200
        out[ok] = good.asi8 / 1e6
    return out


def parse_numbers(
    values: pd.Series, source: str, field: str, *, required: bool = True
) -> tuple[np.ndarray, list[Problem]]:
    """Strings -> floats; empty cells are NaN (a problem when ``required``)."""
    text = values.astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    empty = (text == "").to_numpy()
    bad = (np.isnan(num) & ~empty) | ~np.isfinite(np.where(np.isnan(num), 0.0, num))
    if required:
        bad |= empty
    probs = [
        problem(
            source,
            "is empty" if empty[i] else "not a number",
            line=i + FIRST_DATA_LINE,
            field=field,
            value=text.iloc[i],
        )
        for i in np.flatnonzero(bad)
    ]
    num[bad] = np.nan
    return num, probs
