"""The allocation kernels: capacity is never exceeded, priorities and fairness hold."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from row_strategies import PHASE_UNIT, ll_injection, pn_injection, systems

from evflex.control.allocation.kernels import (
    admit,
    admit_rows,
    greedy_fill,
    greedy_fill_rows,
    weighted_fill,
    weighted_fill_rows,
)
from evflex.control.allocation.rows import RowSystem

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


@given(problems())
def test_admit_plain_loop_and_vectorised_passes_agree(p):
    import evflex.control.allocation.kernels as K

    M, lo, _, cap, order = p
    saved = K.SMALL_PROBLEM
    try:
        K.SMALL_PROBLEM = 0
        passes = K.admit.__wrapped__(M, lo, cap, order)
        K.SMALL_PROBLEM = 10**9
        loop = K.admit.__wrapped__(M, lo, cap, order)
    finally:
        K.SMALL_PROBLEM = saved
    assert np.array_equal(passes, loop)


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
def test_weighted_fill_plain_direct_and_cumulative_levels_agree(p, proportional):
    import evflex.control.allocation.kernels as K

    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, _ = a
    w = np.linspace(0.5, 3.0, len(lo_a)) if proportional else np.ones(len(lo_a))
    saved = K.SMALL_PROBLEM
    try:
        K.SMALL_PROBLEM = 0
        cumulative = K.weighted_fill.__wrapped__(Ma, lo_a, hi_a, cap, w)
        K.SMALL_PROBLEM = 2 * Ma.size - 1  # the arrays, with the direct level
        direct = K.weighted_fill.__wrapped__(Ma, lo_a, hi_a, cap, w)
        K.SMALL_PROBLEM = 10**9  # plain Python
        plain = K.weighted_fill.__wrapped__(Ma, lo_a, hi_a, cap, w)
    finally:
        K.SMALL_PROBLEM = saved
    assert np.allclose(direct, cumulative, atol=1e-6)
    assert np.allclose(plain, cumulative, atol=1e-6)


# ====================================================================== general rows
def touched(rows, c):
    """Mask over every row (in excess order): the rows connector c loads."""
    z = rows.Z[:, c] != 0
    pair = z[rows.pairs[:, 0]] | z[rows.pairs[:, 1]] if rows.pairs.size else np.zeros(0, dtype=bool)
    return np.concatenate([rows.M[:, c] != 0, rows.S[:, c] != 0, z, pair])


def reference_admit(rows, need, order, tol=1e-6, slack=1e-10):
    """One connector at a time: admitted if every row it loads stays within its limit (plus
    tol), or, already over, does not rise."""
    x = np.zeros(rows.k)
    lim = rows.limits()
    for c in order:
        trial = x.copy()
        trial[c] += need[c]
        before, after = rows.values(x), rows.values(trial)
        bad = touched(rows, c) & (after > lim + tol) & ((before <= lim + tol) | (after > before + slack))
        if not bad.any():
            x = trial
    return x > 0


def reference_greedy(rows, start, extra, order, tol=1e-6, samples=801):
    """One connector at a time: the largest step along its own axis keeping every row it
    loads within max(limit, value before) all the way, by dense sampling then bisection."""
    x = start.astype(float).copy()
    lim = rows.limits()
    for c in order:
        if extra[c] <= tol:
            continue
        rel = touched(rows, c)
        bound = np.maximum(lim, rows.values(x))[rel] + 1e-9

        def path(t, c=c, rel=rel, bound=bound):
            X = np.repeat(x[None, :], len(t), axis=0)
            X[:, c] += t
            return np.all(rows.values(X)[:, rel] <= bound, axis=1)

        s = np.linspace(0.0, extra[c], samples)
        ok = path(s)
        if ok.all():
            x[c] += extra[c]
            continue
        j = int(np.argmin(ok))
        a, b = s[j - 1] if j else 0.0, s[j]
        for _ in range(60):
            m = 0.5 * (a + b)
            a, b = (m, b) if path(np.array([m]))[0] else (a, m)
        x[c] += a if j else 0.0
    return x


def admitted_rows(p):
    """The admitted part of a row problem: (rows over the admitted, lo, hi, fill order)."""
    rows, lo, extra, order = p
    idx = np.flatnonzero(admit_rows(rows, lo, order))
    if not idx.size:
        return None
    return rows.take(idx), lo[idx], lo[idx] + extra[idx], np.argsort(np.argsort(order)[idx])


def no_worse(rows, x, start, tol=1e-6):
    """Every row within its limit wherever the start is, and nowhere worse than the start."""
    return np.all(rows.excess(x) <= np.maximum(rows.excess(start), 0.0) + tol)


@given(systems)
def test_admit_rows_is_the_sequential_admission(p):
    rows, lo, _, order = p
    adm = admit_rows(rows, lo, order)
    assert np.array_equal(adm, reference_admit(rows, lo, order))
    assert no_worse(rows, lo * adm, np.zeros(rows.k))


@given(systems)
def test_greedy_fill_rows_is_the_sequential_greedy(p):
    if (a := admitted_rows(p)) is None:
        return
    rows, lo, hi, order = a
    x = greedy_fill_rows(rows, lo, hi - lo, order)
    assert np.all(x >= lo - TOL) and np.all(x <= hi + TOL)
    assert no_worse(rows, x, lo)
    assert np.allclose(x, reference_greedy(rows, lo, hi - lo, order), atol=1e-5)


@given(systems, st.booleans())
def test_weighted_fill_rows_is_feasible_and_nobody_can_rise_alone(p, proportional):
    if (a := admitted_rows(p)) is None:
        return
    rows, lo, hi, _ = a
    k = rows.k
    w = np.linspace(0.5, 3.0, k) if proportional else np.ones(k)
    x = weighted_fill_rows(rows, lo, hi, w)
    assert np.all(x >= lo - TOL) and np.all(x <= hi + TOL)
    assert no_worse(rows, x, lo)
    lim = np.maximum(rows.limits(), rows.values(lo))
    tight = rows.values(x) >= lim - 1e-4  # a pair row may touch its limit and turn back
    for c in range(k):
        step = min(0.1, hi[c] - x[c])
        if step < 1e-3:
            continue
        up = x.copy()
        up[c] += step
        assert np.any(touched(rows, c) & ((rows.values(up) > lim) | tight)), c


@given(systems, st.booleans())
def test_weighted_fill_rows_gives_twins_one_level(p, proportional):
    """Two connectors with the same columns, weights and bounds get the same current."""
    if (a := admitted_rows(p)) is None:
        return
    rows, lo, hi, _ = a
    twin = np.concatenate([np.arange(rows.k), [0]])
    rows2 = rows.take(twin)
    w = (np.linspace(0.5, 3.0, rows.k) if proportional else np.ones(rows.k))[twin]
    lo2, hi2 = lo[twin], hi[twin]
    if not rows2.feasible(lo2):
        return
    x = weighted_fill_rows(rows2, lo2, hi2, w)
    assert x[0] == pytest.approx(x[-1], abs=1e-6)
    assert no_worse(rows2, x, lo2)


@given(problems())
def test_rows_on_linear_rows_only_are_the_linear_kernels(p):
    M, lo, hi, cap, order = p
    rows = RowSystem.linear(M, cap)
    assert np.array_equal(admit_rows(rows, lo, order), admit(M, lo, cap, order))
    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, fill_order = a
    ra = RowSystem.linear(Ma, cap)
    assert np.array_equal(
        greedy_fill_rows(ra, lo_a, hi_a - lo_a, fill_order), greedy_fill(Ma, lo_a, hi_a - lo_a, cap, fill_order)
    )
    w = np.ones(len(lo_a))
    assert np.array_equal(weighted_fill_rows(ra, lo_a, hi_a, w), weighted_fill(Ma, lo_a, hi_a, cap, w))


def with_idle_signed_row(M, cap):
    """The same rows plus a signed row nobody loads: the general code path, same answers."""
    k = M.shape[1]
    return RowSystem.build(M, cap, np.zeros((1, k)), np.ones(1))


@given(problems(), st.booleans())
def test_general_path_on_linear_rows_agrees_with_the_linear_kernels(p, proportional):
    M, lo, hi, cap, order = p
    assert np.array_equal(admit_rows(with_idle_signed_row(M, cap), lo, order), admit(M, lo, cap, order))
    if (a := admitted(p)) is None:
        return
    Ma, lo_a, hi_a, cap, fill_order = a
    rows = with_idle_signed_row(Ma, cap)
    fast = greedy_fill(Ma, lo_a, hi_a - lo_a, cap, fill_order)
    assert np.allclose(greedy_fill_rows(rows, lo_a, hi_a - lo_a, fill_order), fast, atol=1e-6)
    w = np.linspace(0.5, 3.0, len(lo_a)) if proportional else np.ones(len(lo_a))
    assert np.allclose(weighted_fill_rows(rows, lo_a, hi_a, w), weighted_fill(Ma, lo_a, hi_a, cap, w), atol=1e-6)


# ---------------------------------------------------------------------- hand-computed cases
def phase_rows(W, limit_a, base_a=(0.0, 0.0, 0.0), pairs=None, ulim=None):
    """The connection's three phases as phasor rows, for injections W (3, k)."""
    zb = np.asarray(base_a) * PHASE_UNIT
    return RowSystem.build(
        np.zeros((0, W.shape[1])), np.zeros(0), Z=W, zb=zb, zlim=np.broadcast_to(limit_a, 3), pairs=pairs, ulim=ulim
    )


