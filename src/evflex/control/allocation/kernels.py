"""Pure allocation kernels over a constraint matrix.

All functions take a constraint matrix ``M`` (m rows x k connectors, non-negative; row r
carries ``M[r] @ current_a``), per-connector bounds, and a capacity per row ``cap_a`` (the
limit minus whatever else flows through the row). They return arrays and keep every row
within its capacity whenever the starting point does.
"""

from __future__ import annotations

import functools

import numpy as np

from evflex.units import CURRENT_TOL_A

#: Problems with at most this many (connector, row) pairs take the plain sequential path.
SMALL_PROBLEM = 512


def _repeat_last(kernel):
    """Remember a pure kernel's last call: a site in a steady state asks the same question
    step after step (same EVs, same limits), and the answer is then the same array."""
    last: list = [None, None]

    @functools.wraps(kernel)
    def wrapper(*args, **kwargs):
        key = tuple((a.shape, a.dtype.str, a.tobytes()) if isinstance(a, np.ndarray) else a for a in args) + tuple(
            sorted(kwargs.items())
        )
        if key != last[0]:
            last[0], last[1] = key, kernel(*args, **kwargs)
        return last[1].copy()

    return wrapper


@_repeat_last
def admit(
    M: np.ndarray, need_a: np.ndarray, cap_a: np.ndarray, order: np.ndarray, tol: float = CURRENT_TOL_A
) -> np.ndarray:
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
    if not cand.size:
        return admitted
    Mc = M.take(cand, axis=1)
    load = Mc * need_a.take(cand)
    # rows that hold everyone's minimum play no part
    live = load.sum(axis=1) > residual + tol
    if not live.any():
        admitted[cand] = True
        return admitted
    load, residual = load[live], residual[live]
    add = np.add.accumulate
    while cand.size:
        touch = load > 0
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
        residual = residual - load[:, :j].sum(axis=1)
        cand, load = cand[j + 1 :], load[:, j + 1 :]
    return admitted


@_repeat_last
def greedy_fill(
    M: np.ndarray,
    start_a: np.ndarray,
    extra_a: np.ndarray,
    cap_a: np.ndarray,
    order: np.ndarray,
    tol: float = CURRENT_TOL_A,
) -> np.ndarray:
    """Priority fill: from a feasible ``start_a``, give each connector in ``order`` as much of
    its ``extra_a`` as still fits every row it loads, given those before it (EDF, LLF).

    Exactly the sequential greedy, computed in passes. A pass takes the cumulative load of
    every row along the order (everyone at full extra) and walks the rows' first overflows
    in order of position: the connector there gets what is left, rows it fills block their
    later members. An overflow is handled in the same pass as long as nothing handled
    before it in the pass touched its rows; otherwise that row's members from there on wait
    for the next pass (loads of touched rows are overestimates: still safe for the
    connectors in between, no longer exact). The first overflow of a pass is always
    handled, so passes end; rows that share only a connection row (sub-feeders) saturate
    together, in a few passes instead of one pass each.
    """
    x = np.array(start_a, dtype=np.float64)
    residual = np.asarray(cap_a, dtype=np.float64) - M @ x
    cand = np.asarray(order, dtype=np.int64)
    cand = cand[extra_a.take(cand) > tol]
    if not cand.size:
        return x
    if cand.size * M.shape[0] <= SMALL_PROBLEM:
        return _greedy_sequential(M, x, extra_a, residual, cand)
    Mc = M.take(cand, axis=1)
    give = extra_a.take(cand).astype(np.float64)
    touch = Mc > 0
    live = touch.any(axis=1) & ((Mc @ give) > residual + tol)  # rows that cannot overflow play no part
    Mc, residual, touch = Mc[live], residual[live], touch[live]
    while residual.size and len(give):
        cum = np.add.accumulate(Mc * give, axis=1)
        lim = residual + tol
        has = cum[:, -1] > lim
        if not has.any():
            break
        rows = np.flatnonzero(has)
        # loads only grow along the order, so a row first overflows where it first passes
        # its limit, necessarily at a connector that loads it
        first = (cum[rows] > lim[rows, None]).argmax(axis=1)
        srt = np.argsort(first, kind="stable")
        rows, first = rows[srt], first[srt]
        settled = int(first[0]) + 1  # the first overflow of a pass is always exact
        changed = np.zeros(len(give), dtype=bool)  # given less, or not known yet, this pass
        for r, p in zip(rows.tolist(), first.tolist()):
            if changed[: p + 1][touch[r, : p + 1]].any():
                changed[p:] |= touch[r, p:]  # stale: its members from here wait for the next pass
                continue
            rc = np.flatnonzero(touch[:, p])
            room = residual[rc] - (cum[rc, p - 1] if p else 0.0)
            k = int(np.argmin(room / Mc[rc, p]))
            ra = rc[k]
            if ra != r and changed[: p + 1][touch[ra, : p + 1]].any():
                changed[p:] |= touch[r, p:] | touch[ra, p:]  # bound by a stale row: next pass
                continue
            part = min(max(float(room[k] / Mc[ra, p]), 0.0), float(give[p]))
            exact = ~(changed[:p] & touch[rc, :p]).any(axis=1)
            give[p] = part
            changed[p] = True
            full = rc[exact & (room - Mc[rc, p] * part <= tol)]
            if full.size:  # full rows block their later members
                blocked = touch[full].any(axis=0)
                blocked[: p + 1] = False
                give[blocked] = 0.0
                changed |= blocked
        # settle the prefix: its load leaves the rows, its columns leave the matrices
        x[cand[:settled]] += give[:settled]
        residual = residual - Mc[:, :settled] @ give[:settled]
        cand, give, Mc, touch = cand[settled:], give[settled:], Mc[:, settled:], touch[:, settled:]
        keep = (residual > tol) & ((Mc @ give) > residual + tol)  # rows that can still bind
        if not keep.all():
            full = ~keep & (residual <= tol)
            if full.any():  # a full row blocks its remaining members
                give[touch[full].any(axis=0)] = 0.0
            Mc, touch, residual = Mc[keep], touch[keep], residual[keep]
    x[cand] += give
    return x


