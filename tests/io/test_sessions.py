"""The sessions CSV: good files load, bad files give every problem at once, one line each."""

import numpy as np
import pandas as pd
import pytest

from evflex.errors import ValidationError
from evflex.io.sessions import read_sessions, sessions_frame, write_sessions_csv
from evflex.model import Charger, Site, compile_topology
from evflex.model.sessions import SessionTable

TOPO = compile_topology(
    Site("s", 230.0, 63.0, (Charger("C1", connectors=2), Charger("C2", phases=1, phase_rotation=(1,))))
)
HEADER = "session_id,connector_id,arrival,departure,energy_kwh"


def write(tmp_path, text, name="sessions.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def problems(tmp_path, text):
    with pytest.raises(ValidationError) as exc:
        read_sessions(write(tmp_path, text), TOPO)
    return [str(p) for p in exc.value.problems]


def test_good_file(tmp_path):
    p = write(
        tmp_path,
        HEADER + ",max_power_kw,phases,battery_kwh,soc_arrival,v2g\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12.5,11,3,60,0.4,false\n"
        "b,C2-1,2026-03-02T09:00:00Z,2026-03-02T12:00:00Z,5,,,,,\n",
    )
    t = read_sessions(p, TOPO)
    assert t.session_id.tolist() == ["a", "b"]
    assert t.connector.tolist() == [0, 2]
    assert t.arrival_s[0] == pd.Timestamp("2026-03-02T07:00:00Z").timestamp()
    assert t.phases.tolist() == [3, 0]
    assert np.isnan(t.max_power_kw[1]) and t.battery_kwh[0] == 60.0


def test_missing_column(tmp_path):
    assert problems(tmp_path, "session_id,connector_id,arrival,departure\n") == [
        "sessions.csv: missing required column 'energy_kwh'"
    ]


def test_every_row_problem_at_once(tmp_path):
    text = (
        HEADER + ",phases\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T07:00:00+01:00,10,3\n"
        "b,C1-2,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,-4,3\n"
        "c,C9-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,4,3\n"
        "d,C2-1,yesterday,2026-03-02T17:00:00+01:00,4,4\n"
        "a,C1-1,2026-03-03T08:00:00+01:00,2026-03-03T17:00:00+01:00,ten,1\n"
    )
    assert problems(tmp_path, text) == [  # in file order; one line's problems in column order
        "sessions.csv:2: departure='2026-03-02T07:00:00+01:00': not after arrival '2026-03-02T08:00:00+01:00'",
        "sessions.csv:3: energy_kwh='-4': must be >= 0",
        "sessions.csv:4: connector_id='C9-1': unknown connector (the site has C1-1, C1-2, C2-1)",
        "sessions.csv:5: arrival='yesterday': not an ISO-8601 timestamp",
        "sessions.csv:5: phases='4': must be 1, 2 or 3",
        "sessions.csv:6: session_id='a': duplicate of line 2",
        "sessions.csv:6: energy_kwh='ten': not a number",
    ]


def test_overlap_on_a_connector(tmp_path):
    text = (
        HEADER + "\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T12:00:00+01:00,10\n"
        "b,C1-1,2026-03-02T11:00:00+01:00,2026-03-02T17:00:00+01:00,10\n"
    )
    assert problems(tmp_path, text) == [
        "sessions.csv:3: arrival='2026-03-02T11:00:00+01:00': overlaps session 'a' "
        "(line 2, until '2026-03-02T12:00:00+01:00') on connector C1-1"
    ]


def test_ev_below_the_minimum_current(tmp_path):
    text = HEADER + ",max_power_kw,phases\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,3,3\n"
    assert problems(tmp_path, text) == ["sessions.csv:2: max_power_kw='3': below the 6 A minimum on 3 phase(s)"]


def test_naive_timestamps_and_unknown_columns_warn(tmp_path):
    p = write(tmp_path, HEADER + ",colour\na,C1-1,2026-03-02T08:00:00,2026-03-02T12:00:00,10,red\n")
    with pytest.warns(UserWarning) as rec:
        t = read_sessions(p, TOPO)
    text = " | ".join(str(w.message) for w in rec)
    assert "ignoring unknown column(s) 'colour'" in text and "read as UTC" in text
    assert t.arrival_s[0] == pd.Timestamp("2026-03-02T08:00:00Z").timestamp()


def test_request_above_battery_room_warns(tmp_path):
    p = write(
        tmp_path, HEADER + ",battery_kwh,soc_arrival\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,50,40,0.5\n"
    )
    with pytest.warns(UserWarning, match="more than the battery can take"):
        read_sessions(p, TOPO)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ValidationError, match="sessions.csv: empty file"):
        read_sessions(write(tmp_path, ""), TOPO)
    with pytest.raises(ValidationError, match="nope.csv: file not found"):
        read_sessions(tmp_path / "nope.csv", TOPO)
    with pytest.raises(ValidationError, match="header only"):
        read_sessions(write(tmp_path, HEADER + "\n"), TOPO)


def test_round_trip(tmp_path):
    p = write(
        tmp_path,
        HEADER + ",max_power_kw,phases,battery_kwh,soc_arrival,v2g\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12.5,11,3,60,0.4,true\n",
    )
    t = read_sessions(p, TOPO)
    out = write_sessions_csv(sessions_frame(t, TOPO), tmp_path / "again.csv")
    t2 = read_sessions(out, TOPO)
    for name in ("arrival_s", "departure_s", "energy_kwh", "phases", "battery_kwh", "soc_arrival", "v2g"):
        assert np.array_equal(getattr(t, name), getattr(t2, name), equal_nan=True)