AB, BC, CA = ll_injection(0, 1), ll_injection(1, 2), ll_injection(2, 0)


def test_admission_adds_line_to_line_evs_by_their_phasor_sum():
    # 34 A on phase A: AB and CA at 20 A make 34.64 A there; AB and BC leave A at 20 A (B at 34.64)
    need = np.full(2, 20.0)
    only_a = np.array([34.0, 100.0, 100.0])
    assert admit_rows(phase_rows(np.stack([AB, CA], 1), only_a), need, np.arange(2)).tolist() == [True, False]
    assert admit_rows(phase_rows(np.stack([AB, CA], 1), 35.0), need, np.arange(2)).tolist() == [True, True]
    assert admit_rows(phase_rows(np.stack([AB, BC], 1), only_a), need, np.arange(2)).tolist() == [True, True]


def test_greedy_takes_the_largest_root_of_the_phasor_row():
    # AB gets its 20 A, then CA: 400 + t^2 + 20 t = 30^2, t = -10 + sqrt(600)
    rows = phase_rows(np.stack([AB, CA], 1), 30.0)
    x = greedy_fill_rows(rows, np.zeros(2), np.array([20.0, 32.0]), np.arange(2))
    assert x == pytest.approx([20.0, -10.0 + np.sqrt(600.0)])
    assert np.abs(rows.phasors(x))[0] == pytest.approx(30.0)


