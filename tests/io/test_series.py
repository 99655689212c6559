"""Time-series CSV files (base load, PV, connection limit): columns, units, phases,
announcement times, and one line per problem naming the file line."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from evflex.errors import ValidationError
from evflex.io.scenario import read_scenario
from evflex.io.series import read_series
from evflex.sim.engine import simulate

V = 230.0


def write(tmp_path, text, name="series.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def problems(tmp_path, text, kind="base_load", name="series.csv"):
    with pytest.raises(ValidationError) as exc:
        read_series(write(tmp_path, text, name), kind, V)
    return [str(p) for p in exc.value.problems]


def test_problems_name_file_lines_in_order_after_blank_lines(tmp_path):
    text = "timestamp,limit_a\n\n2026-03-02T00:00:00Z,x\n2026-03-02T00:15:00Z,-3\n\n2026-03-02T00:10:00Z,20\n"
    assert problems(tmp_path, text, "limit", "limit.csv") == [
        "limit.csv:3: limit_a='x': not a number",
        "limit.csv:4: limit_a='-3': must be >= 0",
        "limit.csv:6: timestamp='2026-03-02T00:10:00Z': timestamps must increase",
    ]


def test_semicolons_are_one_problem(tmp_path):
    assert problems(tmp_path, "timestamp;power_kw\n2026-03-02T00:00:00Z;3,5\n", "pv", "pv.csv") == [
        "pv.csv: fields are separated by ';', not ','; save it as comma-separated"
    ]


def test_total_power_is_spread_over_the_phases(tmp_path):
    s = read_series(write(tmp_path, "timestamp,power_kw\n2026-03-02T00:00:00Z,6.9\n"), "base_load", V)
    assert np.allclose(s.values, 10.0)


T0 = "2026-03-02T00:00:00+01:00"
T1 = "2026-03-02T12:00:00+01:00"


def test_per_phase_power_converts_with_the_phase_to_neutral_voltage(tmp_path):
    s = read_series(write(tmp_path, f"timestamp,l1_kw,l2_kw,l3_kw\n{T0},2.3,4.6,0\n{T1},0,0,0.23\n"), "base_load", V)
    assert s.values.shape == (2, 3)
    assert np.allclose(s.values, [[10.0, 20.0, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    ("header", "row"), [("l1_a,l2_a,l3_a", "0,10,0"), ("l1_kw,l2_kw,l3_kw", "0,2.3,0"), ("l2_kw", "2.3")]
)
def test_a_single_phase_pv_inverter_on_l2_loads_only_l2(tmp_path, header, row):
    s = read_series(write(tmp_path, f"timestamp,{header}\n{T0},{row}\n{T1},{row}\n"), "pv", V)
    assert np.allclose(s.values, [[0.0, 10.0, 0.0]] * 2)


def test_total_pv_power_is_spread_evenly(tmp_path):
    s = read_series(write(tmp_path, f"timestamp,power_kw\n{T0},6.9\n"), "pv", V)
    assert np.allclose(s.values, [[10.0, 10.0, 10.0]])


def test_per_phase_and_total_columns_together_say_which_to_drop(tmp_path):
    assert problems(tmp_path, f"timestamp,l1_kw,l2_kw,l3_kw,power_kw\n{T0},1,1,1,3\n", "pv", "pv.csv") == [
        "pv.csv: gives both per-phase columns ('l1_kw', 'l2_kw', 'l3_kw') and the total 'power_kw': "
        "drop 'power_kw' (or the per-phase columns)"
    ]
    assert problems(tmp_path, f"timestamp,l1_a,l1_kw\n{T0},1,1\n", "base_load", "load.csv") == [
        "load.csv: gives both per-phase currents ('l1_a') and per-phase powers ('l1_kw'): keep one of the two"
    ]
    assert problems(tmp_path, f"timestamp,kw\n{T0},1\n", "pv", "pv.csv") == [
        "pv.csv: missing value columns: give 'l1_a', 'l2_a', 'l3_a' [A], 'l1_kw', 'l2_kw', 'l3_kw' [kW] "
        "or 'power_kw' [kW]"
    ]


def test_bad_numbers_name_file_line_column_and_value(tmp_path):
    text = f"timestamp,l1_kw,l2_kw,l3_kw\n{T0},0,abc,0\n{T1},inf,1,\n"
    assert problems(tmp_path, text, "pv", "pv.csv") == [
        "pv.csv:2: l2_kw='abc': not a number",
        "pv.csv:3: l1_kw='inf': not a finite number",
        "pv.csv:3: l3_kw='': is empty",
    ]


def test_unknown_columns_warn(tmp_path):
    with pytest.warns(UserWarning, match="ignoring unknown column"):
        read_series(write(tmp_path, f"timestamp,power_kw,L3_kw\n{T0},1,2\n"), "pv", V)


def test_a_limit_of_zero_is_a_curtailment_and_negative_is_an_error(tmp_path):
    s = read_series(write(tmp_path, f"timestamp,limit_a\n{T0},0\n{T1},25\n"), "limit", V)
    assert s.values.tolist() == [0.0, 25.0] and s.known_from_s is None
    assert problems(tmp_path, f"timestamp,limit_a\n{T0},-0.5\n", "limit", "limit.csv") == [
        "limit.csv:2: limit_a='-0.5': must be >= 0"
    ]


def test_known_from_is_the_announcement_time_of_each_row(tmp_path):
    text = f"timestamp,limit_a,known_from\n{T0},20,\n{T1},0,2026-03-02T09:00:00+01:00\n"
    s = read_series(write(tmp_path, text), "limit", V)
    assert s.known_from_s.tolist() == [
        pd.Timestamp(T0).timestamp(),
        pd.Timestamp("2026-03-02T08:00:00Z").timestamp(),
    ]
    pv = read_series(write(tmp_path, f"timestamp,power_kw,known_from\n{T0},1,{T0}\n"), "pv", V)
    assert pv.known_from_s.tolist() == [pd.Timestamp(T0).timestamp()]


def test_known_from_after_the_timestamp_or_bad_is_an_error(tmp_path):
    text = f"timestamp,limit_a,known_from\n{T0},20,2026-03-02T01:00:00+01:00\n{T1},0,noon\n"
    assert problems(tmp_path, text, "limit", "limit.csv") == [
        "limit.csv:2: known_from='2026-03-02T01:00:00+01:00': after the row's timestamp "
        "'2026-03-02T00:00:00+01:00' (a value is announced before it takes effect, or when it does)",
        "limit.csv:3: known_from='noon': not an ISO-8601 timestamp",
    ]


SCENARIO = """
[site]
name = "t"
connection_limit_a = 32.0
pv = {{ file = "pv.csv" }}
connection_limit_series = {{ file = "limit.csv" }}

