"""ACN-Data importer: real charging sessions from the Caltech Adaptive Charging Network.

What belongs here: reading the public ACN-Data JSON export (Caltech, JPL and Office001
sites, https://ev.caltech.edu/dataset) into a sessions table, and placing imported
sessions on the connectors of another site.

The export is a JSON object whose ``_items`` list holds one record per session::

    {"_meta": {...},
     "_items": [{"_id": "...", "sessionID": "2_39_78_362_2019-01-02 14:57:25.164453",
                 "siteID": "0002", "clusterID": "0039", "spaceID": "CA-317",
                 "stationID": "2-39-78-362",
                 "connectionTime": "Wed, 02 Jan 2019 14:57:25 GMT",
                 "disconnectTime": "Wed, 02 Jan 2019 23:12:03 GMT",
                 "doneChargingTime": "Wed, 02 Jan 2019 18:49:51 GMT",
                 "kWhDelivered": 9.68, "timezone": "America/Los_Angeles",
                 "userID": "000000561", "userInputs": [{"kWhRequested": 25.0, ...}]}]}

Mapping to the sessions table (columns :data:`SESSION_COLUMNS`):

- ``session_id`` = ``sessionID``; ``connector_id`` = ``stationID`` (one EVSE, one plug);
- ``arrival`` = ``connectionTime``, ``departure`` = ``disconnectTime``: RFC 1123 strings,
  converted to timestamps in the records' ``timezone`` when every record that gives one
  names the same zone (so local times of day read naturally), otherwise in UTC;
- ``energy_kwh`` = ``kWhDelivered``: the energy a session needed is taken to be what it
  received, the usual practice with this data set (``userInputs`` exist for a minority of
  sessions only, and many requests were not met or were overestimated);
- the rest is unknown: ``max_power_kw``, ``battery_kwh``, ``soc_arrival`` NaN,
  ``phases`` 0, ``v2g`` False. (ACN EVSEs are single-phase 208/240 V in the US.)

``doneChargingTime``, ``userID``, ``userInputs``, ``spaceID``, ``siteID`` and
``clusterID`` are read past, not checked.

Cleaning (counted in ``df.attrs["skipped"]``): a record whose ``sessionID`` was seen
before is a ``duplicate`` (the first in file order is kept, whatever becomes of it);
``kWhDelivered <= 0`` is ``no_energy``; ``disconnectTime <= connectionTime`` is
``bad_times``; a session that starts while an earlier-arriving kept session of the same
station is still plugged in is an ``overlap`` (the later one is skipped).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem
from evflex.model.sessions import SESSION_COLUMNS

#: Record fields the importer needs.
REQUIRED_FIELDS = ("sessionID", "stationID", "connectionTime", "disconnectTime", "kWhDelivered")
#: Keys of ``df.attrs["skipped"]`` set by :func:`parse_acn_data`.
SKIP_REASONS = ("no_energy", "bad_times", "duplicate", "overlap")
#: Phases value meaning "unknown" in a sessions table.
UNKNOWN_PHASES = 0

_RFC1123_EXAMPLE = "Wed, 25 Apr 2018 11:08:04 GMT"


@dataclass(frozen=True)
class _Record:
    """One valid ACN record, in file order."""

    index: int
    session_id: str
    station_id: str
    arrival: datetime
    departure: datetime
    energy_kwh: float
    zone: str | None


def read_acn_data(path: str | os.PathLike) -> pd.DataFrame:
    """Read an ACN-Data JSON export into a sessions table.

    Parameters
    ----------
    path : str or path-like
        The ``.json`` file. Problems name it by its file name.

    Returns
    -------
    pandas.DataFrame
        See :func:`parse_acn_data`.

    Raises
    ------
    ValidationError
        The file cannot be read, or any problem :func:`parse_acn_data` reports.
    """
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValidationError([problem(source, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError([problem(source, f"cannot read file: {exc}")]) from None
    return parse_acn_data(text, source=source)


def parse_acn_data(text_or_obj: str | bytes | dict, *, source: str = "acn.json") -> pd.DataFrame:
    """Parse an ACN-Data export (JSON text or the already-decoded object).

    Parameters
    ----------
    text_or_obj : str, bytes or dict
        The JSON document, or the object ``json.loads`` made of it.
    source : str
        Name of the input in problem messages.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SESSION_COLUMNS`, one row per kept session, sorted by arrival;
        ``energy_kwh`` [kWh]. ``df.attrs["skipped"]`` maps each of :data:`SKIP_REASONS` to
        the number of records skipped for it.

    Raises
    ------
    ValidationError
        Every problem at once: invalid JSON, no ``_items`` list, a record that is not an
        object, a required field missing or null, an id that is not a string, a timestamp
        that is not RFC 1123, a ``kWhDelivered`` that is not a finite number, an unknown
        time zone.
    """
    document = _decode(text_or_obj, source)
    items = document.get("_items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValidationError(
            [problem(source, "must be a JSON object with an '_items' list of session records", field="_items")]
        )
    problems: list[Problem] = []
    records = [r for r in (_parse_record(item, i, source, problems) for i, item in enumerate(items)) if r is not None]
    if problems:
        raise ValidationError(problems)
    kept, skipped = _clean(records)
    frame = _frame(kept, _common_zone(records))
    frame.attrs["skipped"] = skipped
    return frame


def _decode(text_or_obj: Any, source: str) -> Any:
    if not isinstance(text_or_obj, (str, bytes, bytearray)):
        return text_or_obj
    try:
        return json.loads(text_or_obj)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [problem(source, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ValidationError([problem(source, f"invalid JSON: not UTF-8 text ({exc.reason})")]) from None


def _parse_record(item: Any, index: int, source: str, problems: list[Problem]) -> _Record | None:
    """Check one record; append its problems and return None if it has any."""
    where = f"_items[{index}]"
    if not isinstance(item, dict):
        problems.append(problem(source, "must be a JSON object (a session record)", field=where, value=item))
        return None
    before = len(problems)
    for name in REQUIRED_FIELDS:
        if item.get(name) is None:
            problems.append(problem(source, "required field is missing or null", field=f"{where}.{name}"))
    session_id = _identifier(item, "sessionID", where, source, problems)
    station_id = _identifier(item, "stationID", where, source, problems)
    arrival = _timestamp(item, "connectionTime", where, source, problems)
    departure = _timestamp(item, "disconnectTime", where, source, problems)
    energy_kwh = _number(item, "kWhDelivered", where, source, problems)
    zone = _zone(item, where, source, problems)
    if len(problems) > before:
        return None
    assert session_id and station_id and arrival and departure and energy_kwh is not None
    return _Record(index, session_id, station_id, arrival, departure, energy_kwh, zone)


def _identifier(item: dict, name: str, where: str, source: str, problems: list[Problem]) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        problems.append(problem(source, "must be a non-empty string", field=f"{where}.{name}", value=value))
        return None
    return str(value).strip()


def _timestamp(item: dict, name: str, where: str, source: str, problems: list[Problem]) -> datetime | None:
    value = item.get(name)
    if value is None:
        return None
    parsed = _parse_rfc1123(value)
    if parsed is None:
        problems.append(
            problem(
                source, f"not an RFC 1123 date-time such as '{_RFC1123_EXAMPLE}'", field=f"{where}.{name}", value=value
            )
        )
    return parsed


def _parse_rfc1123(value: Any) -> datetime | None:
    """An RFC 1123 / RFC 5322 date-time -> aware UTC datetime, or None.

    A zone of ``-0000`` (no zone information) is read as UTC.
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _number(item: dict, name: str, where: str, source: str, problems: list[Problem]) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(problem(source, "must be a finite number [kWh]", field=f"{where}.{name}", value=value))
        return None
    return float(value)


def _zone(item: dict, where: str, source: str, problems: list[Problem]) -> str | None:
    value = item.get("timezone")
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(problem(source, "unknown IANA time zone", field=f"{where}.timezone", value=value))
        return None
    return value


def _common_zone(records: list[_Record]) -> str:
    """The zone every record that names one agrees on; UTC otherwise."""
    zones = {r.zone for r in records if r.zone is not None}
    return zones.pop() if len(zones) == 1 else "UTC"


def _clean(records: list[_Record]) -> tuple[list[_Record], dict[str, int]]:
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    seen: set[str] = set()
    valid: list[_Record] = []
    for r in records:
        if r.session_id in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(r.session_id)
        if r.energy_kwh <= 0.0:
            skipped["no_energy"] += 1
        elif r.departure <= r.arrival:
            skipped["bad_times"] += 1
        else:
            valid.append(r)
    valid.sort(key=lambda r: (r.arrival, r.index))
    kept: list[_Record] = []
    busy_until: dict[str, datetime] = {}
    for r in valid:
        if r.station_id in busy_until and r.arrival < busy_until[r.station_id]:
            skipped["overlap"] += 1
            continue
        busy_until[r.station_id] = r.departure
        kept.append(r)
    return kept, skipped


def _times(values: list[datetime | None], zone: str) -> pd.DatetimeIndex:
    """Aware datetimes (None: not known, NaT) as timestamps in ``zone``."""
    stamps = [pd.NaT if v is None else pd.Timestamp(v) for v in values]
    return pd.DatetimeIndex(stamps, tz="UTC").as_unit("us").tz_convert(zone)


def _frame(records: list[_Record], zone: str) -> pd.DataFrame:
    n = len(records)
    return pd.DataFrame(
        {
            "session_id": pd.Series([r.session_id for r in records], dtype=str),
            "connector_id": pd.Series([r.station_id for r in records], dtype=str),
            "arrival": _times([r.arrival for r in records], zone),
            "departure": _times([r.departure for r in records], zone),
            "energy_kwh": np.array([r.energy_kwh for r in records], dtype=float),
            "max_power_kw": np.full(n, np.nan),
            "phases": np.full(n, UNKNOWN_PHASES, dtype=np.int64),
            "battery_kwh": np.full(n, np.nan),
            "soc_arrival": np.full(n, np.nan),
            "v2g": np.zeros(n, dtype=bool),
            "declared_departure": _times([None] * n, zone),
            "declared_energy_kwh": np.full(n, np.nan),
        },
        columns=list(SESSION_COLUMNS),
    )


def _posix_s(times: pd.Series) -> np.ndarray:
    return ((times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=float)


def assign_connectors(df: pd.DataFrame, connector_ids: list[str]) -> pd.DataFrame:
    """Place sessions (e.g. imported ones) on a site's connectors, first fit by arrival.

    In arrival order, a session goes to the connector its station (its current
    ``connector_id``) was last placed on if that connector is free at its arrival, else
    to the lowest-index free connector; a session that finds every connector occupied is
    dropped. A connector is free when its last car has left (departure <= arrival).

    Parameters
    ----------
    df : pandas.DataFrame
        A sessions table (columns :data:`SESSION_COLUMNS`).
    connector_ids : list of str
        The site's connectors, in order of preference.

    Returns
    -------
    pandas.DataFrame
        The placed sessions, sorted by arrival, with ``connector_id`` from
        ``connector_ids``; ``attrs["skipped"]`` is the input's plus
        ``"no_free_connector"``, the number dropped.

    Raises
    ------
    ValidationError
        ``connector_ids`` empty or with duplicates.
    """
    ids = [str(c) for c in connector_ids]
    problems = []
    if not ids:
        problems.append(problem("assign_connectors", "must name at least one connector", field="connector_ids"))
    if len(set(ids)) != len(ids):
        problems.append(problem("assign_connectors", "connector ids must be unique", field="connector_ids"))
    if problems:
        raise ValidationError(problems)
    ordered = df.sort_values("arrival", kind="stable").reset_index(drop=True)
    arrival_s, departure_s = _posix_s(ordered["arrival"]), _posix_s(ordered["departure"])
    free_at_s = np.full(len(ids), -np.inf)
    last_place: dict[str, int] = {}
    rows: list[int] = []
    placed: list[str] = []
    for row, (station, arrival, departure) in enumerate(
        zip(ordered["connector_id"].tolist(), arrival_s.tolist(), departure_s.tolist())
    ):
        slot = last_place.get(station)
        if slot is None or free_at_s[slot] > arrival:
            free = np.flatnonzero(free_at_s <= arrival)
            slot = int(free[0]) if len(free) else None
        if slot is None:
            continue
        free_at_s[slot] = departure
        last_place[station] = slot
        rows.append(row)
        placed.append(ids[slot])
    out = ordered.iloc[rows].reset_index(drop=True)
    out["connector_id"] = pd.Series(placed, dtype=str)
    out.attrs["skipped"] = {**df.attrs.get("skipped", {}), "no_free_connector": len(ordered) - len(rows)}
    return out