def test_greedy_crosses_zero_under_export():
    # phase A exports 20 A (base -20): an EV on A first lowers |I_A|, then raises it; 25 A allowed
    rows = phase_rows(pn_injection((0,))[:, None], 25.0, base_a=(-20.0, 0.0, 0.0))
    assert greedy_fill_rows(rows, np.zeros(1), np.array([60.0]), np.arange(1)) == pytest.approx([45.0])


def test_pair_row_limits_unbalance_but_not_a_balanced_branch():
    # |I_A| - |I_B| <= 10: an EV on A alone stops at 10 A; an AB branch loads A and B alike
    W = np.stack([pn_injection((0,)), AB], 1)
    rows = phase_rows(W, 100.0, pairs=[[0, 1], [1, 0]], ulim=[10.0, 10.0])
    x = greedy_fill_rows(rows, np.zeros(2), np.array([30.0, 30.0]), np.arange(2))
    assert x[0] == pytest.approx(10.0, abs=1e-9)
    assert x[1] > 10.0  # the branch does not stop where the unbalance is reached
    mag = np.abs(rows.phasors(x))
    assert mag[0] - mag[1] <= 10.0 + 1e-9 and mag[1] - mag[0] <= 10.0 + 1e-9


def test_equal_share_of_two_branches_on_one_phase():
    # AB and CA at t each: |I_A| = sqrt(3) t = 30
    rows = phase_rows(np.stack([AB, CA], 1), 30.0)
    x = weighted_fill_rows(rows, np.zeros(2), np.full(2, 32.0), np.ones(2))
    assert x == pytest.approx(np.full(2, 30.0 / np.sqrt(3.0)))


def test_weighted_fill_freezes_only_who_pushes():
    # exports on A (20 A, limit 25 A) and B (5 A, limit 10 A): EVs on A and B rise together; B's
    # row binds at 15 A, A's row falls to 0 and rises on to 25 A at 45 A
    W = np.stack([pn_injection((0,)), pn_injection((1,))], 1)
    rows = phase_rows(W, np.array([25.0, 10.0, 10.0]), base_a=(-20.0, -5.0, 0.0))
    x = weighted_fill_rows(rows, np.zeros(2), np.full(2, 50.0), np.ones(2))
    assert x == pytest.approx([45.0, 15.0])


