"""The fast paths of the general-row kernels give exactly what their plain definitions give."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from row_strategies import ll_injection, phasor_systems

from evflex.control.allocation import kernels as K
from evflex.control.allocation.rows import RowSystem


def _pushers_reference(rows: RowSystem, A, free, x, rise, fallback: bool = True) -> np.ndarray:
    """:func:`kernels._pushers` one binding row at a time (its definition)."""
    push = np.zeros(len(free), dtype=bool)
    loads = np.zeros(len(free), dtype=bool)
    for r in rise.lin.tolist():
        a = A[r, free]
        push |= a > 0
        loads |= a != 0
    for r in rise.ph.tolist():
        y = complex(rows.Z[r] @ x + rows.zb[r])
        z = rows.Z[r, free]
        az = np.abs(z)
        d = (np.conj(y / abs(y)) * z).real if abs(y) > K._SLACK_A else az
        push |= (az > 0) & (d > -K._PUSH_EPS * az)
        loads |= az > 0
    for u in rise.pair.tolist():
        dd, cc, scale = 0.0, 0.0, 0.0
        for sign, r in ((1.0, rows.pairs[u, 0]), (-1.0, rows.pairs[u, 1])):
            y = complex(rows.Z[r] @ x + rows.zb[r])
            z = rows.Z[r, free]
            az = np.abs(z)
            m = abs(y)
            d = (np.conj(y / m) * z).real if m > K._SLACK_A else az
            curv = (az * az - d * d) / m if m > K._SLACK_A else 0.0 * az
            dd, cc, scale = dd + sign * d, cc + sign * curv, scale + az
        up = (dd > K._PUSH_EPS * scale) | ((dd >= -K._PUSH_EPS * scale) & (cc > K._PUSH_EPS * 1e-3))
        push |= (scale > 0) & up
        loads |= scale > 0
    return push if push.any() or not fallback else loads


@st.composite
def binding(draw):
    """A row system, currents within its bounds, free connectors and binding rows of each kind."""
    rows, lo, extra, _ = draw(phasor_systems(pairs=True))
    x = lo + extra * np.array(draw(st.lists(st.floats(0, 1), min_size=rows.k, max_size=rows.k)))
    free = np.flatnonzero(np.array(draw(st.lists(st.booleans(), min_size=rows.k, max_size=rows.k))))
    mp, mu, ml = rows.Z.shape[0], rows.pairs.shape[0], rows.M.shape[0]
    pick = lambda n: np.unique(np.array(draw(st.lists(st.integers(0, n - 1), max_size=4)) if n else [], dtype=np.int64))  # noqa: E731
    rise = K._Rise(0.0, pick(ml), pick(mp), pick(mu))
    return rows, x, free, rise, draw(st.booleans())


@given(binding())
def test_pushers_is_the_row_by_row_definition(case):
    rows, x, free, rise, fallback = case
    A = np.vstack([rows.M, rows.S])
    got = K._pushers(rows, A, free, x, rise, fallback)
    want = _pushers_reference(rows, A, free, x, rise, fallback)
    assert got.dtype == bool and np.array_equal(got, want)


def test_pushers_takes_every_binding_row_not_only_the_first():
    # two phasor rows bind: connector 0 pushes only the first, connector 1 only the second, and
    # connector 2 pulls both down; the pushers are 0 and 1, whichever row comes first
    Z = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]], dtype=np.complex128)
    rows = RowSystem.build(np.zeros((0, 3)), np.zeros(0), Z=Z, zb=np.array([5.0, 5.0]), zlim=np.array([20.0, 20.0]))
    free = np.arange(3)
    x = np.array([10.0, 10.0, 1.0])
    for ph in ([0, 1], [1, 0]):
        rise = K._Rise(0.0, np.zeros(0, dtype=np.int64), np.array(ph), np.zeros(0, dtype=np.int64))
        assert K._pushers(rows, np.zeros((0, 3)), free, x, rise).tolist() == [True, True, False]


def test_pushers_of_a_pair_row_at_the_edge_of_the_push_test():
    # |I_1| - |I_2| binds; a line-to-line EV on L1-L2 raises both phases' magnitudes alike at
    # this point (derivative difference 0, to rounding): it pushes only through the curvature
    W = np.stack([ll_injection(0, 1), ll_injection(0, 1), ll_injection(1, 2)], axis=1)
    rows = RowSystem.build(
        np.zeros((0, 3)), np.zeros(0), Z=W, zb=np.zeros(3), zlim=np.full(3, 100.0), pairs=[(0, 1)], ulim=[0.0]
    )
    free = np.arange(3)
    x = np.array([10.0, 6.0, 8.0])
    rise = K._Rise(0.0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.array([0]))
    got = K._pushers(rows, np.zeros((0, 3)), free, x, rise)
    assert np.array_equal(got, _pushers_reference(rows, np.zeros((0, 3)), free, x, rise))


@given(phasor_systems(pairs=True))
def test_rise_with_precomputed_magnitudes_is_the_rise(case):
    rows, lo, extra, _ = case
    hi = lo + extra
    w = np.ones(rows.k)
    free = np.flatnonzero(hi > lo + 1e-6)
    if not free.size:
        return
    rows = rows.at_least(lo)
    A = np.vstack([rows.M, rows.S])
    lim = np.concatenate([rows.cap, rows.scap])
    level = float(np.min(lo[free] / w[free]))
    got = K._rise(rows, A, np.abs(rows.Z), lim, free, lo.copy(), w, lo, hi, level, 1e-6)
    # the same rise where |Z| is taken of the free columns on the spot, as before
    absZ_free = np.zeros(rows.Z.shape)
    absZ_free[:, free] = np.abs(rows.Z[:, free])
    want = K._rise(rows, A, absZ_free, lim, free, lo.copy(), w, lo, hi, level, 1e-6)
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got.level == want.level
        for kind in ("lin", "ph", "pair"):
            assert np.array_equal(getattr(got, kind), getattr(want, kind))


def test_quad_exit_v_edge_cases():
    # a row not moving (z = 0) never exits; one at its bound moving outward exits at 0; one
    # moving inward exits at its larger root; NaN from 0/0 counts as no room
    y = np.array([3.0 + 0j, 5.0 + 0j, -5.0 + 0j, 0j])
    z = np.array([0j, 1.0 + 0j, 1.0 + 0j, 0j])
    bound = np.array([5.0, 5.0, 5.0, 0.0])
    t_max = np.array([7.0, 7.0, 20.0, 3.0])
    out = K._quad_exit_v(y, z, bound, t_max)
    assert out.tolist() == [7.0, 0.0, 10.0, 3.0]
    for i in range(4):
        assert out[i] == K._quad_exit(complex(y[i]), complex(z[i]), float(bound[i]), float(t_max[i]))
