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
#: Name of the index of a frame read by :func:`load_csv`: the file line of each row.
LINE = "line"
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

    The frame's index (named :data:`LINE`) holds the physical line of the file each row
    starts on, as an editor numbers them: blank lines are skipped but counted, and a quoted
    field spanning lines counts every line. Every row must have as many fields as the
    header: a stray comma would otherwise shift a row's values into the wrong columns. A
    file separated by ``;``, tabs or ``|`` (as spreadsheets save "CSV" in many locales) is
    one problem saying so.
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
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    probs: list[Problem] = []
    while len(probs) < MAX_SHAPE_PROBLEMS:
        line = reader.line_num + 1  # the physical line this row starts on
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            msg = "a quoted field is not closed" if "end of data" in str(exc) else str(exc)
            probs.append(problem(source, f"not a valid CSV file: {msg}", line=line))
            break
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if header is None:
            header = [c.strip() for c in row]
            _check_separator(header, source)
        elif len(row) != len(header):
            probs.append(problem(source, f"has {len(row)} fields, the header has {len(header)}", line=line))
        else:
            rows.append(row)
            lines.append(line)
    if probs:
        raise ValidationError(probs)
    assert header is not None  # the text is not blank
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ValidationError([problem(source, f"column {c!r} appears more than once") for c in dup])
    return pd.DataFrame(rows, columns=header, index=pd.Index(lines, name=LINE), dtype=str)


#: Field separators a spreadsheet may have used instead of commas, and how to name them.
_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def _check_separator(header: list[str], source: str) -> None:
    """A header of one field holding another separator: the file is not comma-separated."""
    if len(header) != 1:
        return
    for sep, name in _SEPARATORS.items():
        if sep in header[0]:
            raise ValidationError(
                [problem(source, f"fields are separated by {name}, not ','; save it as comma-separated")]
            )


def row_lines(values: pd.Series | pd.DataFrame) -> np.ndarray:
    """The file line of each row: the index of a frame :func:`load_csv` read, else the
    line the row would have in a file without blank lines (2, 3, ...)."""
    if values.index.name == LINE:
        return values.index.to_numpy(dtype=np.int64)
    return np.arange(len(values), dtype=np.int64) + FIRST_DATA_LINE


def sorted_problems(probs: list[Problem]) -> list[Problem]:
    """Problems of one file in file order: file-wide ones first, then by line (stable)."""
    return sorted(probs, key=lambda p: -1 if p.line is None else p.line)


def require_columns(df: pd.DataFrame, required: list[str], source: str) -> list[Problem]:
    return [problem(source, f"missing required column '{c}'") for c in required if c not in df.columns]


def parse_timestamps(
    values: pd.Series, source: str, field: str, *, required: bool = True
) -> tuple[np.ndarray, list[Problem], int]:
    """ISO-8601 strings -> POSIX seconds (NaN where bad or, when not ``required``, empty),
    the problems, and how many had no offset (those are read as UTC)."""
    text = values.astype(str).str.strip()
    lines = row_lines(values)
    empty = text == ""
    naive = ~text.str.contains(_OFFSET) & ~empty
    parsed = pd.to_datetime(text.where(~empty, None), errors="coerce", utc=True, format="ISO8601")
    bad = (parsed.isna() & ~empty | (empty if required else False)).to_numpy()
    probs = [
        problem(
            source,
            "not an ISO-8601 timestamp" if text.iloc[i] else "is empty",
            line=lines[i],
            field=field,
            value=text.iloc[i],
        )
        for i in np.flatnonzero(bad)
    ]
    secs = _to_seconds(parsed, bad | empty.to_numpy())
    far = ~bad & ((secs < EARLIEST_S) | (secs >= LATEST_S))
    probs += [
        problem(source, "out of range (years 1970 to 2199)", line=lines[i], field=field, value=text.iloc[i])
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
    lines = row_lines(values)
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    empty = (text == "").to_numpy()
    bad = (np.isnan(num) & ~empty) | ~np.isfinite(np.where(np.isnan(num), 0.0, num))
    if required:
        bad |= empty
    probs = [
        problem(
            source,
            "is empty" if empty[i] else "not a finite number" if np.isinf(num[i]) else "not a number",
            line=lines[i],
            field=field,
            value=text.iloc[i],
        )
        for i in np.flatnonzero(bad)
    ]
    num[bad] = np.nan
    return num, probs
