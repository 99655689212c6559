"""The plan LP on HiGHS: hand-checked optima, and every plan within every row (property)."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evflex.control.scheduling import ChargingLP, solve_plan

KW_PER_A_1PH = 0.23  # one phase at 230 V


def one_row(S, T, cap, price, energy, arrival=None, departure=None, max_a=16.0):
    return ChargingLP(
        period_h=1.0,
        arrival_step=np.zeros(S, dtype=int) if arrival is None else np.array(arrival),
        departure_step=np.full(S, T) if departure is None else np.array(departure),
        energy_kwh=np.array(energy, dtype=float),
        max_current_a=np.full(S, max_a),
        kw_per_a=np.full(S, KW_PER_A_1PH),
        coef_a=np.ones((1, S)),
        cap_a=np.full((1, T), cap),
        price_eur_per_kwh=np.array(price, dtype=float),
    )


def test_one_ev_charges_in_the_cheap_hour():
    # 2.3 kWh = 10 A for one hour on one phase; the second hour costs half
    plan = solve_plan(one_row(1, 2, 16.0, [2.0, 1.0], [2.3]))
    assert plan.ok
    assert plan.current_a == pytest.approx(np.array([[0.0, 10.0]]))
    assert plan.energy_cost_eur == pytest.approx(2.3)
    assert plan.shortfall_kwh == pytest.approx([0.0])


def test_a_shared_limit_serves_what_fits_and_reports_the_rest():
    # two EVs, one hour, 10 A between them: 2.3 kWh of 2 x 2.3 kWh served
    plan = solve_plan(one_row(2, 1, 10.0, [1.0], [2.3, 2.3]))
    assert plan.ok
    assert plan.current_a.sum() == pytest.approx(10.0)
    assert plan.shortfall_kwh.sum() == pytest.approx(2.3)


def test_price_moves_charging_but_not_past_the_departure():
    # cheap hour 2, but the EV leaves after hour 1: it must charge in hours 0-1
    plan = solve_plan(one_row(1, 3, 16.0, [3.0, 2.0, 0.5], [3.68], departure=[2]))
    assert plan.ok
    assert plan.current_a[0, 2] == 0.0
    assert plan.current_a[0] == pytest.approx([0.0, 16.0, 0.0])


def test_bad_inputs_are_named():
    lp = one_row(1, 2, 16.0, [1.0], [2.3])  # price for one step of two
    with pytest.raises(ValueError, match="price_eur_per_kwh: shape"):
        solve_plan(lp)


@st.composite
def plans(draw):
    S = draw(st.integers(1, 8))
    T = draw(st.integers(1, 12))
    R = draw(st.integers(1, 4))
    arrival = np.array([draw(st.integers(0, T - 1)) for _ in range(S)])
    departure = np.array([draw(st.integers(int(a), T)) for a in arrival])
    return ChargingLP(
        period_h=draw(st.sampled_from([0.25, 1.0])),
        arrival_step=arrival,
        departure_step=departure,
        energy_kwh=np.array([draw(st.floats(0.0, 40.0)) for _ in range(S)]),
        max_current_a=np.array([draw(st.sampled_from([6.0, 16.0, 32.0])) for _ in range(S)]),
        kw_per_a=np.array([draw(st.sampled_from([0.23, 0.69])) for _ in range(S)]),
        coef_a=np.array([[draw(st.sampled_from([0.0, 1.0, 1.0])) for _ in range(S)] for _ in range(R)]),
        cap_a=np.array([[draw(st.floats(-5.0, 60.0)) for _ in range(T)] for _ in range(R)]),
        price_eur_per_kwh=np.array([draw(st.floats(-0.1, 0.5)) for _ in range(T)]),
        demand_eur_per_kw=draw(st.sampled_from([0.0, 0.0, 5.0])),
        sunk_peak_kw=draw(st.sampled_from([0.0, 3.0])),
    )


@settings(max_examples=60, deadline=None)
@given(plans())
def test_a_plan_keeps_every_row_bound_and_request(lp):
    plan = solve_plan(lp)
    assert plan.ok
    x = plan.current_a
    S, T, _ = lp.shape
    tol = 1e-6
    assert np.all(x >= 0.0) and np.all(x <= lp.max_current_a[:, None] + tol)
    steps = np.arange(T)[None, :]
    plugged = (steps >= lp.arrival_step[:, None]) & (steps < lp.departure_step[:, None])
    assert np.all(x[~plugged] == 0.0)  # nothing outside the stay
    assert np.all(lp.coef_a @ x <= np.maximum(lp.cap_a, 0.0) + tol)  # every site row, every step
    served = (x * lp.kw_per_a[:, None]).sum(axis=1) * lp.period_h
    assert np.all(served <= lp.energy_kwh + 1e-6)  # never beyond the request
    assert served + plan.shortfall_kwh == pytest.approx(lp.energy_kwh, abs=1e-6)


def demand(energy_kwh, sunk_kw=0.0, base_kw=None, T=4, rate=10.0):
    """One EV, 4 one-hour steps of up to 32 A on one phase (7.36 kW), a flat price."""
    lp = one_row(1, T, 100.0, [0.2] * T, [energy_kwh], max_a=32.0)
    return replace(lp, demand_eur_per_kw=rate, sunk_peak_kw=sunk_kw, base_kw=base_kw)


def test_a_demand_charge_spreads_the_charge_over_the_stay():
    # without it the EV charges at once (7.36 kW, then the rest); with it, 10 kWh over 4 h
    early = solve_plan(one_row(1, 4, 100.0, [0.2] * 4, [10.0], max_a=32.0))
    assert early.current_a[0, 0] == pytest.approx(32.0)
    plan = solve_plan(demand(10.0))
    assert plan.ok and plan.peak_kw == pytest.approx(2.5)
    assert plan.current_a[0] * KW_PER_A_1PH == pytest.approx([2.5, 2.5, 2.5, 2.5])
    assert plan.objective_eur == pytest.approx(10.0 * 0.2 + 10.0 * 2.5, rel=1e-4)


def test_a_peak_already_paid_for_is_used_and_a_base_load_counts():
    # 4 kW already reached this period: charging at up to 4 kW costs nothing more, so early
    plan = solve_plan(demand(10.0, sunk_kw=4.0))
    assert plan.current_a[0] * KW_PER_A_1PH == pytest.approx([4.0, 4.0, 2.0, 0.0], abs=1e-6)
    # a base load of 3 kW in the first two hours: the EV fills the others first
    plan = solve_plan(demand(10.0, base_kw=np.array([3.0, 3.0, 0.0, 0.0])))
    site = plan.current_a[0] * KW_PER_A_1PH + np.array([3.0, 3.0, 0.0, 0.0])
    assert plan.peak_kw == pytest.approx(4.0) and site.max() == pytest.approx(4.0)
