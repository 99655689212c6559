"""ACN-Data importer: a hand-written export in the real format gives exact rows and skip
counts; bad exports give every problem at once, one line each; connector placement."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evflex.errors import ValidationError
from evflex.io.acn import SESSION_COLUMNS, assign_connectors, parse_acn_data, read_acn_data

DATA = Path(__file__).resolve().parents[1] / "data" / "acn"
GOOD = DATA / "caltech_sessions.json"
BAD = DATA / "bad_records.json"


def record(session_id, station_id, connection, disconnect, kwh=5.0, zone="America/Los_Angeles"):
    return {
        "sessionID": session_id,
        "stationID": station_id,
        "connectionTime": connection,
        "disconnectTime": disconnect,
        "doneChargingTime": None,
        "kWhDelivered": kwh,
        "timezone": zone,
        "userID": None,
        "userInputs": None,
    }


def problems_of(text_or_obj, source="acn.json"):
    with pytest.raises(ValidationError) as exc:
        parse_acn_data(text_or_obj, source=source)
    return [str(p) for p in exc.value.problems]


def test_fixture_gives_exact_rows_and_skip_counts():
    df = read_acn_data(GOOD)
    assert tuple(df.columns) == SESSION_COLUMNS
    assert df["session_id"].tolist() == [
        "2_39_95_27_2018-04-25 14:40:31.283437",
        "2_39_78_362_2018-04-25 15:08:04.100254",
        "2_39_95_27_2018-04-26 14:02:17.736181",
    ]
    assert df["connector_id"].tolist() == ["2-39-95-27", "2-39-78-362", "2-39-95-27"]
    # Times in the records' zone (Pacific daylight time in April).
    assert [t.isoformat() for t in df["arrival"]] == [
        "2018-04-25T07:40:31-07:00",
        "2018-04-25T08:08:04-07:00",
        "2018-04-26T07:02:17-07:00",
    ]
    assert [t.isoformat() for t in df["departure"]] == [
        "2018-04-25T16:35:12-07:00",
        "2018-04-25T17:46:49-07:00",
        "2018-04-26T15:18:05-07:00",
    ]
    assert str(df["arrival"].dt.tz) == "America/Los_Angeles"
    assert df["energy_kwh"].tolist() == [7.32, 11.442, 14.905]
    for col in ("max_power_kw", "battery_kwh", "soc_arrival"):
        assert df[col].dtype == np.float64 and df[col].isna().all()
    assert df["phases"].tolist() == [0, 0, 0] and df["phases"].dtype == np.int64
    assert df["v2g"].tolist() == [False, False, False] and df["v2g"].dtype == bool
    assert df.attrs["skipped"] == {"missing_field": 0, "no_energy": 1, "bad_times": 1, "duplicate": 1, "overlap": 1}


def test_text_bytes_and_object_inputs_agree():
    text = GOOD.read_text()
    a = parse_acn_data(text)
    pd.testing.assert_frame_equal(a, parse_acn_data(text.encode()))
    pd.testing.assert_frame_equal(a, parse_acn_data(json.loads(text)))


def test_bad_records_give_every_problem_one_line_each():
    with pytest.raises(ValidationError) as exc:
        read_acn_data(BAD)
    # Records are numbered from 1; the first record (no connectionTime) would only be
    # skipped, but the others are broken: every problem, one line each.
    assert [str(p) for p in exc.value.problems] == [
        "bad_records.json: _items[2].connectionTime='2018-04-25T14:40:31Z': "
        "not an RFC 1123 date-time such as 'Wed, 25 Apr 2018 11:08:04 GMT'",
        "bad_records.json: _items[3].kWhDelivered='12.5': must be a finite number [kWh]",
        "bad_records.json: _items[4]='2_39_79_380_2018-04-25 16:02:11.000000': "
        "must be a JSON object (a session record)",
        "bad_records.json: _items[5].disconnectTime='Tue, 31 Apr 2018 01:02:03 GMT': "
        "not an RFC 1123 date-time such as 'Wed, 25 Apr 2018 11:08:04 GMT'",
        "bad_records.json: _items[5].timezone='America/Pasadena': unknown IANA time zone",
    ]


def test_invalid_json():
    assert problems_of('{"_items": [\n  {"sessionID": "a",}\n]}') == [
        "acn.json: invalid JSON: Expecting property name enclosed in double quotes (line 2, column 21)"
    ]
    assert problems_of(b'{"_items": "\xc3\x28"}', source="x.json") == [
        "x.json: invalid JSON: not UTF-8 text (invalid continuation byte)"
    ]


@pytest.mark.parametrize("doc", ['{"_meta": {}}', '{"_items": {}}', "[]", '"_items"'])
def test_no_items_list(doc):
    assert problems_of(doc) == ["acn.json: _items: must be a JSON object with an '_items' list of session records"]


def test_wrong_types():
    doc = {"_items": [record(True, ["x"], 1524668884, "Wed, 25 Apr 2018 23:35:12 GMT", kwh=float("nan"), zone=5)]}
    assert problems_of(doc) == [
        "acn.json: _items[1].sessionID=True: must be a non-empty string",
        "acn.json: _items[1].stationID=['x']: must be a non-empty string",
        "acn.json: _items[1].connectionTime=1524668884: "
        "not an RFC 1123 date-time such as 'Wed, 25 Apr 2018 11:08:04 GMT'",
        "acn.json: _items[1].kWhDelivered=nan: must be a finite number [kWh]",
        "acn.json: _items[1].timezone=5: unknown IANA time zone",
    ]


def test_missing_file(tmp_path):
    with pytest.raises(ValidationError) as exc:
        read_acn_data(tmp_path / "nope.json")
    assert [str(p) for p in exc.value.problems] == ["nope.json: file not found"]


def test_empty_export():
    df = parse_acn_data('{"_items": []}')
    assert len(df) == 0 and tuple(df.columns) == SESSION_COLUMNS
    assert str(df["arrival"].dt.tz) == "UTC"
    assert df.attrs["skipped"] == {"missing_field": 0, "no_energy": 0, "bad_times": 0, "duplicate": 0, "overlap": 0}


def test_mixed_or_missing_zones_fall_back_to_utc():
    a = record("a", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT")
    b = record("b", "s2", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT", zone="Europe/Paris")
    df = parse_acn_data({"_items": [a, b]})
    assert str(df["arrival"].dt.tz) == "UTC"
    assert df["arrival"].iloc[0].isoformat() == "2018-04-25T15:00:00+00:00"
    c = record("c", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT", zone=None)
    assert str(parse_acn_data({"_items": [c]})["arrival"].dt.tz) == "UTC"
    # Records without a zone do not veto the zone the others agree on.
    assert str(parse_acn_data({"_items": [a, c]})["arrival"].dt.tz) == "America/Los_Angeles"


def test_back_to_back_sessions_are_not_an_overlap():
    a = record("a", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT")
    b = record("b", "s1", "Wed, 25 Apr 2018 17:00:00 GMT", "Wed, 25 Apr 2018 18:00:00 GMT")
    inside = record("c", "s1", "Wed, 25 Apr 2018 15:30:00 GMT", "Wed, 25 Apr 2018 16:00:00 GMT")
    df = parse_acn_data({"_items": [b, inside, a]})
    assert df["session_id"].tolist() == ["a", "b"]
    assert df.attrs["skipped"]["overlap"] == 1


def test_duplicate_keeps_the_first_even_when_the_first_is_skipped():
    first = record("a", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT", kwh=0.0)
    second = record("a", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT", kwh=3.0)
    df = parse_acn_data({"_items": [first, second]})
    assert len(df) == 0
    assert df.attrs["skipped"] == {"missing_field": 0, "no_energy": 1, "bad_times": 0, "duplicate": 1, "overlap": 0}


def test_iso_output_round_trips():
    df = read_acn_data(GOOD)
    text = df["arrival"].map(lambda t: t.isoformat())
    assert (pd.to_datetime(text, utc=True) == df["arrival"].dt.tz_convert("UTC")).all()


# ----------------------------------------------------------------- assign_connectors


def sessions(*rows):
    items = [
        record(sid, station, f"Wed, 25 Apr 2018 {a} GMT", f"Wed, 25 Apr 2018 {d} GMT") for sid, station, a, d in rows
    ]
    return parse_acn_data({"_items": items})


def test_assign_connectors_first_fit_keeps_a_station_on_its_connector():
    df = sessions(
        ("a", "X", "08:00:00", "12:00:00"),
        ("b", "Y", "09:00:00", "10:00:00"),
        ("c", "Z", "09:30:00", "11:00:00"),  # both connectors busy: dropped
        ("d", "V", "10:30:00", "11:30:00"),  # lowest free connector: P2 (b left at 10:00)
        ("e", "X", "12:00:00", "13:00:00"),  # X's connector frees exactly now
        ("f", "Y", "12:30:00", "14:00:00"),  # Y back on P2, free since d left at 11:30
        ("g", "W", "12:45:00", "13:30:00"),  # all busy: dropped
    )
    out = assign_connectors(df, ["P1", "P2"])
    assert out["session_id"].tolist() == ["a", "b", "d", "e", "f"]
    assert out["connector_id"].tolist() == ["P1", "P2", "P2", "P1", "P2"]
    assert out.attrs["skipped"]["no_free_connector"] == 2
    assert out.attrs["skipped"]["overlap"] == 0  # the input's counts are kept
    assert tuple(out.columns) == SESSION_COLUMNS


def test_assign_connectors_prefers_the_station_connector_over_the_lowest_free_one():
    df = sessions(
        ("a", "X", "08:00:00", "09:00:00"),
        ("b", "Y", "08:10:00", "09:00:00"),
        ("c", "Y", "10:00:00", "11:00:00"),  # P1 and P2 free; Y was on P2
    )
    assert assign_connectors(df, ["P1", "P2"])["connector_id"].tolist() == ["P1", "P2", "P2"]


def test_assigned_sessions_never_overlap():
    df = read_acn_data(GOOD)
    for n in (1, 2, 3):
        out = assign_connectors(df, [f"P{k}" for k in range(n)])
        for _, one in out.groupby("connector_id"):
            assert (one["arrival"].iloc[1:].to_numpy() >= one["departure"].iloc[:-1].to_numpy()).all()
        assert len(out) + out.attrs["skipped"]["no_free_connector"] == len(df)


def test_assign_connectors_rejects_bad_ids():
    with pytest.raises(ValidationError) as exc:
        assign_connectors(read_acn_data(GOOD), [])
    assert [str(p) for p in exc.value.problems] == [
        "assign_connectors: connector_ids: must name at least one connector"
    ]
    with pytest.raises(ValidationError):
        assign_connectors(read_acn_data(GOOD), ["P1", "P1"])


# ------------------------------------------------------- declarations, skipped records

MISSING = DATA / "missing_fields.json"
CALTECH = Path(__file__).resolve().parents[2] / "examples" / "caltech_acn.toml"


def test_user_inputs_give_the_declared_departure_and_energy():
    df = read_acn_data(GOOD)
    assert df["declared_energy_kwh"].tolist()[0] == 10.5 and np.isnan(df["declared_energy_kwh"].iloc[1])
    assert df["declared_energy_kwh"].iloc[2] == 17.5
    assert df["declared_departure"].iloc[0].isoformat() == "2018-04-25T16:30:31-07:00"
    assert pd.isna(df["declared_departure"].iloc[1])
    assert df["declared_departure"].iloc[2].isoformat() == "2018-04-26T15:02:17-07:00"


def test_records_missing_a_field_are_skipped_with_one_warning_each(recwarn):
    df = read_acn_data(MISSING)
    lines = [str(w.message) for w in recwarn.list]
    assert lines == [
        "missing_fields.json: _items[2] (sessionID 'ongoing-1'): disconnectTime: missing or null; record skipped",
        "missing_fields.json: _items[3] (sessionID 'no-kwh'): kWhDelivered: missing or null; record skipped",
        "missing_fields.json: _items[4] (sessionID 'two-missing'): stationID, connectionTime: missing or null; "
        "record skipped",
        "missing_fields.json: _items[5]: disconnectTime: missing or null; record skipped",
        "missing_fields.json: skipped 4 of 7 record(s) missing a required field",
        "missing_fields.json: left out 2 declaration(s) in userInputs that cannot be used; "
        "first: _items[7].userInputs[1].kWhRequested='lots': not a number of kWh within 0-10000",
    ]
    assert df.attrs["skipped"]["missing_field"] == 4 and len(df) == 3
    # the last entry of userInputs stands; minutesAvailable when no requestedDeparture
    assert df["declared_energy_kwh"].iloc[0] == 14.5
    assert df["declared_departure"].iloc[0].isoformat() == "2018-04-25T16:00:00-07:00"
    assert df["declared_departure"].iloc[1].isoformat() == "2018-04-25T14:00:00-07:00"
    assert df["declared_energy_kwh"].iloc[1] == 8.0
    # a departure declared before the arrival, and a request that is not a number, are left out
    assert pd.isna(df["declared_departure"].iloc[2]) and np.isnan(df["declared_energy_kwh"].iloc[2])
    assert df.attrs["space_ids"][df["session_id"].iloc[0]] == "CA-148"


def test_a_missing_session_id_alone_is_a_problem():
    r = record("a", "s1", "Wed, 25 Apr 2018 15:00:00 GMT", "Wed, 25 Apr 2018 17:00:00 GMT")
    del r["sessionID"]
    assert problems_of({"_items": [record("b", "s2", r["connectionTime"], r["disconnectTime"]), r]}) == [
        "acn.json: _items[2].sessionID: required field is missing or null"
    ]


def read_missing():
    with pytest.warns(UserWarning) as rec:
        df = read_acn_data(MISSING)
    assert any("missing or null" in str(w.message) for w in rec)
    return df


def caltech_connectors():
    from evflex.io.scenario import read_scenario
    from evflex.model.topology import compile_topology

    return list(compile_topology(read_scenario(CALTECH, days=1).site).connector_ids)


def test_stations_named_like_the_site_chargers_keep_their_connector():
    ids = caltech_connectors()
    assert "CA-148-1" in ids
    out = assign_connectors(read_missing(), ids)
    assert out["connector_id"].tolist() == ["CA-148-1", "CA-149-1", "CA-212-1"]
    assert out.attrs["by_station"] == 3
    good = assign_connectors(read_acn_data(GOOD), ids)
    assert good["connector_id"].tolist() == ["CA-319-1", "CA-496-1", "CA-319-1"]
    assert set(good["connector_id"]) <= set(ids)


def test_other_stations_are_placed_around_the_named_ones():
    df = sessions(
        ("a", "X", "08:00:00", "12:00:00"),  # not a charger of the site: first fit
        ("b", "P1", "10:00:00", "11:00:00"),  # station P1 is charger P1: its connector P1-1
        ("c", "Y", "09:00:00", "09:30:00"),  # P1-1 free until 10:00: first fit there
        ("d", "Z", "09:45:00", "10:30:00"),  # P1-1 taken from 10:00, P2-1 by a: dropped
    )
    out = assign_connectors(df, ["P1-1", "P2-1"])
    assert dict(zip(out["session_id"], out["connector_id"])) == {"a": "P2-1", "b": "P1-1", "c": "P1-1"}
    assert out.attrs["skipped"]["no_free_connector"] == 1 and out.attrs["by_station"] == 1


def test_connector_of_station():
    from evflex.io.acn import connector_of_station

    assert connector_of_station("CA-148", ["CA-148-1", "CA-149-1"]) == "CA-148-1"
    assert connector_of_station("C1", ["C1-1", "C1-2"]) is None  # two connectors: which one?
    assert connector_of_station("C1-2", ["C1-1", "C1-2"]) == "C1-2"
    assert connector_of_station("2-39-78-362", ["CA-148-1"]) is None
