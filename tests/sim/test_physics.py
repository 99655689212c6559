import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evflex.sim.physics import deliverable_energy_kwh, response, taper_limit_a


def reference(i0, old, new, changed, gate, delay, ramp, period, n=40000):
    """Fine time steps of the same rules: the old target applies during the activation delay
    of a changed set-point; no movement before a connector's gate; a new rise waits for every
    decrease to settle (found by iterating the settle times)."""
    k = len(i0)
    d = np.where(changed, delay, 0.0)
    # settle times of decreases, computed by stepping the decreasing connectors alone
    dt = period / n
    t = (np.arange(n) + 0.5) * dt

    def run(start_new):
        cur = i0.astype(float).copy()
        area = np.zeros(k)
        for ti in t:
            tgt = np.where(ti < d, old, new)
            may = np.where(ti < d, ti >= gate, ti >= start_new)
            step = np.clip(tgt - cur, -ramp * dt, ramp * dt) * may
            area += (cur + 0.5 * step) * dt
            cur = cur + step
        return area / period, cur

    start_new = np.where(changed, d, gate)
    # where the current stands when the delay ends decides who is decreasing
    avg0, _ = run(start_new)
    cur_at_d = i0.astype(float).copy()
    for ti in t[t < d.max()] if d.max() > 0 else []:
        tgt = old
        may = (ti < d) & (ti >= gate)
        cur_at_d = cur_at_d + np.clip(tgt - cur_at_d, -ramp * dt, ramp * dt) * may
    down = new < cur_at_d - 1e-6
    if down.any():
        hold = np.max((start_new + (cur_at_d - new) / ramp)[down])
        start_new = np.where(changed & (new > cur_at_d + 1e-6), np.maximum(start_new, hold), start_new)
    return run(start_new)


# events on a 0.5 s grid, so that the fine time steps of the reference resolve them exactly
AMPS = st.integers(0, 64).map(lambda k: k / 2)
TIMES = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, 5.0, 8.0])
RAMPS = st.sampled_from([0.5, 1.0, 2.0, 5.0, 12.5])


@given(
    st.lists(
        st.tuples(AMPS, AMPS, AMPS, st.booleans(), TIMES, TIMES.filter(lambda d: d < 10), RAMPS), min_size=1, max_size=4
    ),
    st.sampled_from([10.0, 60.0]),
)
def test_response_matches_fine_time_steps(rows, period):
    i0, old, new, changed, gate, delay, ramp = (np.array(c) for c in zip(*rows))
    changed = changed.astype(bool)
    avg, end, gate_next = response(i0, old, new, changed, gate, delay, ramp, period)
    ref_avg, ref_end = reference(i0, old, new, changed, gate, delay, ramp, period, n=4000)
    assert np.allclose(avg, ref_avg, atol=0.02 + 1e-3 * 32)
    assert np.allclose(end, ref_end, atol=0.05)
    assert np.all(gate_next >= 0)
    lo = np.minimum.reduce([i0, old, new]) - 1e-9
    hi = np.maximum.reduce([i0, old, new]) + 1e-9
    assert np.all((avg >= lo) & (avg <= hi))


@given(st.floats(0, 32), st.floats(0, 32), st.floats(0.05, 2.0), st.floats(0, 50))
def test_a_slow_ramp_carries_over_steps(i0, target, ramp, gate):
    one = response(
        np.array([i0]),
        np.array([target]),
        np.array([target]),
        np.array([False]),
        np.array([gate]),
        np.array([0.0]),
        np.array([ramp]),
        120.0,
    )
    a = response(
        np.array([i0]),
        np.array([target]),
        np.array([target]),
        np.array([False]),
        np.array([gate]),
        np.array([0.0]),
        np.array([ramp]),
        60.0,
    )
    b = response(
        a[1], np.array([target]), np.array([target]), np.array([False]), a[2], np.array([0.0]), np.array([ramp]), 60.0
    )
    assert (a[0][0] + b[0][0]) / 2 == pytest.approx(one[0][0], abs=1e-9)
    assert b[1][0] == pytest.approx(one[1][0], abs=1e-9)
    assert b[2][0] == pytest.approx(one[2][0], abs=1e-9)


def test_increases_wait_for_decreases_even_across_steps():
    # connector 0 ramps down 16 A at 0.2 A/s (80 s), connector 1 is given 16 A at once
    args = dict(delay_s=np.array([2.0, 2.0]), ramp_a_per_s=np.array([0.2, 5.0]), period_s=60.0)
    avg, end, gate = response(
        np.array([16.0, 0.0]), np.array([16.0, 0.0]), np.array([0.0, 16.0]), np.array([True, True]), np.zeros(2), **args
    )
    assert end[1] == 0.0 and gate[1] == pytest.approx(2.0 + 80.0 - 60.0)  # still waiting
    avg2, end2, gate2 = response(
        end, np.array([0.0, 16.0]), np.array([0.0, 16.0]), np.array([False, False]), gate, **args
    )
    assert end2.tolist() == pytest.approx([0.0, 16.0]) and gate2.tolist() == [0.0, 0.0]
    # the sum never exceeded the 16 A it started at
    assert avg[0] + avg[1] <= 16.0 and avg2[0] + avg2[1] <= 16.0


def test_the_old_set_point_applies_during_the_activation_delay():
    avg, end, _ = response(
        np.array([10.0]),
        np.array([10.0]),
        np.array([0.0]),
        np.array([True]),
        np.zeros(1),
        np.array([3.0]),
        np.array([100.0]),
        10.0,
    )
    assert end[0] == 0.0
    assert avg[0] == pytest.approx((10.0 * 3.0 + 0.5 * 10.0 * 0.1) / 10.0)


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
