"""The scenario file: keys, defaults, and bad input reported all at once."""

import textwrap

import numpy as np
import pytest

from evflex.errors import ValidationError
from evflex.io.scenario import parse_rotation, read_scenario

SESSIONS = (
    "session_id,connector_id,arrival,departure,energy_kwh\n"
    "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12\n"
)

GOOD = """
[site]
name = "test"
connection_limit_a = 32.0

[[chargers]]
count = 2
connectors = 2
phase_rotation = "cyclic"

[[chargers]]
id = "P1"
phases = 1
phase_rotation = "L3"
max_current_a = 32.0
modulation = false

[[feeders]]
id = "F1"
limit_a = 20.0
chargers = ["C1", "P1"]

[sessions]
file = "sessions.csv"

[simulation]
start = "2026-03-02T00:00:00+01:00"
days = 1
"""


def write(tmp_path, text, sessions=SESSIONS):
    (tmp_path / "sessions.csv").write_text(sessions)
    p = tmp_path / "scenario.toml"
    p.write_text(textwrap.dedent(text))
    return p


def lines(tmp_path, text, **kw):
    with pytest.raises(ValidationError) as exc:
        read_scenario(write(tmp_path, text, **kw))
    return [str(p) for p in exc.value.problems]


def test_good_scenario(tmp_path):
    sc = read_scenario(write(tmp_path, GOOD))
    ids = [c.id for c in sc.site.chargers]
    assert ids == ["C1", "C2", "P1"]
    assert [c.phase_rotation for c in sc.site.chargers] == [(0, 1, 2), (1, 2, 0), (2,)]
    assert sc.site.connector_ids() == ["C1-1", "C1-2", "C2-1", "C2-2", "P1-1"]
    assert sc.site.feeders[0].chargers == ("C1", "P1")
    assert sc.simulation.n_steps == 1440 and sc.simulation.strategy.value == "llf"
    assert len(sc.sessions) == 1


def test_overrides(tmp_path):
    sc = read_scenario(write(tmp_path, GOOD), strategy="edf", days=2.0, seed=7)
    assert sc.simulation.strategy.value == "edf" and sc.simulation.days == 2.0 and sc.simulation.seed == 7


def test_malformed_toml(tmp_path):
    assert lines(tmp_path, "[site\nname = 1\n") == [
        "scenario.toml: invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)"
    ]


def test_schema_problems_all_at_once(tmp_path):
    bad = (
        GOOD.replace("connection_limit_a = 32.0", "connection_limit_a = -5\nconnection_limt_a = 3")
        .replace('phase_rotation = "L3"', 'phase_rotation = "L4"')
        .replace("days = 1", 'days = 1\nstrategy = "fastest"')
    )
    assert lines(tmp_path, bad) == [
        "scenario.toml: site.connection_limit_a=-5: input should be greater than or equal to 0",
        "scenario.toml: site.connection_limt_a=3: unknown key",
        "scenario.toml: chargers[2]: phase_rotation 'L4' must name 1 distinct phase(s) of L1, L2, L3 (e.g. 'L2') "
        "or be 'cyclic'",
        "scenario.toml: simulation.strategy='fastest': input should be 'uncontrolled', 'equal', 'edf', 'llf' or "
        "'proportional'",
    ]


def test_missing_sections(tmp_path):
    assert lines(tmp_path, '[site]\nname = "x"\nconnection_limit_a = 10\n') == [
        "scenario.toml: chargers: required key is missing",
        "scenario.toml: sessions: required key is missing",
        "scenario.toml: simulation: required key is missing",
    ]


def test_references_and_files_checked_together(tmp_path):
    bad = GOOD.replace('chargers = ["C1", "P1"]', 'chargers = ["C1", "X9"]').replace(
        'start = "2026-03-02T00:00:00+01:00"', 'start = "2026-03-02T00:00:00"'
    )
    assert lines(tmp_path, bad) == [
        "scenario.toml: feeders[1].chargers='X9': unknown charger",
        "scenario.toml: simulation.start='2026-03-02T00:00:00': needs an offset (e.g. '+01:00') or "
        "[simulation].timezone",
    ]


