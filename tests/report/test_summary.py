"""The plain-text summary and notices shared by the command line and the reports."""

import numpy as np
import pytest

from evflex.report.summary import (
    MISSING,
    SUMMARY_COLUMNS,
    grouped_notices,
    is_violation,
    notices,
    run_notices,
    summary_cells,
    summary_columns,
    summary_title,
)

KPIS = {
    "strategy": "llf",
    "period_s": 60.0,
    "energy_served_pct": 98.7012,
    "sessions_fully_served_pct": 93.22,
    "unmet_energy_kwh": 40.04,
    "max_phase_current_a": 62.44,
    "limit_violation_steps": 0,
    "peak_site_kw": 42.01,
    "switch_ons_per_session_mean": 1.0847,
    "grid_limit_a": 63.0,
    "base_load_over_limit_steps": 0,
}


def test_cells_follow_the_columns():
    cells = summary_cells(KPIS)
    assert len(cells) == len(SUMMARY_COLUMNS)
    assert dict(zip([key for key, _, _ in SUMMARY_COLUMNS], cells)) == {
        "strategy": "llf",
        "energy_served_pct": "98.70",
        "sessions_fully_served_pct": "93.2",
        "unmet_energy_kwh": "40.0",
        "max_phase_current_a": "62.4",
        "limit_violation_steps": "0",
        "peak_site_kw": "42.0",
        "switch_ons_per_session_mean": "1.08",
    }


def test_missing_or_odd_kpis_do_not_break_the_table():
    cells = summary_cells({"strategy": "edf", "energy_served_pct": "n/a"})
    assert cells[0] == "edf" and cells[1] == "n/a"
    assert cells[2:] == [MISSING] * (len(SUMMARY_COLUMNS) - 2)
    assert summary_title([{}]) == "limit unknown; over = steps above a current limit"
    assert summary_title([KPIS, {**KPIS, "grid_limit_a": 40.0}]).startswith("limit 40 A per phase")


@pytest.mark.parametrize(
    "key, value, bad",
    [
        ("limit_violation_steps", 3, True),
        ("limit_violation_steps", 0, False),
        ("limit_violation_s", np.float64(0.5), True),
        ("max_overload_a", np.int64(2), True),
        ("limit_violation_steps", True, False),
        ("limit_violation_steps", None, False),
        ("unmet_energy_kwh", 40.0, False),
    ],
)
def test_is_violation(key, value, bad):
    assert is_violation(key, value) is bad


def test_no_notice_for_an_ordinary_run():
    assert notices(KPIS) == [] and notices({}) == [] and notices({**KPIS, "no_ev_can_charge": False}) == []


def test_base_load_above_the_limit():
    (text,) = notices({**KPIS, "base_load_over_limit_steps": 150})
    assert text.startswith("the base load alone is above the limit on 150 steps (2.5 h): ")
    assert "no controller can keep the site under the limit then" in text
    (one,) = notices({"base_load_over_limit_steps": 1})  # no step length known: no duration
    assert one.startswith("the base load alone is above the limit on 1 step: ")


def test_no_ev_can_charge_explains_zero_served():
    texts = notices({**KPIS, "energy_served_pct": 0.0, "no_ev_can_charge": True, "base_load_over_limit_steps": 5})
    assert len(texts) == 2 and texts[1].startswith("no EV can charge within the limit")


def test_notices_of_several_runs_are_said_once():
    runs = [{**KPIS, "strategy": s, "base_load_over_limit_steps": 60} for s in ("uncontrolled", "llf")]
    runs[1]["no_ev_can_charge"] = True
    lines = run_notices(runs)
    assert len(lines) == 2
    assert lines[0].startswith("the base load alone")  # every run: no prefix
    assert lines[1].startswith("llf: no EV can charge")
    assert grouped_notices(runs)[1][0] == ["llf"] and grouped_notices(runs[:1])[0][0] is None


def test_an_unbalance_beyond_its_limit_is_said_with_its_extent():
    run = {**KPIS, "max_unbalance_a": 20.0, "unbalance_violation_steps": 166, "phase_unbalance_max_a": 41.012}
    (text,) = notices(run)
    assert text == "the phase currents were more than max_unbalance_a = 20 A apart on 166 steps (up to 41.0 A)"
    (text,) = notices({**run, "unbalance_violation_surprise_steps": 120})
    assert text.endswith(
        "(up to 41.0 A), 120 of them in a step where an EV took less than a newly offered current or stopped on "
        "its own (no reading could tell beforehand)"
    )
    (text,) = notices({**run, "unbalance_violation_surprise_steps": 120, "strategy": "uncontrolled"})
    assert text.endswith("(up to 41.0 A)")  # holding no limit, it cannot be surprised
    assert notices({**run, "unbalance_violation_steps": 0}) == []
    assert notices({**run, "max_unbalance_a": None}) == []  # no limit declared: nothing to say


def test_costs_and_co2_get_columns_when_a_run_has_them():
    runs = [{**KPIS, "total_cost_eur": 12.345}, {**KPIS, "strategy": "edf"}]
    columns = summary_columns(runs)
    assert [h for _, h, _ in columns][-1] == "cost EUR"  # no run has co2_kg
    assert summary_cells(runs[0], columns)[-1] == "12.35" and summary_cells(runs[1], columns)[-1] == MISSING
    assert summary_columns([KPIS]) == SUMMARY_COLUMNS
