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
- what the driver declared, from the *last* entry of ``userInputs`` (the app lets a driver
  revise the request; the last one stands): ``declared_energy_kwh`` = ``kWhRequested``,
  ``declared_departure`` = ``requestedDeparture`` (RFC 1123), or ``connectionTime +
  minutesAvailable`` when that is missing. A declaration that cannot be used (not a
  number, not a date, a departure not after the arrival) is left out, with one warning
  for all of them; sessions without ``userInputs`` declare nothing (NaN/NaT);
- the rest is unknown: ``max_power_kw``, ``battery_kwh``, ``soc_arrival`` NaN,
  ``phases`` 0, ``v2g`` False. (ACN EVSEs are single-phase 208/240 V in the US.)

``spaceID`` (the parking space: ACN-Sim's station id, such as ``CA-148``) is kept in
``df.attrs["space_ids"]`` (session id -> space) for :func:`assign_connectors`.
``doneChargingTime``, ``userID``, ``siteID`` and ``clusterID`` are read past, not checked.

Records are numbered from 1 in messages, in file order: ``_items[1]`` is the first.

Cleaning (counted in ``df.attrs["skipped"]``): a record without ``stationID``,
``connectionTime``, ``disconnectTime`` or ``kWhDelivered`` (missing or null, as an export
has for a session still plugged in) is ``missing_field``, with one warning line per
record naming it and the field(s), and a count at the end; a record whose ``sessionID``
was seen before is a ``duplicate`` (the first in file order is kept, whatever becomes of
it); ``kWhDelivered <= 0`` is ``no_energy``; ``disconnectTime <= connectionTime`` is
``bad_times``; a session that starts while an earlier-arriving kept session of the same
station is still plugged in is an ``overlap`` (the later one is skipped). Anything else
wrong in a record (a value of the wrong type, a date that is not RFC 1123, an unknown
time zone, a missing ``sessionID``) is a problem: the import stops with every problem.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem
from evflex.io.common import warn
from evflex.io.sessions import MAX_ENERGY_KWH
from evflex.model.sessions import SESSION_COLUMNS

#: Record fields the importer needs.
REQUIRED_FIELDS = ("sessionID", "stationID", "connectionTime", "disconnectTime", "kWhDelivered")
#: Required fields whose absence skips the record (with a warning) rather than stopping.
SKIPPABLE_FIELDS = ("stationID", "connectionTime", "disconnectTime", "kWhDelivered")
#: Keys of ``df.attrs["skipped"]`` set by :func:`parse_acn_data`.
SKIP_REASONS = ("missing_field", "no_energy", "bad_times", "duplicate", "overlap")
#: Skipped records warned about one by one; the count at the end covers them all.
MAX_RECORD_WARNINGS = 100
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
    space_id: str | None = None
    declared_departure: datetime | None = None
    declared_energy_kwh: float = math.nan


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
        the number of records skipped for it; ``df.attrs["space_ids"]`` maps session ids to
        the records' ``spaceID``.

    Raises
    ------
    ValidationError
        Every problem at once: invalid JSON, no ``_items`` list, a record that is not an
        object, a ``sessionID`` missing or null, an id that is not a string, a timestamp
        that is not RFC 1123, a ``kWhDelivered`` that is not a finite number, an unknown
        time zone. (Records missing another required field are skipped, with a warning.)
    """
    document = _decode(text_or_obj, source)
    items = document.get("_items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValidationError(
            [problem(source, "must be a JSON object with an '_items' list of session records", field="_items")]
        )
    problems: list[Problem] = []
    missing: list[str] = []
    notes: list[str] = []
    records = [
        r
        for r in (_parse_record(item, i, source, problems, missing, notes) for i, item in enumerate(items, start=1))
        if r is not None
    ]
    if problems:
        raise ValidationError(problems)
    for line in missing[:MAX_RECORD_WARNINGS]:
        warn(f"{source}: {line}")
    if missing:
        more = f" ({len(missing) - MAX_RECORD_WARNINGS} not listed)" if len(missing) > MAX_RECORD_WARNINGS else ""
        warn(f"{source}: skipped {len(missing)} of {len(items)} record(s) missing a required field{more}")
    if notes:
        warn(f"{source}: left out {len(notes)} declaration(s) in userInputs that cannot be used; first: {notes[0]}")
    kept, skipped = _clean(records)
    frame = _frame(kept, _common_zone(records))
    frame.attrs["skipped"] = {**skipped, "missing_field": len(missing)}
    frame.attrs["space_ids"] = {r.session_id: r.space_id for r in kept if r.space_id is not None}
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


def _parse_record(
    item: Any, number: int, source: str, problems: list[Problem], missing: list[str], notes: list[str]
) -> _Record | None:
    """Check record ``number`` (from 1); return None if it is skipped (a line appended to
    ``missing``) or has problems (appended to ``problems``). Declarations that cannot be
    used are left out with a line in ``notes``."""
    where = f"_items[{number}]"
    if not isinstance(item, dict):
        problems.append(problem(source, "must be a JSON object (a session record)", field=where, value=item))
        return None
    before = len(problems)
    absent = [name for name in SKIPPABLE_FIELDS if item.get(name) is None]
    if item.get("sessionID") is None and not absent:  # a skipped record need not name itself
        problems.append(problem(source, "required field is missing or null", field=f"{where}.sessionID"))
    session_id = _identifier(item, "sessionID", where, source, problems)
    station_id = _identifier(item, "stationID", where, source, problems)
    arrival = _timestamp(item, "connectionTime", where, source, problems)
    departure = _timestamp(item, "disconnectTime", where, source, problems)
    energy_kwh = _number(item, "kWhDelivered", where, source, problems)
    zone = _zone(item, where, source, problems)
    if len(problems) > before:
        return None
    if absent:
        named = f" (sessionID {session_id!r})" if session_id else ""
        fields = ", ".join(absent)
        missing.append(f"{where}{named}: {fields}: missing or null; record skipped")
        return None
    assert session_id and station_id and arrival and departure and energy_kwh is not None
    space = item.get("spaceID")
    space_id = space.strip() if isinstance(space, str) and space.strip() else None
    declared_departure, declared_energy_kwh = _declared(item, where, arrival, notes)
    return _Record(
        number,
        session_id,
        station_id,
        arrival,
        departure,
        energy_kwh,
        zone,
        space_id,
        declared_departure,
        declared_energy_kwh,
    )


def _declared(item: dict, where: str, arrival: datetime, notes: list[str]) -> tuple[datetime | None, float]:
    """The departure and energy the driver declared in the last entry of ``userInputs``."""
    inputs = item.get("userInputs")
    if not isinstance(inputs, list) or not inputs:
        return None, math.nan
    here = f"{where}.userInputs[{len(inputs)}]"
    last = inputs[-1]
    if not isinstance(last, dict):
        notes.append(f"{here}: not a JSON object")
        return None, math.nan
    energy = math.nan
    kwh = last.get("kWhRequested")
    if kwh is not None:
        if _finite(kwh) and 0.0 <= kwh <= MAX_ENERGY_KWH:
            energy = float(kwh)
        else:
            notes.append(f"{here}.kWhRequested={kwh!r}: not a number of kWh within 0-{MAX_ENERGY_KWH:g}")
    departure = None
    requested = last.get("requestedDeparture")
    minutes = last.get("minutesAvailable")
    if requested is not None:
        departure = _parse_rfc1123(requested)
        if departure is None:
            notes.append(f"{here}.requestedDeparture={requested!r}: not an RFC 1123 date-time")
    elif minutes is not None:
        if _finite(minutes) and 0 < minutes <= 1e7:
            departure = arrival + timedelta(minutes=float(minutes))
        else:
            notes.append(f"{here}.minutesAvailable={minutes!r}: not a positive number of minutes")
    if departure is not None and departure <= arrival:
        source_field = "requestedDeparture" if requested is not None else "minutesAvailable"
        notes.append(f"{here}.{source_field}: declared departure not after connectionTime")
        departure = None
    return departure, energy


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


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
            "declared_departure": _times([r.declared_departure for r in records], zone),
            "declared_energy_kwh": np.array([r.declared_energy_kwh for r in records], dtype=float),
        },
        columns=list(SESSION_COLUMNS),
    )


def _posix_s(times: pd.Series) -> np.ndarray:
    return ((times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=float)


def connector_of_station(name: str, connector_ids: Collection[str]) -> str | None:
    """The connector a station named ``name`` is on a site whose chargers are named after
    stations: ``name`` itself if it is a connector id, or ``name-1`` if that is the one
    connector of charger ``name`` (``CA-148`` -> ``CA-148-1``); None otherwise."""
    if name in connector_ids:
        return name
    if f"{name}-1" in connector_ids and f"{name}-2" not in connector_ids:
        return f"{name}-1"
    return None


def assign_connectors(df: pd.DataFrame, connector_ids: list[str]) -> pd.DataFrame:
    """Place sessions (e.g. imported ones) on a site's connectors.

    A session whose station is a charger of the site goes to that charger's connector
    (:func:`connector_of_station`; tried with the record's ``spaceID`` from
    ``df.attrs["space_ids"]``, then its ``connector_id``): real ACN-Data sessions on the
    ACN site as ACN-Sim models it (``examples/caltech_acn.toml``) keep their EVSE. The
    others are placed first fit by arrival: in arrival order, a session goes to the
    connector its station (its current ``connector_id``) was last placed on if that
    connector is free for its whole stay, else to the lowest-index connector free for its
    stay; a session that finds no such connector is dropped. Back-to-back sessions
    (departure == next arrival) do not collide.

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
        ``"no_free_connector"``, the number dropped; ``attrs["by_station"]`` the number
        placed on their own station's connector.

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
    spaces: dict[str, str] = df.attrs.get("space_ids", {})
    ordered = df.sort_values("arrival", kind="stable").reset_index(drop=True)
    arrival_s, departure_s = _posix_s(ordered["arrival"]), _posix_s(ordered["departure"])
    stations = ordered["connector_id"].astype(str).tolist()
    slot_of = {c: k for k, c in enumerate(ids)}
    busy = _Occupancy(len(ids))
    placed: dict[int, int] = {}  # row -> connector index
    for row, (sid, station) in enumerate(zip(ordered["session_id"].astype(str).tolist(), stations)):
        for name in (spaces.get(sid), station):
            named = connector_of_station(name, slot_of) if name else None
            if named is not None:
                slot = slot_of[named]
                if busy.free(slot, arrival_s[row], departure_s[row]):
                    busy.take(slot, arrival_s[row], departure_s[row])
                    placed[row] = slot
                break
    by_station = len(placed)
    last_place: dict[str, int] = {}
    for row, station in enumerate(stations):
        if row in placed:
            continue
        a, d = arrival_s[row], departure_s[row]
        choice = last_place.get(station)
        if choice is None or not busy.free(choice, a, d):
            choice = next((k for k in range(len(ids)) if busy.free(k, a, d)), None)
        if choice is None:
            continue
        busy.take(choice, a, d)
        last_place[station] = choice
        placed[row] = choice
    rows = sorted(placed)
    out = ordered.iloc[rows].reset_index(drop=True)
    out["connector_id"] = pd.Series([ids[placed[r]] for r in rows], dtype=str)
    out.attrs["skipped"] = {**df.attrs.get("skipped", {}), "no_free_connector": len(ordered) - len(rows)}
    out.attrs["by_station"] = by_station
    return out


class _Occupancy:
    """The stays placed on each connector: sorted, non-overlapping intervals [s]."""

    def __init__(self, n: int):
        self.starts: list[list[float]] = [[] for _ in range(n)]
        self.ends: list[list[float]] = [[] for _ in range(n)]

    def free(self, slot: int, start: float, end: float) -> bool:
        k = bisect.bisect_right(self.starts[slot], start)
        if k > 0 and self.ends[slot][k - 1] > start:
            return False
        return not (k < len(self.starts[slot]) and self.starts[slot][k] < end)

    def take(self, slot: int, start: float, end: float) -> None:
        k = bisect.bisect_right(self.starts[slot], start)
        self.starts[slot].insert(k, start)
        self.ends[slot].insert(k, end)