def test_problems_in_referenced_files_are_reported(tmp_path):
    bad_sessions = SESSIONS.replace(",12\n", ",-12\n")
    (tmp_path / "load.csv").write_text("timestamp,l1_a,l2_a,l3_a\n2026-03-02T00:00:00+01:00,1,2,x\n")
    text = GOOD.replace("connection_limit_a = 32.0", 'connection_limit_a = 32.0\nbase_load = { file = "load.csv" }')
    assert lines(tmp_path, text, sessions=bad_sessions) == [
        "sessions.csv:2: energy_kwh='-12': must be >= 0",
        "load.csv:2: l3_a='x': not a number",
    ]


def test_series_must_cover_the_window(tmp_path):
    text = GOOD.replace("connection_limit_a = 32.0", 'connection_limit_a = 32.0\nbase_load = { file = "load.csv" }')
    # two 12-hour intervals cover the day
    (tmp_path / "load.csv").write_text("timestamp,power_kw\n2026-03-02T00:00:00+01:00,3\n2026-03-02T12:00:00+01:00,5\n")
    read_scenario(write(tmp_path, text))
    # two 6-hour intervals do not
    (tmp_path / "load.csv").write_text("timestamp,power_kw\n2026-03-02T00:00:00+01:00,3\n2026-03-02T06:00:00+01:00,5\n")
    assert lines(tmp_path, text) == [
        "load.csv: covers 2026-03-02T00:00:00+01:00 to 2026-03-02T12:00:00+01:00 but the simulation runs "
        "2026-03-02T00:00:00+01:00 to 2026-03-03T00:00:00+01:00"
    ]


def test_true_or_a_quoted_number_is_not_a_number(tmp_path):
    """TOML's true would read as 1 A (or 1 s steps) and "28" as 28: both are named instead."""
    text = GOOD.replace("connection_limit_a = 32.0", "connection_limit_a = true\nmax_unbalance_a = false")
    text = text.replace("days = 1", 'days = "1"')
    msg = "input should be a number (not true/false or a quoted string)"
    assert lines(tmp_path, text) == [
        f"scenario.toml: site.connection_limit_a=True: {msg}",
        f"scenario.toml: site.max_unbalance_a=False: {msg}",
        f"scenario.toml: simulation.days='1': {msg}",
    ]


def test_a_limit_schedule_holds_its_last_value_to_the_end(tmp_path):
    """A DSO curtailment as change points: 32 A, 10 A from 06:00 (a six-hour interval, then
    nothing): the 10 A hold to the end of the day; a schedule starting late is refused."""
    text = GOOD.replace(
        "connection_limit_a = 32.0", 'connection_limit_a = 32.0\nconnection_limit_series = { file = "limit.csv" }'
    )
    schedule = "timestamp,limit_a\n2026-03-02T00:00:00+01:00,32\n2026-03-02T06:00:00+01:00,10\n"
    (tmp_path / "limit.csv").write_text(schedule)
    sc = read_scenario(write(tmp_path, text))
    assert sc.connection_limit is not None
    assert sc.connection_limit.sample(np.array([sc.simulation.end_s - 60.0])).ravel().tolist() == [10.0]
    (tmp_path / "limit.csv").write_text("timestamp,limit_a\n2026-03-02T01:00:00+01:00,32\n")
    assert lines(tmp_path, text) == [
        "limit.csv: starts at 2026-03-02T01:00:00+01:00 but the simulation starts at 2026-03-02T00:00:00+01:00 "
        "(a limit holds from its first timestamp)"
    ]


def test_base_load_file_in_power_is_split_over_phases(tmp_path):
    (tmp_path / "load.csv").write_text(
        "timestamp,power_kw\n2026-03-02T00:00:00+01:00,6.9\n2026-03-03T00:00:00+01:00,6.9\n"
    )
    text = GOOD.replace("connection_limit_a = 32.0", 'connection_limit_a = 32.0\nbase_load = { file = "load.csv" }')
    sc = read_scenario(write(tmp_path, text))
    assert np.allclose(sc.base_load.values, 10.0)


def test_parse_rotation():
    assert parse_rotation("L2L3L1") == (1, 2, 0)
    assert parse_rotation("l3") == (2,)
    assert parse_rotation("L1L1") is None and parse_rotation("L4") is None and parse_rotation("") is None


