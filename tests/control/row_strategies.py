"""Random constraint-row systems shaped like real sites, for the row and kernel tests.

Connectors are phase-to-neutral EVs on one to three grid phases (phasors at 0, -120, +120
degrees) or line-to-line EVs between two phases (branch phasors at 30, -90, 150 degrees,
so ``I_A = I_AB - I_CA``). Rows: the connection's phases (linear at a phase-to-neutral site,
phasor where line-to-line branches meet), a delta primary ``(I_a - I_c) / N``, pods of
line-to-line EVSEs on one pair (linear), sub-feeders, unbalance limits (signed rows at a
phase-to-neutral site, pair rows at a phasor site), with base loads that may be negative
(PV export).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from evflex.control.allocation.rows import RowSystem

#: Unit phasor of each grid phase's voltage, L1 0, L2 -120, L3 +120 degrees.
PHASE_UNIT = np.exp(1j * np.deg2rad([0.0, -120.0, 120.0]))
#: The three line-to-line branches (from, to): AB, BC, CA.
BRANCHES = ((0, 1), (1, 2), (2, 0))


def pn_injection(phases: tuple[int, ...]) -> np.ndarray:
    """(3,) complex: a phase-to-neutral EV drawing 1 A on each of ``phases``."""
    w = np.zeros(3, dtype=np.complex128)
    for p in phases:
        w[p] += PHASE_UNIT[p]
    return w


def ll_injection(p: int, q: int) -> np.ndarray:
    """(3,) complex: a line-to-line EV drawing 1 A from phase p to phase q (at the angle of
    the voltage p-q): out of p, back through q."""
    u = PHASE_UNIT[p] - PHASE_UNIT[q]
    u = u / abs(u)
    w = np.zeros(3, dtype=np.complex128)
    w[p] += u
    w[q] -= u
    return w


def primary_rows(W: np.ndarray, ratio: float) -> np.ndarray:
    """(3, k) complex: the delta primary's line currents ``(I_a - I_c) / N`` etc. for the
    secondary phase injections ``W`` (3, k)."""
    return np.stack([W[0] - W[2], W[1] - W[0], W[2] - W[1]]) / ratio


bounds_lo = st.sampled_from([6.0, 8.0, 10.0, 16.0])


@st.composite
def pn_systems(draw, max_k: int = 12):
    """A phase-to-neutral site: connection rows and sub-feeder rows (linear), unbalance rows
    ``(M_p - M_q) @ x <= U - (b_p - b_q)`` (signed). Returns (rows, lo, extra, order)."""
    k = draw(st.integers(1, max_k))
    phases = [tuple((draw(st.integers(0, 2)) + j) % 3 for j in range(draw(st.integers(1, 3)))) for _ in range(k)]
    inc = np.array([[1.0 if p in ph else 0.0 for p in range(3)] for ph in phases]).T  # (3, k)
    base = np.array(draw(st.lists(st.floats(-30, 40), min_size=3, max_size=3)))
    limit = draw(st.floats(10, 150))
    M = [inc]
    cap = [limit - base]
    if draw(st.booleans()):
        sub = np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k)), dtype=float)
        M.append(inc * sub)
        cap.append(np.full(3, draw(st.floats(10, 80))))
    U = draw(st.floats(0, 30))
    S, scap = [], []
    for p in range(3):
        for q in range(3):
            if p != q:
                S.append(inc[p] - inc[q])
                scap.append(U - (base[p] - base[q]))
    rows = RowSystem.build(np.vstack(M), np.concatenate(cap), np.array(S), np.array(scap))
    return rows, *_bounds(draw, k)


@st.composite
def phasor_systems(draw, max_k: int = 12, pairs: bool | None = None):
    """A site with line-to-line EVs: connection phases as phasor rows, optionally a delta
    primary, pods of line-to-line EVs on one branch (linear), unbalance pair rows over the
    connection phases. Returns (rows, lo, extra, order)."""
    k = draw(st.integers(1, max_k))
    W = np.zeros((3, k), dtype=np.complex128)
    branch = np.full(k, -1)
    for c in range(k):
        if draw(st.integers(0, 2)):  # two thirds line-to-line
            b = draw(st.integers(0, 2))
            branch[c] = b
            W[:, c] = ll_injection(*BRANCHES[b])
        else:
            n_ph = draw(st.integers(1, 3))
            start = draw(st.integers(0, 2))
            W[:, c] = pn_injection(tuple((start + j) % 3 for j in range(n_ph)))
    base = np.array(draw(st.lists(st.floats(-30, 40), min_size=3, max_size=3)))  # real: unity power factor
    base_ph = base * PHASE_UNIT
    Z = [W]
    zb = [base_ph]
    zlim = [np.full(3, draw(st.floats(10, 150)))]
    if draw(st.booleans()):
        ratio = draw(st.sampled_from([1.0, 2.0, 4.0]))
        Z.append(primary_rows(W, ratio))
        zb.append(primary_rows(base_ph[:, None], ratio)[:, 0])
        zlim.append(np.full(3, draw(st.floats(10, 150)) / ratio))
    M = np.zeros((0, k))
    cap = np.zeros(0)
    if draw(st.booleans()) and (branch >= 0).any():
        pods = [np.flatnonzero(branch == b) for b in range(3) if (branch == b).any()]
        M = np.zeros((len(pods), k))
        for r, members in enumerate(pods):
            M[r, members] = 1.0
        cap = np.array(draw(st.lists(st.floats(6, 60), min_size=len(pods), max_size=len(pods))))
    with_pairs = draw(st.booleans()) if pairs is None else pairs
    pr = np.array([(p, q) for p in range(3) for q in range(3) if p != q]) if with_pairs else None
    ulim = np.full(6, draw(st.floats(0, 30))) if with_pairs else None
    rows = RowSystem.build(
        M, cap, Z=np.vstack(Z), zb=np.concatenate(zb), zlim=np.concatenate(zlim), pairs=pr, ulim=ulim
    )
    return rows, *_bounds(draw, k)


def _bounds(draw, k: int):
    lo = np.array(draw(st.lists(bounds_lo, min_size=k, max_size=k)))
    extra = np.array(draw(st.lists(st.floats(0, 26), min_size=k, max_size=k)))
    order = np.array(draw(st.permutations(range(k))), dtype=np.int64)
    return lo, extra, order


#: Any site-shaped row system with bounds and an order.
systems = st.one_of(pn_systems(), phasor_systems())
