"""Charger response and battery physics: the bank of chargers against a fine-time-step
reference of the same rules, across steps; the decreases-first rule; the phase switch
pause; the CC-CV taper."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evflex.sim.physics import ChargerBank, deliverable_energy_kwh, taper_limit_a


def identity(pilot):
    return pilot


def reference(i0, pilot0, sp, switched, delay, ramp, pause, period, steps, n_fine=2000):
    """Fine time steps of the rules: each new set-point takes effect after its delay (after
    the pause for a switched connector, whose current drops to 0 at once); a rise takes
    effect only once every decrease has settled; the current moves at the ramp rate."""
    k = len(i0)
    cur = np.where(switched, 0.0, i0.astype(float))
    old = np.where(switched, 0.0, pilot0)
    eff = np.where(switched, np.maximum(delay, pause), delay)
    changed = (sp != pilot0) | switched
    down = changed & (sp < cur - 1e-9)
    settling = ~changed & (old < cur - 1e-9)
    hold = max([float(np.max((eff + (cur - sp) / ramp)[down]))] if down.any() else [-np.inf])
    if settling.any():
        hold = max(hold, float(np.max(((cur - old) / ramp)[settling])))
    eff = np.where(changed & (sp > cur + 1e-9), np.maximum(eff, hold), eff)
    eff = np.where(changed, eff, np.inf)
    dt = period / n_fine
    avgs, ends = [], []
    for s in range(steps):
        area = np.zeros(k)
        for f in range(n_fine):
            t = s * period + (f + 0.5) * dt
            tgt = np.where(t >= eff, sp, old)
            move = np.clip(tgt - cur, -ramp * dt, ramp * dt)
            area += (cur + 0.5 * move) * dt
            cur = cur + move
        avgs.append(area / period)
        ends.append(cur.copy())
    return avgs, ends


def bank_with(i0, pilot0, delay, ramp, pause):
    b = ChargerBank(delay, ramp, pause)
    b.current_a = i0.astype(float).copy()
    b.pilot_a = pilot0.astype(float).copy()
    b.sent_a = pilot0.astype(float).copy()
    return b


# events on a 0.5 s grid, so that the fine time steps of the reference resolve them well
AMPS = st.integers(0, 64).map(lambda k: k / 2)
DELAYS = st.sampled_from([0.0, 0.5, 2.0, 3.5, 12.0, 25.0])
RAMPS = st.sampled_from([0.5, 1.0, 2.0, 5.0, 12.5])


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.tuples(AMPS, AMPS, st.booleans(), DELAYS, RAMPS), min_size=1, max_size=4),
    st.sampled_from([5.0, 10.0, 60.0]),
    st.sampled_from([0.0, 8.0, 30.0]),
)
def test_bank_matches_fine_time_steps_across_steps(rows, period, pause):
    i0, sp, switched, delay, ramp = (np.array(c) for c in zip(*rows))
    switched = switched.astype(bool)
    pilot0 = i0.copy()  # settled at the set-point in effect
    steps = 4
    b = bank_with(i0, pilot0, delay, ramp, np.full(len(i0), pause))
    b.command(0.0, sp.astype(float), switched, identity)
    ref_avg, ref_end = reference(i0, pilot0, sp, switched, delay, ramp, pause, period, steps)
    for s in range(steps):
        avg, end = b.advance(s * period, period, identity)
        assert np.allclose(avg, ref_avg[s], atol=0.03), s
        assert np.allclose(end, ref_end[s], atol=0.03), s


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(AMPS, AMPS, DELAYS, RAMPS), min_size=2, max_size=5), st.sampled_from([1.0, 10.0, 60.0]))
def test_a_shared_row_never_rises_above_its_old_or_new_load(rows, period):
    """Decreases first: the sum over connectors stays within the larger of its value before
    and after the change, at every instant (sampled finely, across steps)."""
    i0, sp, delay, ramp = (np.array(c, dtype=float) for c in zip(*rows))
    b = bank_with(i0, i0, delay, ramp, np.zeros(len(i0)))
    b.command(0.0, sp, np.zeros(len(i0), dtype=bool), identity)
    bound = max(i0.sum(), sp.sum()) + 1e-6
    fine = period / 20
    t = 0.0
    while t < 200.0:
        avg, end = b.advance(t, fine, identity)
        assert end.sum() <= bound and avg.sum() <= bound
        t += fine
    assert np.allclose(b.current_a, sp)


def test_the_old_set_point_applies_during_the_activation_delay():
    b = bank_with(np.array([10.0]), np.array([10.0]), np.array([3.0]), np.array([100.0]), np.zeros(1))
    b.command(0.0, np.array([0.0]), np.array([False]), identity)
    avg, end = b.advance(0.0, 10.0, identity)
    assert end[0] == 0.0
    assert avg[0] == pytest.approx((10.0 * 3.0 + 0.5 * 10.0 * 0.1) / 10.0)


def test_a_delay_longer_than_a_step_spans_steps():
    b = bank_with(np.array([0.0]), np.array([0.0]), np.array([2.5]), np.array([100.0]), np.zeros(1))
    b.command(0.0, np.array([16.0]), np.array([False]), identity)
    a1, e1 = b.advance(0.0, 1.0, identity)
    a2, e2 = b.advance(1.0, 1.0, identity)
    a3, e3 = b.advance(2.0, 1.0, identity)
    assert e1[0] == 0.0 and e2[0] == 0.0 and a1[0] == 0.0 and a2[0] == 0.0
    assert e3[0] == pytest.approx(16.0) and 0.0 < a3[0] < 16.0


def test_set_points_sent_each_step_take_effect_in_order():
    b = bank_with(np.array([0.0]), np.array([0.0]), np.array([2.0]), np.array([1000.0]), np.zeros(1))
    ends = []
    for k, sp in enumerate([10.0, 12.0, 14.0, 14.0, 14.0]):
        b.command(float(k), np.array([sp]), np.array([False]), identity)
        ends.append(float(b.advance(float(k), 1.0, identity)[1][0]))
    assert ends == pytest.approx([0.0, 0.0, 10.0, 12.0, 14.0])  # each 2 s after it was sent


def test_a_phase_switch_pauses_the_charge():
    b = bank_with(np.array([16.0]), np.array([16.0]), np.array([2.0]), np.array([100.0]), np.array([30.0]))
    b.command(0.0, np.array([16.0]), np.array([True]), identity)
    a1, e1 = b.advance(0.0, 20.0, identity)
    assert a1[0] == 0.0 and e1[0] == 0.0  # the contactor opened at once
    a2, e2 = b.advance(20.0, 20.0, identity)
    assert e2[0] == pytest.approx(16.0)
    assert a2[0] == pytest.approx((16.0 * (10.0 - 0.16) + 0.5 * 16.0 * 0.16) / 20.0)


def test_taper():
    soc = np.array([np.nan, -np.inf, 0.5, 0.8, 0.9, 1.0])
    lim = taper_limit_a(soc, np.full(6, 16.0), 0.8)
    assert lim.tolist() == pytest.approx([16.0, 16.0, 16.0, 16.0, 8.0, 0.0])


def test_deliverable_energy_matches_fine_integration():
    p_kw, b_kwh, soc0, eta, knee = 11.0, 50.0, 0.5, 0.9, 0.8
    for hours in (1.0, 3.0, 8.0):
        soc, e, dt = soc0, 0.0, 1.0
        for _ in range(int(hours * 3600)):
            p = p_kw * min(max((1 - soc) / (1 - knee), 0.0), 1.0)
            e += p * dt / 3600
            soc += p * eta * dt / 3600 / b_kwh
        assert deliverable_energy_kwh(hours * 3600, p_kw, b_kwh, soc0, eta, knee) == pytest.approx(e, rel=2e-3)
