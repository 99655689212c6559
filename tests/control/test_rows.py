"""Constraint-row systems: values of every kind of row, column subsets, splicing, shifting."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from row_strategies import PHASE_UNIT, ll_injection, pn_injection, primary_rows, systems

from evflex.control.allocation.rows import CONE_COS, ROW_KINDS, RowSystem, columns_replaced


def test_two_line_to_line_evs_on_ab_and_ca_load_phase_a_by_the_phasor_sum():
    # I_A = I_AB - I_CA, branches 120 degrees apart: sqrt(20^2 + 20^2 + 20 * 20)
    W = np.stack([ll_injection(0, 1), ll_injection(2, 0)], axis=1)  # (3 phases, 2 EVs)
    rows = RowSystem.build(np.zeros((0, 2)), np.zeros(0), Z=W, zlim=np.full(3, 100.0))
    mag = np.abs(rows.phasors(np.array([20.0, 20.0])))
    assert mag[0] == pytest.approx(np.sqrt(1200.0))  # 34.64 A
    assert mag[1] == pytest.approx(20.0) and mag[2] == pytest.approx(20.0)  # B and C carry one branch each


def test_branch_angles_are_those_of_the_line_voltages():
    assert np.angle(ll_injection(0, 1)[0], deg=True) == pytest.approx(30.0)
    assert np.angle(ll_injection(1, 2)[1], deg=True) == pytest.approx(-90.0)
    assert np.angle(ll_injection(2, 0)[2], deg=True) == pytest.approx(150.0)


def test_delta_primary_line_current():
    # a 10 A phase-to-neutral EV on a, ratio 2: (I_a - I_c) / 2 = 5 A on line A, 5 A on line B, 0 on C
    W = pn_injection((0,))[:, None]
    rows = RowSystem.build(np.zeros((0, 1)), np.zeros(0), Z=primary_rows(W, 2.0), zlim=np.full(3, 6.0))
    assert np.abs(rows.phasors(np.array([10.0]))) == pytest.approx([5.0, 5.0, 0.0])
    # three-phase balanced 10 A: |I_a - I_c| = sqrt(3) * 10, halved
    W3 = pn_injection((0, 1, 2))[:, None]
    rows3 = RowSystem.build(np.zeros((0, 1)), np.zeros(0), Z=primary_rows(W3, 2.0), zlim=np.full(3, 6.0))
    assert np.abs(rows3.phasors(np.array([10.0]))) == pytest.approx(np.full(3, 5.0 * np.sqrt(3.0)))


def test_excess_lists_every_kind_in_order():
    M = np.array([[1.0, 1.0]])
    S = np.array([[1.0, -1.0]])
    Z = np.array([PHASE_UNIT[0] * np.array([1.0, 0.0]), PHASE_UNIT[1] * np.array([0.0, 1.0])])
    rows = RowSystem.build(
        M,
        [30.0],
        S,
        [5.0],
        Z,
        zb=[-10.0, 0.0],
        zlim=[15.0, 15.0],
        pairs=[[0, 1], [1, 0]],
        ulim=[3.0, 3.0],
    )
    x = np.array([12.0, 10.0])
    # linear 22 - 30; signed 2 - 5; phasor |12 - 10| - 15, 10 - 15; pairs (2 - 10) - 3, (10 - 2) - 3
    assert rows.excess(x) == pytest.approx([-8.0, -3.0, -13.0, -5.0, -11.0, 5.0])
    sl = rows.kind_slices()
    assert list(sl) == list(ROW_KINDS)
    assert [sl[k].stop - sl[k].start for k in ROW_KINDS] == [1, 1, 2, 2]
    assert not rows.feasible(x) and rows.feasible(np.array([5.0, 4.0]))  # phase 1 exports 5 A
    assert rows.n_rows == 6 and rows.k == 2 and not rows.linear_only


def test_linear_constructor_has_empty_kinds_of_width_k():
    rows = RowSystem.linear(np.ones((2, 5)), np.array([10.0, 20.0]))
    assert rows.linear_only and rows.k == 5
    assert rows.S.shape == (0, 5) and rows.Z.shape == (0, 5) and rows.pairs.shape == (0, 2)
    assert rows.excess(np.full(5, 3.0)) == pytest.approx([5.0, -5.0])
    assert rows.problems() == []


def test_build_names_every_shape_mismatch_and_problems_every_bad_value():
    with pytest.raises(ValueError, match="cap.*expected.*zlim"):
        RowSystem.build(np.ones((2, 3)), np.ones(1), Z=np.ones((1, 3)), zlim=np.ones(2))
    bad = RowSystem.build(-np.ones((1, 2)), [1.0], Z=np.ones((1, 2)), zlim=[-1.0], pairs=[[0, 3]], ulim=[float("nan")])
    found = " ".join(bad.problems())
    for what in ("M: negative", "zlim: negative", "ulim: not finite", "pairs: index"):
        assert what in found


@given(systems, st.data())
def test_take_by_mask_equals_take_by_index_and_drops_columns(p, data):
    rows, lo, _, _ = p
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=rows.k, max_size=rows.k)))
    idx = np.flatnonzero(mask)
    a, b = rows.take(mask), rows.take(idx)
    assert a.k == b.k == idx.size
    full = np.where(mask, lo, 0.0)
    assert np.allclose(a.excess(lo[idx]), rows.excess(full))
    assert np.allclose(b.excess(lo[idx]), rows.excess(full))


def _dense(zcols, shape):
    ptr, r, z = zcols
    out = np.zeros(shape, dtype=np.complex128)
    cols = np.repeat(np.arange(shape[1]), np.diff(ptr))
    out[r, cols] = z
    return out, cols


@given(systems, st.data())
def test_z_by_column_rebuilds_z_through_take_and_column_replacement(p, data):
    rows, _, _, _ = p
    Z = rows.Z
    dense, cols = _dense(rows.zcols, Z.shape)
    assert np.array_equal(dense, Z) and np.all(rows.zcols[2] != 0)
    assert all(np.all(np.diff(rows.zcols[1][cols == c]) > 0) for c in range(rows.k))  # rows ascending
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=rows.k, max_size=rows.k)))
    taken = rows.take(mask)  # passed on from the parent, not searched again
    assert np.array_equal(_dense(taken.zcols, taken.Z.shape)[0], Z[:, mask])
    # replace some columns (new patterns, zeros included) and compare with a fresh search
    idx = np.flatnonzero(mask)
    Zc = Z[:, idx][::-1] * np.where(np.arange(Z.shape[0])[:, None] % 2 == 0, 1.0, 0.0)
    Z2 = Z.copy()
    Z2[:, idx] = Zc
    got = columns_replaced(rows.zcols, idx, Zc)
    fresh = RowSystem.build(rows.M, rows.cap, Z=Z2, zlim=rows.zlim).zcols
    assert all(np.array_equal(a, b) for a, b in zip(got, fresh))


@given(systems)
def test_a_narrow_cone_holds_every_coefficient_and_a_subset_inherits_it(p):
    rows, _, _, _ = p
    d, narrow = rows.zcone
    for r in np.flatnonzero(narrow):
        z = rows.Z[r][rows.Z[r] != 0]
        assert np.all((z / np.abs(z) * np.conj(d[r])).real >= CONE_COS - 1e-12)
    taken = rows.take(np.arange(rows.k) % 2 == 0)
    assert taken.zcone[0] is d and taken.zcone[1] is narrow


@given(systems, st.data())
def test_splice_takes_the_other_systems_columns_where_masked(p, data):
    rows, lo, extra, _ = p
    other = RowSystem(
        2.0 * rows.M, rows.cap, -rows.S, rows.scap, 1j * rows.Z, rows.zb, rows.zlim, rows.pairs, rows.ulim
    )
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=rows.k, max_size=rows.k)))
    spliced = rows.splice(mask, other)
    x = lo + extra
    # the load of the spliced system = its columns from one or the other system
    assert np.allclose(spliced.M @ x, rows.M[:, ~mask] @ x[~mask] + other.M[:, mask] @ x[mask])
    assert np.allclose(spliced.S @ x, rows.S[:, ~mask] @ x[~mask] + other.S[:, mask] @ x[mask])
    assert np.allclose(spliced.phasors(x), rows.take(~mask).phasors(x[~mask]) + other.Z[:, mask] @ x[mask])
    assert np.array_equal(spliced.cap, rows.cap) and spliced.pairs is rows.pairs
    with pytest.raises(ValueError):
        rows.splice(mask, RowSystem.linear(np.ones((rows.M.shape[0] + 1, rows.k)), np.ones(rows.M.shape[0] + 1)))


@given(systems)
def test_shifted_system_sees_what_is_left(p):
    rows, lo, extra, _ = p
    x0 = lo * 0.5
    assert np.allclose(rows.shifted(x0).excess(extra), rows.excess(x0 + extra))


@given(systems)
def test_excess_is_batched_over_leading_axes(p):
    rows, lo, extra, _ = p
    X = np.stack([lo, lo + extra, np.zeros_like(lo)])
    ex = rows.excess(X)
    assert ex.shape == (3, rows.n_rows)
    for n in range(3):
        assert np.allclose(ex[n], rows.excess(X[n]))
    assert rows.feasible(X) == all(rows.feasible(X[n]) for n in range(3))


@given(systems, st.data())
def test_excess_with_one_connector_lowered_is_the_excess_of_the_lowered_currents(p, data):
    rows, lo, extra, _ = p
    x = lo + extra
    cols = np.array(data.draw(st.lists(st.integers(0, rows.k - 1), max_size=6)), dtype=np.int64)
    by = x[cols] * np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=cols.size, max_size=cols.size)))
    ex = rows.excess_lowered(x, cols, by)
    assert ex.shape == (cols.size, rows.n_rows)
    for j, (c, d) in enumerate(zip(cols.tolist(), by.tolist())):
        trial = x.copy()
        trial[c] -= d
        assert np.allclose(ex[j], rows.excess(trial))


def test_key_changes_with_any_array():
    rows = RowSystem.build(np.ones((1, 2)), [5.0], Z=np.ones((1, 2)), zlim=[3.0])
    same = RowSystem.build(np.ones((1, 2)), [5.0], Z=np.ones((1, 2)), zlim=[3.0])
    other = RowSystem.build(np.ones((1, 2)), [5.0], Z=np.ones((1, 2)), zlim=[3.5])
    assert rows.key() == same.key() and rows.key() != other.key()