def test_per_connector_rotation(tmp_path):
    text = GOOD.replace('phase_rotation = "cyclic"', 'phase_rotation = ["L1L2L3", "L3L1L2"]')
    sc = read_scenario(write(tmp_path, text))
    from evflex.model import compile_topology

    topo = compile_topology(sc.site)
    assert topo.phase_map[:4, 0].tolist() == [0, 2, 0, 2]  # C1-1, C1-2, C2-1, C2-2
    bad = GOOD.replace('phase_rotation = "cyclic"', 'phase_rotation = ["L1L2L3"]')
    assert lines(tmp_path, bad) == ["scenario.toml: chargers[1]: phase_rotation lists 1 rotation(s) for 2 connector(s)"]


def test_sessions_outside_the_window_are_an_error_with_a_hint(tmp_path):
    old = SESSIONS.replace("2026-03-02", "2019-04-25")
    assert lines(tmp_path, GOOD, sessions=old) == [
        "sessions.csv: none of the 1 sessions lies inside the simulated window 2026-03-02T00:00:00+01:00 to "
        "2026-03-03T00:00:00+01:00; they run 2019-04-25T08:00:00+01:00 to 2019-04-25T17:00:00+01:00 "
        "(set [simulation].start, or pass --start)"
    ]
    sc = read_scenario(write(tmp_path, GOOD, sessions=old), start="2019-04-25T00:00:00+01:00")
    assert len(sc.sessions) == 1


def test_an_activation_delay_longer_than_the_step_is_accepted(tmp_path):
    text = GOOD.replace('phase_rotation = "cyclic"', 'phase_rotation = "cyclic"\nactivation_delay_s = 90.0')
    sc = read_scenario(write(tmp_path, text))
    assert sc.site.chargers[0].response.activation_delay_s == 90.0


def test_line_to_line_site_with_transformer(tmp_path):
    from evflex.model import compile_topology

    text = """
    [site]
    name = "us"
    voltage_ln_v = 120.0
    transformer_kw = 75.0
    transformer_primary_ll_v = 480.0
    max_unbalance_a = 20.0

    [[chargers]]
    ids = ["CA-1", "CA-2"]
    connection = "L1-L2"
    max_current_a = 32.0

    [[chargers]]
    id = "CA-3"
    connection = "L3-L1"

    [sessions]
    file = "sessions.csv"

    [simulation]
    start = "2026-03-02T00:00:00+01:00"
    days = 1
    """
    sessions = (
        "session_id,connector_id,arrival,departure,energy_kwh\n"
        "a,CA-2-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12\n"
    )
    sc = read_scenario(write(tmp_path, text, sessions=sessions))
    assert [c.connection for c in sc.site.chargers] == ["L1-L2", "L1-L2", "L3-L1"]
    assert all(c.phases == 1 for c in sc.site.chargers)
    t = compile_topology(sc.site)
    assert t.connector_ids == ("CA-1-1", "CA-2-1", "CA-3-1")
    assert t.row_limit_a[0] == pytest.approx(75e3 / 3 / 120) and t.max_unbalance_a == 20.0
    assert "primary:L1" in t.row_ids


def test_line_to_line_keys_are_checked(tmp_path):
    text = GOOD.replace('phase_rotation = "cyclic"', 'phase_rotation = "cyclic"\nconnection = "L1-L2"')
    out = lines(tmp_path, text)
    assert any("line-to-line charger (L1-L2) has one conductor pair: remove phase_rotation" in x for x in out), out
    text = GOOD.replace("connection_limit_a = 32.0", "")
    assert lines(tmp_path, text) == [
        "scenario.toml: site: give connection_limit_a, transformer_kw or both (a connection_limit_series "
        "varies the limit over time and needs the connection's rating too)"
    ]
    text = GOOD.replace("connection_limit_a = 32.0", 'connection_limit_a = 32.0\nconnection = "L1-L3"')
    assert any("connection" in x for x in lines(tmp_path, text))


def test_controller_keys_reach_the_controller(tmp_path):
    text = GOOD + "\n[controller]\norder_period_s = 300\nphase_switch_dwell_s = 1800\nmax_phase_switches = 2\n"
    ctrl = read_scenario(write(tmp_path, text)).controller
    assert (ctrl.order_period_s, ctrl.phase_switch_dwell_s, ctrl.max_phase_switches) == (300.0, 1800.0, 2)
    assert any("order_period_s" in x for x in lines(tmp_path, GOOD + "\n[controller]\norder_period_s = -1\n"))