def test_unbalance_as_signed_rows_at_a_phase_to_neutral_site():
    # L1 - L2 <= 20 A: single-phase EVs on L1 wait for L2 to catch up; a 3-phase EV is not concerned
    inc = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    S = np.array([inc[0] - inc[1], inc[1] - inc[0]])
    rows = RowSystem.build(inc, np.full(3, 100.0), S, np.full(2, 20.0))
    adm = admit_rows(rows, np.array([16.0, 16.0, 16.0, 16.0]), np.arange(4))
    assert adm.tolist() == [True, False, True, True]
    x = greedy_fill_rows(rows, np.zeros(4), np.full(4, 32.0), np.arange(4))
    assert x == pytest.approx([20.0, 0.0, 32.0, 32.0]) or x == pytest.approx([20.0, 32.0, 32.0, 32.0])


complexes = st.complex_numbers(max_magnitude=60, allow_nan=False, allow_infinity=False)


@given(complexes, complexes, complexes, complexes, st.floats(0, 30), st.floats(0.01, 40))
def test_pair_exit_stops_at_the_first_crossing(yi, zi, yj, zj, ulim, t_max):
    """The first crossing of a difference of two magnitudes along a line: nowhere over the
    bound before the answer (dense check), at the bound where it stops short of t_max."""
    from evflex.control.allocation.kernels import _pair_exit

    f = lambda t: np.abs(yi + t * zi) - np.abs(yj + t * zj)  # noqa: E731
    bound = max(ulim, float(f(0.0)))
    t = _pair_exit(yi, zi, yj, zj, bound, t_max)
    assert 0.0 <= t <= t_max
    assert np.all(f(np.linspace(0.0, t, 2001)) <= bound + 1e-8)
    if t < t_max:
        assert f(t) == pytest.approx(bound, abs=1e-7)
        assert np.max(f(t + np.linspace(0.0, 1e-6 * (1.0 + t_max), 101))) > bound - 1e-9


@given(complexes, complexes, complexes, complexes, st.floats(0, 20), st.floats(0.01, 40))
def test_pair_bounds_bound_the_difference_of_magnitudes(yi, zi, yj, zj, a, ell):
    """The certified upper bounds (scalar and vectorised) hold on a dense grid of [a, a + ell]."""
    from evflex.control.allocation.kernels import _pair_bound, _pair_bound_v

    b = a + ell
    hj = lambda t: np.abs(yj + t * zj)  # noqa: E731
    f = lambda t: np.abs(yi + t * zi) - hj(t)  # noqa: E731
    top = float(np.max(f(np.linspace(a, b, 4001))))
    scalar = _pair_bound(zi, yj, zj, a, b, float(f(a)), float(f(b)), float(hj(a)), float(hj(b)))
    vector = _pair_bound_v(
        np.array([yj + a * zj]),
        np.array([zj]),
        np.array([ell]),
        np.array([f(a)]),
        np.array([f(b)]),
        np.array([hj(a)]),
        np.array([hj(b)]),
        np.array([abs(zi) + abs(zj)]),
    )[0]
    assert scalar >= top - 1e-9 and vector >= top - 1e-9
    assert vector == pytest.approx(scalar, rel=1e-9, abs=1e-9)


def test_weighted_fill_keeps_room_that_others_make_on_a_row_over_its_limit():
    # three pair rows start above their 0 A unbalance limit; the second connector's rise
    # lowers them, and the first may then rise as far as they were at the start
    a = np.sqrt(3.0) / 2.0
    Z = np.array([[1.0, a - 0.5j], [-0.5 - a * 1j, 0.0], [-0.5 + a * 1j, -a + 0.5j]])
    pairs = np.array([[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]])
    rows = RowSystem.build(
        np.zeros((0, 2)),
        np.zeros(0),
        Z=Z,
        zb=np.array([0.0, -3.5 - 6.06217783j, -0.5 + 0.8660254j]),
        zlim=np.full(3, 14.0),
        pairs=pairs,
        ulim=np.zeros(6),
    )
    lo, hi = np.full(2, 6.0), np.full(2, 7.0)
    x = weighted_fill_rows(rows, lo, hi, np.array([0.5, 3.0]))
    lim = np.maximum(rows.limits(), rows.values(lo))
    assert np.all(rows.values(x) <= lim + 1e-6)
    for c in range(2):  # nobody can rise alone
        up = x.copy()
        up[c] += 0.01
        assert np.any(rows.values(up) > lim + 1e-9) or up[c] > hi[c], c
