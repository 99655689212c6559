import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evflex.sim.physics import response, taper_limit_a


def integrate(i0, target, delay, ramp, period, hold, n=20001):
    """Numerical reference: the trajectory sampled finely."""
    t = np.linspace(0.0, period, n)
    start = delay if target < i0 else max(delay, hold)
    traj = np.where(t < start, i0, i0 + np.sign(target - i0) * np.minimum(ramp * (t - start), abs(target - i0)))
    return np.trapezoid(traj, t) / period, traj[-1]


@given(st.lists(st.tuples(st.floats(0, 32), st.floats(0, 32), st.floats(0, 10), st.floats(0.2, 20)),
                min_size=1, max_size=6),
       st.sampled_from([10.0, 60.0, 300.0]))
def test_response_matches_numerical_integration(rows, period):
    i0, target, delay, ramp = (np.array(c) for c in zip(*rows))
    avg, end = response(i0, target, delay, ramp, period)
    down = target < i0
    hold = max(((delay + (i0 - target) / ramp)[down]).max(), 0.0) if down.any() else 0.0
    for k in range(len(i0)):
        a, e = integrate(i0[k], target[k], delay[k], ramp[k], period, hold)
        assert abs(avg[k] - a) < 1e-2 * max(1.0, abs(a))
        assert abs(end[k] - e) < 1e-6 + 1e-3 * abs(e)
    # nothing leaves the band between old and new values
    assert np.all(avg <= np.maximum(i0, target) + 1e-9)
    assert np.all(avg >= np.minimum(i0, target) - 1e-9)


def test_increases_wait_for_decreases():
    i0 = np.array([16.0, 0.0])
    target = np.array([0.0, 16.0])
    avg, end = response(i0, target, np.array([2.0, 2.0]), np.array([4.0, 4.0]), 60.0)
    # the decrease takes 2 + 4 s; the increase starts only then, so the sum never exceeds 16 A
    t = np.linspace(0, 60, 6001)
    down = np.where(t < 2, 16, np.maximum(16 - 4 * (t - 2), 0))
    up = np.where(t < 6, 0, np.minimum(4 * (t - 6), 16))
    assert np.max(down + up) <= 16.0 + 1e-9
    assert end.tolist() == [0.0, 16.0]
    assert abs(avg[1] - np.trapezoid(up, t) / 60) < 1e-3


def test_taper():
    soc = np.array([np.nan, -np.inf, 0.5, 0.8, 0.9, 1.0])
    lim = taper_limit_a(soc, np.full(6, 16.0), 0.8)
    assert lim.tolist() == pytest.approx([16.0, 16.0, 16.0, 16.0, 8.0, 0.0])