def test_max_current_column(tmp_path):
    p = write(
        tmp_path,
        HEADER + ",max_current_a\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,13\n"
        "b,C1-2,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,\n",
    )
    t = read_sessions(p, TOPO)
    assert t.max_current_a[0] == 13.0 and np.isnan(t.max_current_a[1])
    assert problems(tmp_path, HEADER + ",max_current_a\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,4\n") == [
        "sessions.csv:2: max_current_a='4': below the 6 A minimum"
    ]


def test_declared_departure_and_energy_are_read_and_round_trip(tmp_path):
    p = write(
        tmp_path,
        HEADER + ",declared_departure,declared_energy_kwh\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12.5,2026-03-02T16:00:00+01:00,20\n"
        "b,C1-2,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,5,,\n"
        "c,C2-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,5,2026-03-02T18:30:00+01:00,\n",
    )
    t = read_sessions(p, TOPO)
    assert t.declared_departure_s[0] == pd.Timestamp("2026-03-02T15:00:00Z").timestamp()
    assert np.isnan(t.declared_departure_s[1])
    assert t.declared_departure_s[2] == pd.Timestamp("2026-03-02T17:30:00Z").timestamp()
    assert t.declared_energy_kwh[0] == 20.0 and np.isnan(t.declared_energy_kwh[1:]).all()
    out = write_sessions_csv(sessions_frame(t, TOPO, tz="Europe/Copenhagen"), tmp_path / "again.csv")
    assert "declared_departure" in out.read_text().splitlines()[0]
    t2 = read_sessions(out, TOPO)
    for name in ("declared_departure_s", "declared_energy_kwh", "departure_s", "energy_kwh"):
        assert np.array_equal(getattr(t, name), getattr(t2, name), equal_nan=True)


def test_declared_columns_default_to_nan_and_are_not_written_when_empty(tmp_path):
    t = read_sessions(write(tmp_path, HEADER + "\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10\n"), TOPO)
    assert np.isnan(t.declared_departure_s).all() and np.isnan(t.declared_energy_kwh).all()
    built = SessionTable.build(["x"], [0], [0.0], [3600.0], [1.0])
    assert built.declared_departure_s.shape == (1,) and np.isnan(built.declared_energy_kwh).all()
    assert np.isnan(built.take([0]).declared_departure_s).all()
    out = write_sessions_csv(sessions_frame(t, TOPO), tmp_path / "again.csv")
    assert "declared" not in out.read_text()


def test_bad_declarations(tmp_path):
    text = (
        HEADER + ",declared_departure,declared_energy_kwh\n"
        "a,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,2026-03-02T07:00:00Z,-1\n"
        "b,C1-2,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,soon,lots\n"
    )
    assert problems(tmp_path, text) == [
        "sessions.csv:2: declared_departure='2026-03-02T07:00:00Z': not after arrival '2026-03-02T08:00:00Z'",
        "sessions.csv:2: declared_energy_kwh='-1': must be >= 0",
        "sessions.csv:3: declared_departure='soon': not an ISO-8601 timestamp",
        "sessions.csv:3: declared_energy_kwh='lots': not a number",
    ]


def test_lines_are_the_file_lines_after_blank_lines_and_multi_line_fields(tmp_path):
    text = (
        HEADER + ",v2g\n"
        "\n"
        'a,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,"not\nsure"\n'
        "\n"
        "\n"
        "b,C1-2,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,-1,\n"
        "c,C9-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,3,\n"
    )
    assert problems(tmp_path, text) == [
        "sessions.csv:3: v2g='not\\nsure': must be true or false",
        "sessions.csv:7: energy_kwh='-1': must be >= 0",
        "sessions.csv:8: connector_id='C9-1': unknown connector (the site has C1-1, C1-2, C2-1)",
    ]
    crlf = text.replace("\n", "\r\n")
    assert problems(tmp_path, crlf)[1:] == [
        "sessions.csv:7: energy_kwh='-1': must be >= 0",
        "sessions.csv:8: connector_id='C9-1': unknown connector (the site has C1-1, C1-2, C2-1)",
    ]


def test_row_width_problems_name_the_file_lines(tmp_path):
    text = HEADER + "\n\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,extra\n"
    assert problems(tmp_path, text) == ["sessions.csv:3: has 6 fields, the header has 5"]


@pytest.mark.parametrize(("sep", "name"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")])
def test_a_file_not_separated_by_commas_is_one_problem(tmp_path, sep, name):
    text = (HEADER + "\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10\n").replace(",", sep)
    assert problems(tmp_path, text) == [
        f"sessions.csv: fields are separated by {name}, not ','; save it as comma-separated"
    ]


def test_a_column_given_twice(tmp_path):
    text = HEADER + ",energy_kwh\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,10,11\n"
    assert problems(tmp_path, text) == ["sessions.csv: column 'energy_kwh' appears more than once"]


def test_an_unclosed_quote(tmp_path):
    text = HEADER + '\na,C1-1,2026-03-02T08:00:00Z,2026-03-02T12:00:00Z,"10\n'
    assert problems(tmp_path, text) == ["sessions.csv:2: not a valid CSV file: a quoted field is not closed"]
