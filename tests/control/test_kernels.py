"""The allocation kernels: capacity is never exceeded, priorities and fairness hold."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evflex.control.allocation.kernels import admit, greedy_fill, weighted_fill

TOL = 1e-6


@st.composite
def problems(draw):
    m = draw(st.integers(1, 6))
    k = draw(st.integers(1, 25))
    M = draw(arrays(np.float64, (m, k), elements=st.sampled_from([0.0, 1.0])))
    M[0] = 1.0  # a connection-like row every connector loads
    lo = draw(arrays(np.float64, k, elements=st.sampled_from([6.0, 8.0, 10.0, 16.0])))
    extra = draw(arrays(np.float64, k, elements=st.floats(0, 26)))
    cap = draw(arrays(np.float64, m, elements=st.floats(-5, 200)))
    order = np.array(draw(st.permutations(range(k))), dtype=np.int64)
    return M, lo, lo + extra, cap, order


@given(problems())
def test_admit_fits_and_is_greedy(p):
    M, lo, hi, cap, order = p
    adm = admit(M, lo, cap, order)
    load = M @ (lo * adm)
    touched = (M * adm).any(axis=1)
    assert np.all(~touched | (load <= cap + TOL))
    # greedy: every rejected connector would overflow some row given those admitted before it
    for pos, c in enumerate(order):
        if adm[c]:
            continue
        before = np.zeros_like(adm)
        before[order[:pos]] = adm[order[:pos]]
        trial = M @ (lo * before) + M[:, c] * lo[c]
        assert np.any((M[:, c] > 0) & (trial > cap + TOL))


def admitted(p):
    """The admitted part of a problem: (M, lo, hi, cap, fill order) over the admitted
    connectors, or None when nobody was admitted."""
    M, lo, hi, cap, order = p
    idx = np.flatnonzero(admit(M, lo, cap, order))
    if not idx.size:
        return None
    return M[:, idx], lo[idx], hi[idx], cap, np.argsort(np.argsort(order)[idx])


@given(problems())
def test_greedy_fill_respects_capacity_and_priority(p):
    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, fill_order = a
    x = greedy_fill(Ma, lo_a, hi_a - lo_a, cap, fill_order)
    assert np.all(x >= lo_a - TOL) and np.all(x <= hi_a + TOL)
    touched = Ma.any(axis=1)
    assert np.all(~touched | (Ma @ x <= cap + 1e-6))
    # priority: a connector short of its maximum is blocked by a full row
    for j in range(len(fill_order)):
        if x[j] < hi_a[j] - 1e-6:
            rows = Ma[:, j] > 0
            assert np.any(Ma[rows] @ x >= cap[rows] - 1e-6)


@given(problems(), st.booleans())
def test_weighted_fill_is_max_min_fair(p, proportional):
    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, _ = a
    k = len(lo_a)
    w = np.linspace(0.5, 3.0, k) if proportional else np.ones(k)
    x = weighted_fill(Ma, lo_a, hi_a, cap, w)
    assert np.all(x >= lo_a - TOL) and np.all(x <= hi_a + TOL)
    touched = Ma.any(axis=1)
    assert np.all(~touched | (Ma @ x <= cap + 1e-6))
    # max-min fairness: anyone below its maximum sits on a full row on which nobody has a
    # higher level (x / w) unless that one is at its lower bound
    level = x / w
    for j in range(k):
        if x[j] >= hi_a[j] - 1e-6:
            continue
        full = (Ma[:, j] > 0) & (Ma @ x >= cap - 1e-5)
        assert full.any()
        ok = False
        for r in np.flatnonzero(full):
            members = Ma[r] > 0
            above = members & (level > level[j] + 1e-6) & (x > lo_a + 1e-6)
            ok |= not above.any()
        assert ok


def test_equal_share_splits_evenly():
    M = np.ones((1, 4))
    x = weighted_fill(M, np.full(4, 6.0), np.array([16.0, 16.0, 7.0, 16.0]), np.array([40.0]), np.ones(4))
    assert np.allclose(x, [11.0, 11.0, 7.0, 11.0])


def test_admission_prefers_fewer_evs_at_feasible_current():
    # 20 A for 5 EVs: only 3 can get the 6 A minimum
    M = np.ones((1, 5))
    adm = admit(M, np.full(5, 6.0), np.array([20.0]), np.arange(5))
    assert adm.tolist() == [True, True, True, False, False]


def test_single_phase_evs_on_other_phases_still_fit():
    # L1 full, but a 1-phase EV on L2 fits
    M = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    adm = admit(M, np.full(3, 6.0), np.array([6.0, 10.0]), np.arange(3))
    assert adm.tolist() == [True, False, True]


def sequential_greedy(M, start, extra, cap, order):
    """Reference: the textbook one-connector-at-a-time greedy."""
    x = start.astype(float).copy()
    res = cap - M @ x
    for c in order:
        rows = M[:, c] > 0
        give = extra[c] if not rows.any() else min(extra[c], max(0.0, float(np.min(res[rows] / M[rows, c]))))
        x[c] += give
        res -= M[:, c] * give
    return x


@given(problems(), st.sampled_from([0, 512]))
def test_greedy_fill_equals_the_sequential_greedy(p, small):
    import evflex.control.allocation.kernels as K

    K.SMALL_PROBLEM, saved = small, K.SMALL_PROBLEM  # both paths: vectorised passes and plain loop
    try:
        _check_greedy(p)
    finally:
        K.SMALL_PROBLEM = saved


def _check_greedy(p):
    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, fill_order = a
    fast = greedy_fill(Ma, lo_a, hi_a - lo_a, cap, fill_order)
    ref = sequential_greedy(Ma, lo_a, hi_a - lo_a, cap, fill_order)
    assert np.allclose(fast, ref, atol=1e-6)


def test_greedy_fill_many_feeders_matches_reference():  # large: the vectorised passes
    rng = np.random.default_rng(3)
    k, feeders = 400, 20
    M = np.zeros((3 + 3 * feeders, k))
    M[:3] = 1.0
    f = rng.integers(0, feeders, k)
    for c in range(k):
        M[3 + 3 * f[c] : 6 + 3 * f[c], c] = 1.0
    cap = np.concatenate([[2500.0] * 3, rng.uniform(60, 200, 3 * feeders)])
    start = np.zeros(k)
    extra = rng.uniform(0, 16, k)
    order = rng.permutation(k)
    assert np.allclose(greedy_fill(M, start, extra, cap, order), sequential_greedy(M, start, extra, cap, order))


@given(problems(), st.booleans())
def test_weighted_fill_direct_and_cumulative_levels_agree(p, proportional):
    import evflex.control.allocation.kernels as K

    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, _ = a
    w = np.linspace(0.5, 3.0, len(lo_a)) if proportional else np.ones(len(lo_a))
    saved = K.SMALL_PROBLEM
    try:
        K.SMALL_PROBLEM = 0
        cumulative = K.weighted_fill.__wrapped__(Ma, lo_a, hi_a, cap, w)
        K.SMALL_PROBLEM = 10**9
        direct = K.weighted_fill.__wrapped__(Ma, lo_a, hi_a, cap, w)
    finally:
        K.SMALL_PROBLEM = saved
    assert np.allclose(direct, cumulative, atol=1e-6)
