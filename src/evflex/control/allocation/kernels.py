"""Pure allocation kernels over a constraint matrix.

All functions take a constraint matrix ``M`` (m rows x k connectors, non-negative; row r
carries ``M[r] @ current_a``), per-connector bounds, and a capacity per row ``cap_a`` (the
limit minus whatever else flows through the row). They return arrays and keep every row
within its capacity whenever the starting point does.
"""

from __future__ import annotations

import numpy as np

from evflex.units import CURRENT_TOL_A


def admit(M: np.ndarray, need_a: np.ndarray, cap_a: np.ndarray, order: np.ndarray,
          tol: float = CURRENT_TOL_A) -> np.ndarray:
    """Greedy admission: walk ``order`` and admit each connector whose minimum current
    ``need_a`` still fits every row it loads, given those admitted before it.

    This is how a tight limit is shared: fewer EVs at a feasible current (>= 6 A) rather
    than many at an infeasible one. Vectorised: each pass admits the longest fitting prefix,
    so the number of passes is the number of rejections that the pass before could not
    foresee, not the number of connectors.

    Returns a boolean mask over the k connectors.
    """
    admitted = np.zeros(len(need_a), dtype=bool)
    residual = np.array(cap_a, dtype=np.float64)
    cand = np.asarray(order, dtype=np.int64)
    add = np.add.accumulate
    while cand.size:
        Mc = M.take(cand, axis=1)
        touch = Mc > 0
        load = Mc * need_a.take(cand)
        lim = (residual + tol)[:, None]
        bad = touch & (load > lim)
        if bad.any():
            fits = ~bad.any(axis=0)
            cand, touch, load = cand[fits], touch[:, fits], load[:, fits]
            if not cand.size:
                break
        over = (touch & (add(load, axis=1) > lim)).any(axis=0)
        j = over.argmax()
        if not over[j]:
            admitted[cand] = True
            break
        # j >= 1: the first candidate fits on its own
        admitted[cand[:j]] = True
        residual -= load[:, :j].sum(axis=1)
        cand = cand[j + 1:]
    return admitted


def greedy_fill(M: np.ndarray, start_a: np.ndarray, extra_a: np.ndarray, cap_a: np.ndarray,
                order: np.ndarray, tol: float = CURRENT_TOL_A) -> np.ndarray:
    """Priority fill: from a feasible ``start_a``, give each connector in ``order`` as much of
    its ``extra_a`` as still fits (EDF, LLF). Passes <= number of rows that saturate.
    """
    x = np.array(start_a, dtype=np.float64)
    residual = np.asarray(cap_a, dtype=np.float64) - M @ x
    cand = np.asarray(order, dtype=np.int64)
    cand = cand[extra_a.take(cand) > tol]
    add = np.add.accumulate
    while cand.size:
        saturated = residual <= tol
        if saturated.any():
            blocked = (M[saturated].take(cand, axis=1) > 0).any(axis=0)
            if blocked.any():
                cand = cand[~blocked]
                if not cand.size:
                    break
        Mc = M.take(cand, axis=1)
        ex = extra_a.take(cand)
        touch = Mc > 0
        cum = add(Mc * ex, axis=1)
        over = (touch & (cum > (residual + tol)[:, None])).any(axis=0)
        j = over.argmax()
        if not over[j]:
            x[cand] += ex
            break
        x[cand[:j]] += ex[:j]
        avail = residual - cum[:, j - 1] if j else residual.copy()
        tj = touch[:, j]
        part = min(max((avail[tj] / Mc[tj, j]).min(), 0.0), ex[j])
        x[cand[j]] += part
        residual = avail - Mc[:, j] * part
        cand = cand[j + 1:]
    return x


def _max_level(M: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, room: np.ndarray,
               tol: float) -> tuple[float, np.ndarray]:
    """Largest level L with ``M @ clip(L * w, lo, hi) <= room`` (feasible at L = 0).

    Each row's load is piecewise linear in L with breakpoints ``lo/w`` and ``hi/w``; the
    loads at all breakpoints come from one cumulative sum, and the crossing is solved
    exactly inside its segment. Returns the level (inf when everyone reaches ``hi``) and
    the mask of rows that bind there.
    """
    k = len(w)
    bp = np.concatenate([lo / w, hi / w])
    dslope_w = np.concatenate([w, -w])
    col = np.concatenate([np.arange(k), np.arange(k)])
    srt = np.argsort(bp, kind="stable")
    bp, dslope_w, col = bp[srt], dslope_w[srt], col[srt]
    slope = np.cumsum(M[:, col] * dslope_w, axis=1)  # slope right after each breakpoint
    g = np.empty_like(slope)
    g[:, 0] = M @ lo
    if bp.size > 1:
        g[:, 1:] = g[:, :1] + np.cumsum(slope[:, :-1] * np.diff(bp), axis=1)
    over = np.any(g > room[:, None] + tol, axis=0)
    if not over.any():
        return np.inf, np.zeros(len(room), dtype=bool)
    j = int(np.argmax(over))
    if j == 0:  # infeasible already at the lower bounds: stay there
        return float(bp[0]), g[:, 0] > room - tol
    s = slope[:, j - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        level_r = np.where(s > tol, bp[j - 1] + (room - g[:, j - 1]) / s, np.inf)
    level = float(np.clip(np.min(level_r), bp[j - 1], bp[j]))
    binding = level_r <= level + max(tol, 1e-12 * abs(level))
    return level, binding


def weighted_fill(M: np.ndarray, lo_a: np.ndarray, hi_a: np.ndarray, cap_a: np.ndarray,
                  weights: np.ndarray, tol: float = CURRENT_TOL_A) -> np.ndarray:
    """Weighted max-min fair share (progressive filling): every connector gets
    ``clip(L * weight, lo, hi)`` with one common level L raised until a row binds; the
    connectors of binding rows freeze there and the others keep rising.

    ``weights`` all 1 gives an equal current to everyone (equal share); weights in
    proportion to remaining energy give a proportional share. Requires ``M @ lo_a <= cap_a``.
    """
    x = np.array(lo_a, dtype=np.float64)
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
    free = np.flatnonzero(hi_a > lo_a + tol)
    room = np.asarray(cap_a, dtype=np.float64) - M @ x + M[:, free] @ x[free]
    while free.size:
        Mf = M[:, free]
        rows = (Mf > 0).any(axis=1)  # rows the free connectors load; the others cannot bind
        Mr = Mf[rows]
        level, binding = _max_level(Mr, w[free], lo_a[free], hi_a[free], room[rows], tol)
        if not np.isfinite(level):
            x[free] = hi_a[free]
            break
        val = np.minimum(np.maximum(level * w[free], lo_a[free]), hi_a[free])
        frozen = (Mr[binding] > 0).any(axis=0) | (val >= hi_a[free] - tol)
        if not frozen.any():  # numerical corner: nothing binds, settle here
            x[free] = val
            break
        x[free[frozen]] = val[frozen]
        room -= Mf[:, frozen] @ val[frozen]
        free = free[~frozen]
    return x