def _greedy_sequential(
    M: np.ndarray, x: np.ndarray, extra_a: np.ndarray, residual: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """The greedy one connector at a time, in plain Python: fastest for small problems."""
    cols = M.T.tolist()
    res = residual.tolist()
    ex = extra_a.tolist()
    rows = range(len(res))
    for c in order.tolist():
        col, g = cols[c], ex[c]
        for r in rows:
            a = col[r]
            if a > 0.0 and res[r] < a * g:
                g = max(res[r] / a, 0.0)
        if g > 0.0:
            for r in rows:
                if col[r] > 0.0:
                    res[r] -= col[r] * g
            x[c] += g
    return x


def _max_level(
    M: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, room: np.ndarray, tol: float
) -> tuple[float, np.ndarray]:
    """Largest level L with ``M @ clip(L * w, lo, hi) <= room`` (feasible at L = 0).

    Each row's load is piecewise linear in L with breakpoints ``lo/w`` and ``hi/w``; the
    loads at all breakpoints come from one cumulative sum, and the crossing is solved
    exactly inside its segment. Returns the level (inf when everyone reaches ``hi``) and
    the mask of rows that bind there.
    """
    k = len(w)
    if k * k <= SMALL_PROBLEM:
        return _max_level_direct(M, w, lo, hi, room, tol)
    bp = np.concatenate([lo / w, hi / w])
    dslope_w = np.concatenate([w, -w])
    col = np.concatenate([np.arange(k), np.arange(k)])
    srt = bp.argsort(kind="stable")
    bp, dslope_w, col = bp[srt], dslope_w[srt], col[srt]
    add = np.add.accumulate
    slope = add(M.take(col, axis=1) * dslope_w, axis=1)  # slope right after each breakpoint
    g = np.empty_like(slope)
    g[:, 0] = M @ lo
    if bp.size > 1:
        g[:, 1:] = g[:, :1] + add(slope[:, :-1] * np.diff(bp), axis=1)
    over = np.asarray((g > (room + tol)[:, None]).any(axis=0))
    j = int(over.argmax())
    if not over[j]:
        return np.inf, np.zeros(len(room), dtype=bool)
    if j == 0:  # infeasible already at the lower bounds: stay there
        return float(bp[0]), g[:, 0] > room - tol
    s = slope[:, j - 1]
    rising = s > tol
    level_r = np.full(len(room), np.inf)
    level_r[rising] = bp[j - 1] + (room[rising] - g[rising, j - 1]) / s[rising]
    level = min(max(float(level_r.min()), float(bp[j - 1])), float(bp[j]))
    binding = level_r <= level + max(tol, 1e-12 * abs(level))
    return level, binding


def _max_level_direct(
    M: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, room: np.ndarray, tol: float
) -> tuple[float, np.ndarray]:
    """:func:`_max_level` for small problems: every row's load at every breakpoint at once."""
    bp = np.concatenate([lo / w, hi / w])
    bp.sort()
    g = np.minimum(np.maximum(bp[:, None] * w, lo), hi) @ M.T  # (breakpoints, rows)
    over = (g > room + tol).any(axis=1)
    j = int(over.argmax())
    if not over[j]:
        return np.inf, np.zeros(len(room), dtype=bool)
    if j == 0:
        return float(bp[0]), g[0] > room - tol
    span = bp[j] - bp[j - 1]
    s = (g[j] - g[j - 1]) / span if span > 0 else np.zeros(len(room))
    rising = s > tol
    level_r = np.full(len(room), np.inf)
    level_r[rising] = bp[j - 1] + (room[rising] - g[j - 1, rising]) / s[rising]
    level = min(max(float(level_r.min()), float(bp[j - 1])), float(bp[j]))
    return level, level_r <= level + max(tol, 1e-12 * abs(level))


@_repeat_last
def weighted_fill(
    M: np.ndarray,
    lo_a: np.ndarray,
    hi_a: np.ndarray,
    cap_a: np.ndarray,
    weights: np.ndarray,
    tol: float = CURRENT_TOL_A,
) -> np.ndarray:
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
        # rows the free connectors load and could fill; the others cannot bind
        rows = (Mf > 0).any(axis=1) & (Mf @ hi_a[free] > room + tol)
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