[[chargers]]
count = 2

[sessions]
file = "sessions.csv"

[simulation]
start = "{t0}"
days = 1
period_s = 300
"""


def test_scenario_takes_per_phase_pv_and_an_announced_curtailment_to_zero(tmp_path):
    (tmp_path / "sessions.csv").write_text(
        "session_id,connector_id,arrival,departure,energy_kwh\n"
        "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,40\n"
        "b,C2-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,40\n"
    )
    (tmp_path / "pv.csv").write_text(f"timestamp,l2_kw\n{T0},2.3\n2026-03-03T00:00:00+01:00,0\n")
    (tmp_path / "limit.csv").write_text(
        "timestamp,limit_a,known_from\n"
        f"{T0},32,\n"
        f"2026-03-02T10:00:00+01:00,0,2026-03-02T09:00:00+01:00\n"
        f"2026-03-02T11:00:00+01:00,32,2026-03-02T09:00:00+01:00\n"
        "2026-03-03T00:00:00+01:00,32,\n"
    )
    p = tmp_path / "scenario.toml"
    p.write_text(textwrap.dedent(SCENARIO.format(t0=T0)))
    sc = read_scenario(p)
    assert sc.pv.values.shape == (2, 3) and np.allclose(sc.pv.values[0], [0.0, 10.0, 0.0])
    assert sc.connection_limit.known_from_s is not None
    res = simulate(sc, "llf")
    ts = res.timeseries
    curtailed = (ts.index >= pd.Timestamp("2026-03-02T10:00:00+01:00")) & (
        ts.index < pd.Timestamp("2026-03-02T11:00:00+01:00")
    )
    ev = ["ev_l1_a", "ev_l2_a", "ev_l3_a"]
    assert curtailed.sum() == 12
    assert np.allclose(ts.loc[curtailed, ev].to_numpy(), 0.0)
    assert ts.loc[ts.index < pd.Timestamp("2026-03-02T10:00:00+01:00"), "ev_power_kw"].max() > 10.0
    assert ts.loc[ts.index >= pd.Timestamp("2026-03-02T11:00:00+01:00"), "ev_power_kw"].max() > 10.0
    # the single-phase inverter's 10 A offsets the base load on L2 only
    assert np.allclose(ts[["base_l1_a", "base_l3_a"]].to_numpy(), 0.0)
    assert np.allclose(ts["base_l2_a"].to_numpy(), -10.0)
