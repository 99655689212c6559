"""Pure allocation kernels: admission, priority (greedy) fill and weighted max-min fill.

Two families. The first takes a constraint matrix ``M`` (m rows x k connectors, non-negative;
row r carries ``M[r] @ current_a``), per-connector bounds, and a capacity per row ``cap_a``
(the limit minus whatever else flows through the row): :func:`admit`, :func:`greedy_fill`,
:func:`weighted_fill`. The second takes a :class:`~evflex.control.allocation.rows.RowSystem`
(linear, signed, phasor and pair rows): :func:`admit_rows`, :func:`greedy_fill_rows`,
:func:`weighted_fill_rows`; on a system of linear rows only they are the first family.
All return arrays and keep every row within its limit whenever the starting point does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from evflex.control.allocation.rows import CONE_COS, RowSystem, column_entries
from evflex.units import CURRENT_TOL_A

#: Problems with at most this many (connector, row) pairs take the plain sequential path.
SMALL_PROBLEM = 512


def _arg_key(a):
    if isinstance(a, np.ndarray):
        return (a.shape, a.dtype.str, a.tobytes())
    if isinstance(a, RowSystem):
        return a.key()
    return a


def _size(a) -> int:
    """The size of a kernel's problem, from its first argument (a matrix or a row system)."""
    return a.k * a.n_rows if isinstance(a, RowSystem) else a.size


def _repeat_last(kernel, afresh_up_to: int = 0):
    """Remember a pure kernel's last call: a site in a steady state asks the same question
    step after step (same EVs, same limits), and the answer is then the same array.
    Problems of at most ``afresh_up_to`` (see :func:`_size`) are solved afresh: for a cheap
    kernel, faster than making and comparing the key."""
    last: list = [None, None]

    @functools.wraps(kernel)
    def wrapper(*args, **kwargs):
        if _size(args[0]) <= afresh_up_to:
            return kernel(*args, **kwargs)
        key = tuple(_arg_key(a) for a in args) + tuple(sorted(kwargs.items()))
        if key != last[0]:
            last[0], last[1] = key, kernel(*args, **kwargs)
        return last[1].copy()

    return wrapper


@functools.partial(_repeat_last, afresh_up_to=SMALL_PROBLEM)
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
    if cand.size * M.shape[0] <= SMALL_PROBLEM:
        return _admit_sequential(M, need_a, residual, cand, tol)
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


def _admit_sequential(M: np.ndarray, need_a: np.ndarray, cap_a: np.ndarray, order: np.ndarray, tol: float):
    """The admission one connector at a time, in plain Python: fastest for small problems."""
    cols = M.T.tolist()
    used = [0.0] * len(cap_a)
    lim = (cap_a + tol).tolist()
    need = need_a.tolist()
    rows = range(len(lim))
    out = []
    for c in order.tolist():
        col, nd = cols[c], need[c]
        for r in rows:
            a = col[r]
            if a > 0.0 and used[r] + a * nd > lim[r]:
                break
        else:
            out.append(c)
            for r in rows:
                used[r] += col[r] * nd
    admitted = np.zeros(len(need_a), dtype=bool)
    admitted[out] = True
    return admitted


@functools.partial(_repeat_last, afresh_up_to=SMALL_PROBLEM)
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
    if M.size <= SMALL_PROBLEM // 2:
        return _weighted_sequential(M, lo_a, hi_a, cap_a, weights, tol)
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


def _weighted_sequential(M: np.ndarray, lo_a, hi_a, cap_a, weights, tol: float) -> np.ndarray:
    """:func:`weighted_fill` in plain Python, fastest for small problems: each rise of the
    level sweeps the free connectors' breakpoints in order, every row's load and slope
    carried along (:func:`_sweep_level`)."""
    Ml = M.tolist()
    lo, hi = np.asarray(lo_a, dtype=np.float64).tolist(), np.asarray(hi_a, dtype=np.float64).tolist()
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9).tolist()
    x = lo[:]
    free = [c for c in range(len(lo)) if hi[c] > lo[c] + tol]
    fixed = set(range(len(lo))) - set(free)
    room = [cap - sum(row[c] * x[c] for c in fixed) for row, cap in zip(Ml, np.asarray(cap_a).tolist())]
    while free:
        rows = [
            r
            for r, row in enumerate(Ml)
            if any(row[c] > 0.0 for c in free) and sum(row[c] * hi[c] for c in free) > room[r] + tol
        ]
        level, binding = _sweep_level([Ml[r] for r in rows], [room[r] for r in rows], free, w, lo, hi, tol)
        if level == math.inf:
            for c in free:
                x[c] = hi[c]
            break
        bind = [Ml[rows[i]] for i in binding]
        val = {c: min(max(level * w[c], lo[c]), hi[c]) for c in free}
        frozen = [c for c in free if val[c] >= hi[c] - tol or any(row[c] > 0.0 for row in bind)]
        if not frozen:  # numerical corner: nothing binds, settle here
            for c in free:
                x[c] = val[c]
            break
        for c in frozen:
            x[c] = val[c]
            for r, row in enumerate(Ml):
                room[r] -= row[c] * val[c]
        done = set(frozen)
        free = [c for c in free if c not in done]
    return np.array(x, dtype=np.float64)


def _sweep_level(rows: list, room: list, free: list, w: list, lo: list, hi: list, tol: float) -> tuple[float, list]:
    """:func:`_max_level` over rows as lists: the largest level L at which every row's load
    ``sum(row[c] * clip(L * w[c], lo[c], hi[c]) for c in free)`` stays within its room, and
    the indices of the rows that bind there (``inf`` and none when all reach ``hi``)."""
    ev = sorted([(lo[c] / w[c], 1.0, c) for c in free] + [(hi[c] / w[c], -1.0, c) for c in free])
    b0 = ev[0][0]
    g = [sum(row[c] * min(max(b0 * w[c], lo[c]), hi[c]) for c in free) for row in rows]
    if any(gr > rm + tol for gr, rm in zip(g, room)):  # over already at the lower bounds: stay there
        return b0, [i for i, (gr, rm) in enumerate(zip(g, room)) if gr > rm - tol]
    slope = [0.0] * len(rows)
    lim = [rm + tol for rm in room]
    ri = range(len(rows))
    loads = {c: [(i, row[c]) for i, row in enumerate(rows) if row[c]] for c in free}
    at = b0
    for b, sign, c in ev:
        if b > at:
            span = b - at
            nxt = [g[i] + slope[i] * span for i in ri]
            for i in ri:
                if nxt[i] > lim[i]:
                    level_r = [at + (rm - gr) / s if s > tol else math.inf for gr, s, rm in zip(g, slope, room)]
                    level = min(max(min(level_r), at), b)
                    top = level + max(tol, 1e-12 * abs(level))
                    return level, [i for i, lv in enumerate(level_r) if lv <= top]
            g, at = nxt, b
        wc = sign * w[c]
        for i, a in loads[c]:
            slope[i] += a * wc
    return math.inf, []


# ====================================================================== general rows
#
# The kernels below honour every kind of row of a RowSystem exactly. Moving one connector (the
# greedy) or the common level (the max-min fill) traces a path on which a linear row is linear,
# a phasor row's squared magnitude quadratic (its largest root is where it leaves its limit),
# and a pair row a difference of two magnitudes; for that one the first crossing is searched
# (regula falsi, safeguarded by a certified upper bound of the difference on every interval it
# accepts). Each row is held to ``max(limit, value where the move starts)``: a row over its
# limit (within tolerance, or because the start is not feasible) is never made worse.

#: Pair rows are certified to this slack above their bound, so that rounding noise of a row
#: sitting exactly at its bound does not stop a connector that leaves it unchanged [A].
_SLACK_A = 1e-10
#: Resolution of the search for a pair row's first crossing [A or level units].
_PAIR_RESOLUTION = 1e-12
#: Relative tolerance on a row's derivative when deciding who pushes a binding row.
_PUSH_EPS = 1e-9
#: Above this many pair-row segments to certify, the bounds are computed as arrays first.
_VECTOR_BOUNDS = 64


# ---------------------------------------------------------------------- one row, one line
def _quad_exit(y: complex, z: complex, bound: float, t_max: float) -> float:
    """Largest ``t`` in [0, t_max] with ``|y + s z| <= bound`` for every s in [0, t], for
    ``|y| <= bound``: the larger root of the quadratic ``|y + t z|^2 = bound^2``."""
    a = z.real * z.real + z.imag * z.imag
    if a == 0.0:
        return t_max
    b = 2.0 * (y.real * z.real + y.imag * z.imag)
    m = abs(y)
    c = (m - bound) * (m + bound)
    sq = math.sqrt(max(b * b - 4.0 * a * c, 0.0))
    root = (sq - b) / (2.0 * a) if b <= 0.0 else -2.0 * c / (b + sq)
    return min(max(root, 0.0), t_max)


def _quad_exit_v(y: np.ndarray, z: np.ndarray, bound: np.ndarray, t_max: np.ndarray) -> np.ndarray:
    """:func:`_quad_exit` over arrays."""
    a = z.real * z.real + z.imag * z.imag
    b = 2.0 * (y.real * z.real + y.imag * z.imag)
    m = np.abs(y)
    c = np.minimum((m - bound) * (m + bound), 0.0)
    sq = np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(b <= 0.0, (sq - b) / (2.0 * a), -2.0 * c / (b + sq))
    root = np.where(a > 0.0, root, np.inf)
    root[np.isnan(root)] = 0.0
    return np.minimum(np.maximum(root, 0.0), t_max)


def _pair_bound(zi: complex, yj: complex, zj: complex, a: float, b: float, fa: float, fb: float, ja: float, jb: float):
    """An upper bound of ``f(t) = |yi + t zi| - |yj + t zj|`` on [a, b] from its end values
    ``fa``, ``fb`` and those of ``|yj + t zj|``, ``ja``, ``jb``.

    ``|yi + t zi|`` is convex, so below its chord; ``h(t) = |yj + t zj|`` is convex, so above
    its tangents at both ends and its least value d on [a, b], and (curvature at most
    ``|zj|^2 / d``) above its chord less ``|zj|^2 (t - a)(b - t) / (2 d)``. f is also
    Lipschitz with ``|zi| + |zj|``. The least of the three bounds."""
    ell = b - a
    if ell <= 0.0:
        return max(fa, fb)
    best = (fa + fb + (abs(zi) + abs(zj)) * ell) / 2.0
    zj2 = zj.real * zj.real + zj.imag * zj.imag
    if zj2 == 0.0:
        return max(fa, fb)
    p0 = yj + a * zj
    u = -(p0.real * zj.real + p0.imag * zj.imag) / zj2
    d = abs(p0 + min(max(u, 0.0), ell) * zj)
    kappa = zj2 / d if d > 0.0 else 0.0
    if 0.0 < kappa < math.inf:
        slope = (fb - fa) / ell
        s = min(max(ell / 2.0 + slope / kappa, 0.0), ell)
        best = min(best, fa + slope * s + kappa * s * (ell - s) / 2.0)
    # tangents: the bound chord_i - max(tangent_a, tangent_b, d) is concave piecewise linear
    p1 = yj + b * zj
    nz = math.sqrt(zj2)
    da = (p0.real * zj.real + p0.imag * zj.imag) / ja if ja > 0.0 else nz
    db = (p1.real * zj.real + p1.imag * zj.imag) / jb if jb > 0.0 else -nz
    ia, ib = fa + ja, fb + jb
    pts = [0.0, ell]
    if db > da:  # the tangents meet inside
        pts.append((jb - ja - db * ell) / (da - db))
    if da < 0.0:
        pts.append((d - ja) / da)
    if db > 0.0:
        pts.append(ell + (d - jb) / db)
    top = -math.inf
    for s in pts:
        if 0.0 <= s <= ell:
            top = max(top, ia + (ib - ia) * s / ell - max(ja + da * s, jb + db * (s - ell), d))
    return min(best, top)


def _pair_exit(yi: complex, zi: complex, yj: complex, zj: complex, bound: float, t_max: float) -> float:
    """Largest ``t`` in [0, t_max] such that ``|yi + s zi| - |yj + s zj| <= bound`` on [0, t],
    for a start within the bound: the first crossing (to :data:`_PAIR_RESOLUTION`), or t_max.

    Every interval left of the answer is certified by :func:`_pair_bound` (to
    :data:`_SLACK_A`); a crossing is located by regula falsi (Illinois) on a bracket, then the
    stretch before it is certified or split in search of an earlier one."""

    def mags(t: float) -> tuple[float, float]:
        j = abs(yj + t * zj)
        return abs(yi + t * zi) - j, j

    def f(t: float) -> float:
        return abs(yi + t * zi) - abs(yj + t * zj)

    def cert(a: float, b: float, fa: float, fb: float, ja: float, jb: float) -> bool:
        return _pair_bound(zi, yj, zj, a, b, fa, fb, ja, jb) <= hi

    hi = bound + _SLACK_A
    if zj == 0.0:  # |yi + t zi| - |yj|: convex, so its first crossing is a quadratic's root
        mj = abs(yj)
        t = _quad_exit(yi, zi, bound + mj, t_max)
        while t > 0.0 and abs(yi + t * zi) - mj > hi:
            t *= 1.0 - 1e-9  # guard the root against rounding
        return t
    res = _PAIR_RESOLUTION * (1.0 + t_max)
    f0, j0 = mags(0.0)
    f1, j1 = mags(t_max)
    if f1 <= hi and cert(0.0, t_max, f0, f1, j0, j1):
        return t_max
    best = t_max
    stack = [(0.0, t_max, f0, f1, j0, j1)]
    while stack:  # intervals left to right; everything left of the popped one is certified
        a, b, fa, fb, ja, jb = stack.pop()
        if fb > hi:
            r, fr = _illinois(f, a, b, fa, fb, hi, res)
            best = r
            stack.clear()  # what lies right of the crossing no longer matters
            jr = abs(yj + r * zj)
            if r - a > res and not cert(a, r, fa, fr, ja, jr):
                m = 0.5 * (a + r)
                fm, jm = mags(m)
                stack.append((m, r, fm, fr, jm, jr))
                stack.append((a, m, fa, fm, ja, jm))
            continue
        if b - a <= res or cert(a, b, fa, fb, ja, jb):
            continue
        m = 0.5 * (a + b)
        fm, jm = mags(m)
        stack.append((m, b, fm, fb, jm, jb))
        stack.append((a, m, fa, fm, ja, jm))
    return best


def _illinois(f, a: float, b: float, fa: float, fb: float, bound: float, res: float) -> tuple[float, float]:
    """A point ``r`` in [a, b) with ``f(r) <= bound`` and a crossing of ``bound`` within ``res``
    after it, for ``f(a) <= bound < f(b)`` (``a`` itself when ``f(a)`` is already above)."""
    ga, gb = fa - bound, fb - bound
    if ga > 0.0:
        return a, fa
    side = 0
    for it in range(200):
        if b - a <= res or ga == 0.0:
            break
        c = (a * gb - b * ga) / (gb - ga) if it < 60 else 0.5 * (a + b)
        if not a < c < b:
            c = 0.5 * (a + b)
        fc = f(c)
        gc = fc - bound
        if gc > 0.0:
            b, gb = c, gc
            if side == 1:
                ga *= 0.5
            side = 1
        else:
            a, ga, fa = c, gc, fc
            if side == -1:
                gb *= 0.5
            side = -1
    return a, fa


# ---------------------------------------------------------------------- preparation
@dataclass
class _Lines:
    """The rows that can matter for moving candidates, as plain lists for the sequential loops.

    Candidates are numbered 0..n-1 in the order they are handled. For each candidate,
    ``lp[c]:lp[c+1]`` indexes its linear rows (``lr``) and coefficients (``la``); likewise
    ``pp``/``pr``/``pz`` for tracked phasor rows and ``qp``/``qu``/``qzi``/``qzj`` for pair
    rows (with the candidate's coefficients in the pair's two phasor rows).

    ``zmembers`` (the greedy's only) lists, per tracked phasor row whose magnitude can only
    grow (:func:`_growing`), the candidates loading it: once it is full, they are blocked."""

    v: list  # linear row values
    lim: list
    mono: list  # linear row with non-negative coefficients (an M row)
    lp: list
    lr: list
    la: list
    members: list  # per linear row: candidates with a positive coefficient (M rows only)
    y: list  # tracked phasor row values (complex)
    zlim: list
    check: list  # the phasor row itself can bind
    pp: list
    pr: list
    pz: list
    pi: list
    pj: list
    ulim: list
    qp: list
    qu: list
    qzi: list
    qzj: list
    qai: list  # |qzi|
    zmembers: list
    qa: list  # the admission's pair entries instead (qp indexes them): row a, row b and the
    qb: list  # limits of |y_a| - |y_b| (qt1) and |y_b| - |y_a| (qt2), inf where not live
    qt1: list
    qt2: list


def _growing(rows: RowSystem, tidx: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """Per tracked phasor row ``tidx`` (values ``y0``): whether its magnitude can only grow
    when any of its currents rises, whatever the others do: its coefficients and its value
    lie in a cone narrower than 90 degrees (:attr:`RowSystem.zcone`)."""
    d, narrow = rows.zcone
    d, a0 = d[tidx], np.abs(y0)
    inside = (y0 * d.conj()).real >= CONE_COS * a0
    return narrow[tidx] & inside


def _ptr(idx: np.ndarray, n: int) -> list:
    return np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=n))]).tolist()


def _lines(rows: RowSystem, x0: np.ndarray | None, cand: np.ndarray, give: np.ndarray, tol: float | None) -> _Lines:
    """The rows for moving the candidates ``cand`` (in order) by up to ``give`` from ``x0``
    (None: from nothing). The pair rows' coefficients ``qzi``/``qzj`` are listed for the
    greedy only (``tol`` None); the admission reads magnitudes.

    Rows that cannot pass their limit (``tol`` None: the greedy's bound ``max(limit, value at
    x0)``; a number: ``limit + tol``, the admission's test) whatever the candidates do are
    left out, as are phasor rows neither checked nor in a pair row that can bind."""
    n = len(cand)
    lin_c, lin_v, lin_lim, mono = [], [], [], []
    for A, lim, is_m in ((rows.M, rows.cap, True), (rows.S, rows.scap, False)):
        if not A.shape[0]:
            continue
        Ac = A[:, cand]
        v0 = np.zeros(A.shape[0]) if x0 is None else A @ x0
        rise = (Ac if is_m else np.maximum(Ac, 0.0)) @ give
        room = lim - v0 if tol is None else lim + tol - v0
        keep = rise > np.maximum(room, 0.0) if tol is None else rise > room
        if keep.any():
            lin_c.append(Ac[keep])
            lin_v.append(v0[keep])
            lin_lim.append(lim[keep])
            mono.append(np.full(int(keep.sum()), is_m))
    if lin_c:
        C = np.vstack(lin_c) if len(lin_c) > 1 else lin_c[0]
        ci, ri = np.nonzero(C.T)
        vals = C.T[ci, ri]
        mono_a = np.concatenate(mono)
        pos = (C > 0) & mono_a[:, None]
        mr, mc = np.nonzero(pos)
        mptr = _ptr(mr, C.shape[0])
        mcl = mc.tolist()
        members = [mcl[mptr[r] : mptr[r + 1]] for r in range(C.shape[0])]
        lines_lin = (
            np.concatenate(lin_v).tolist(),
            np.concatenate(lin_lim).tolist(),
            mono_a.tolist(),
            _ptr(ci, n),
            ri.tolist(),
            vals.tolist(),
            members,
        )
    else:
        lines_lin = ([], [], [], [0] * (n + 1), [], [], [])

    mp = rows.Z.shape[0]
    if mp:
        # the candidates' nonzero coefficients, candidate-major, rows ascending
        zptr, zrow, zcoef = rows.zcols
        cptr, at = column_entries(zptr, cand)
        ce = np.repeat(np.arange(n), np.diff(cptr))
        re, ze = zrow[at], zcoef[at]
        y0 = rows.zb.copy() if x0 is None else rows.Z @ x0 + rows.zb
        m0 = np.abs(y0)
        reach = np.bincount(re, np.abs(ze) * give[ce], mp)
        room = rows.zlim - m0 if tol is None else rows.zlim + tol - m0
        check = reach > np.maximum(room, 0.0) if tol is None else reach > room
        tracked = check.copy()
        pairs = rows.pairs
        if pairs.shape[0]:
            i, j = pairs[:, 0], pairs[:, 1]
            f0 = m0[i] - m0[j]
            top = (m0[i] + reach[i]) - np.maximum(m0[j] - reach[j], 0.0)
            live = top > (np.maximum(rows.ulim, f0) + _SLACK_A if tol is None else rows.ulim + tol)
            tracked[pairs[live].ravel()] = True
        else:
            live = np.zeros(0, dtype=bool)
        tidx = np.flatnonzero(tracked)
        renum = np.full(mp, -1)
        renum[tidx] = np.arange(tidx.size)
        keep = tracked[re]
        ci, ri, pz = ce[keep], renum[re[keep]], ze[keep]
        lp_pairs = pairs[live]
        ti, tj = renum[lp_pairs[:, 0]], renum[lp_pairs[:, 1]]
        if lp_pairs.shape[0]:
            ZtT = np.zeros((n, tidx.size), dtype=np.complex128)
            ZtT[ci, ri] = pz
        qa = qb = qt1 = qt2 = qai = []
        if lp_pairs.shape[0] and tol is None:
            Zi, Zj = ZtT[:, ti], ZtT[:, tj]  # (n, live pairs)
            qc, qu = np.nonzero((Zi != 0) | (Zj != 0))
            zi_q = Zi[qc, qu]
            qzi, qzj, qai = zi_q.tolist(), Zj[qc, qu].tolist(), np.abs(zi_q).tolist()
        elif lp_pairs.shape[0]:  # the admission: one entry per row pair and its two directions
            lo_r, hi_r = np.minimum(ti, tj), np.maximum(ti, tj)
            keys, inv = np.unique(lo_r * tidx.size + hi_r, return_inverse=True)
            ua, ub = keys // tidx.size, keys % tidx.size
            t1, t2 = np.full(keys.size, np.inf), np.full(keys.size, np.inf)
            fwd = ti == lo_r
            ut_live = rows.ulim[live] + tol
            t1[inv[fwd]], t2[inv[~fwd]] = ut_live[fwd], ut_live[~fwd]
            qc, qu = np.nonzero((ZtT[:, ua] != 0) | (ZtT[:, ub] != 0))
            qa, qb, qt1, qt2 = ua[qu].tolist(), ub[qu].tolist(), t1[qu].tolist(), t2[qu].tolist()
            qzi = qzj = []
        else:
            qc = qu = np.zeros(0, dtype=np.int64)
            qzi = qzj = []
        zmembers: list = []
        if tol is None:  # the greedy: members of growing checked rows
            grow = _growing(rows, tidx, y0[tidx]) & check[tidx]
            sel = grow[ri]
            small = np.int16 if tidx.size < 2**15 else np.int64  # a radix sort for small ints
            by_row = np.argsort(ri[sel].astype(small), kind="stable")
            mcl = ci[sel][by_row].tolist()
            mptr = _ptr(ri[sel], tidx.size)
            zmembers = [mcl[mptr[r] : mptr[r + 1]] if grow[r] else None for r in range(tidx.size)]
        lines_ph = (
            y0[tidx].tolist(),
            rows.zlim[tidx].tolist(),
            check[tidx].tolist(),
            _ptr(ci, n),
            ri.tolist(),
            pz.tolist(),
            ti.tolist(),
            tj.tolist(),
            rows.ulim[live].tolist(),
            _ptr(qc, n),
            qu.tolist(),
            qzi,
            qzj,
            qai,
            zmembers,
            qa,
            qb,
            qt1,
            qt2,
        )
    else:
        z = [0] * (n + 1)
        lines_ph = ([], [], [], z, [], [], [], [], [], z, [], [], [], [], [], [], [], [], [])
    return _Lines(*lines_lin, *lines_ph)


# ---------------------------------------------------------------------- admission
def admit_rows(rows: RowSystem, need_a: np.ndarray, order: np.ndarray, tol: float = CURRENT_TOL_A) -> np.ndarray:
    """Greedy admission over general rows: walk ``order`` and admit each connector whose
    ``need_a`` added to those admitted before it keeps every row it loads within its limit
    (up to ``tol``); a row already over by more than ``tol`` must not rise (by more than
    :data:`_SLACK_A`). Rows a connector does not load are not its concern.

    Exactly the sequential rule, one connector at a time, over the rows that can bind at all.
    On linear rows only: :func:`admit`. Returns a boolean mask over the k connectors.
    """
    if rows.linear_only:
        return admit(rows.M, need_a, rows.cap, order, tol)
    return _admit_rows(rows, np.asarray(need_a, dtype=np.float64), np.asarray(order, dtype=np.int64), tol)


@_repeat_last
def _admit_rows(rows: RowSystem, need_a: np.ndarray, order: np.ndarray, tol: float) -> np.ndarray:
    admitted = np.zeros(rows.k, dtype=bool)
    if not order.size:
        return admitted
    need = need_a.take(order)
    L = _lines(rows, None, order, need, tol)
    out = _admit_steps(L, need, tol)
    admitted[order[np.array(out, dtype=bool)]] = True
    return admitted


def _admit_steps(L: _Lines, need: np.ndarray, tol: float) -> list:
    """The sequential admission over prepared rows: whether each candidate, in turn, fits.

    Each tracked phasor row's magnitude is kept up to date, and a candidate's new magnitudes
    are computed once per row it loads: its pair rows then take differences of those."""
    v, lim, lp, lr, la = L.v, L.lim, L.lp, L.lr, L.la
    y, check, pp, pr = L.y, L.check, L.pp, L.pr
    qp, qa, qb, qt1, qt2 = L.qp, L.qa, L.qb, L.qt1, L.qt2
    dz = (np.asarray(L.pz, dtype=np.complex128) * np.repeat(need, np.diff(L.pp))).tolist()
    zt = [z + tol for z in L.zlim]
    mag = [abs(t) for t in y]
    out = [False] * len(need)
    for c, nd in enumerate(need.tolist()):
        ok = True
        for q in range(lp[c], lp[c + 1]):
            a = la[q]
            if a > 0.0:
                r = lr[q]
                if v[r] + a * nd > lim[r] + tol:
                    ok = False
                    break
        if not ok:
            continue
        a, b = pp[c], pp[c + 1]
        if a < b:
            for q in range(a, b):  # the magnitudes after (restored from y if refused)
                r = pr[q]
                after = abs(y[r] + dz[q])
                if check[r] and after > zt[r] and (mag[r] <= zt[r] or after > mag[r] + _SLACK_A):
                    ok = False
                    break
                mag[r] = after
            if ok:
                for q in range(qp[c], qp[c + 1]):
                    d = mag[qa[q]] - mag[qb[q]]
                    if d > qt1[q] or -d > qt2[q]:
                        before = abs(y[qa[q]]) - abs(y[qb[q]])
                        if d > qt1[q] and (before <= qt1[q] or d > before + _SLACK_A):
                            ok = False
                            break
                        if -d > qt2[q] and (-before <= qt2[q] or before - d > _SLACK_A):
                            ok = False
                            break
            if not ok:
                for q in range(a, b):
                    r = pr[q]
                    mag[r] = abs(y[r])
                continue
            for q in range(a, b):
                y[pr[q]] += dz[q]
        out[c] = True
        for q in range(lp[c], lp[c + 1]):
            v[lr[q]] += la[q] * nd
    return out


# ---------------------------------------------------------------------- greedy fill
def greedy_fill_rows(
    rows: RowSystem, start_a: np.ndarray, extra_a: np.ndarray, order: np.ndarray, tol: float = CURRENT_TOL_A
) -> np.ndarray:
    """Priority fill over general rows: from a feasible ``start_a``, each connector in
    ``order`` in turn gets the largest ``t`` in [0, extra_a[c]] such that every row it loads
    stays within ``max(limit, its value before the connector)`` all along [0, t] of its own
    axis, given those before it (EDF, LLF). Connectors with ``extra_a <= tol`` get nothing.

    Exact: a linear row's room divided by the coefficient, a phasor row's larger quadratic
    root, a pair row's first crossing (certified to :data:`_SLACK_A`). On linear rows only:
    :func:`greedy_fill`.
    """
    if rows.linear_only:
        return greedy_fill(rows.M, start_a, extra_a, rows.cap, order, tol)
    return _greedy_rows(
        rows,
        np.asarray(start_a, dtype=np.float64),
        np.asarray(extra_a, dtype=np.float64),
        np.asarray(order, dtype=np.int64),
        tol,
    )


@_repeat_last
def _greedy_rows(
    rows: RowSystem, start_a: np.ndarray, extra_a: np.ndarray, order: np.ndarray, tol: float
) -> np.ndarray:
    x = np.array(start_a, dtype=np.float64)
    cand = order[extra_a.take(order) > tol]
    if not cand.size:
        return x
    give = extra_a.take(cand)
    L = _lines(rows, x, cand, give, None)
    x[cand] += _greedy_steps(L, give.tolist())
    return _guard(rows, start_a, x, tol)


def _greedy_steps(L: _Lines, give: list) -> list:
    """The sequential greedy over prepared rows: each candidate's increment, in turn."""
    v, lim, mono, lp, lr, la, members = L.v, L.lim, L.mono, L.lp, L.lr, L.la, L.members
    y, zlim, check, pp, pr, pz = L.y, L.zlim, L.check, L.pp, L.pr, L.pz
    pi, pj, ulim, qp, qu, qzi, qzj = L.pi, L.pj, L.ulim, L.qp, L.qu, L.qzi, L.qzj
    zmembers = L.zmembers
    mag = [abs(yr) for yr in y]
    qai = L.qai
    slack = _SLACK_A
    n = len(give)
    blocked = [False] * n
    for r, ms in enumerate(zmembers):  # a growing row full from the start blocks its members
        if ms is not None and zlim[r] - mag[r] <= slack:
            for m in ms:
                blocked[m] = True
    out = [0.0] * n
    for c in range(n):
        if blocked[c]:
            continue
        g = give[c]
        for q in range(lp[c], lp[c + 1]):
            a = la[q]
            if a > 0.0:
                r = lr[q]
                room = lim[r] - v[r]
                if a * g > room:
                    g = room / a if room > 0.0 else 0.0
                    if g <= 0.0:
                        break
        if g > 0.0 and pp[c] < pp[c + 1]:
            for q in range(pp[c], pp[c + 1]):
                r = pr[q]
                if check[r]:
                    yr, z = y[r], pz[q]
                    if abs(yr + g * z) > zlim[r]:
                        bound = max(zlim[r], abs(yr))
                        g = _quad_exit(yr, z, bound, g)
                        while g > 0.0 and abs(yr + g * z) > bound * (1.0 + 1e-12) + _SLACK_A:
                            g *= 1.0 - 1e-9  # guard the root against rounding
                        if g <= 0.0:
                            break
            if g > 0.0:
                for q in range(qp[c], qp[c + 1]):
                    u = qu[q]
                    i, j = pi[u], pj[u]
                    yi, yj, zj = y[i], y[j], qzj[q]
                    mj = mag[j]
                    f0 = mag[i] - mj
                    bound = ulim[u]
                    if f0 > bound:
                        bound = f0
                    # quick: |yi + t zi| <= |yi| + t |zi|, |yj + t zj| >= |yj| + t * (yj . zj) / |yj| (t |zj| at 0)
                    dj = (yj.real * zj.real + yj.imag * zj.imag) / mj if mj > 0.0 else abs(zj)
                    rise = qai[q] - dj
                    if rise <= 0.0 or f0 + g * rise <= bound + slack:
                        continue
                    if f0 >= bound - _SLACK_A and mag[i] > 0.0:  # at its bound: stopped if pushed
                        zi = qzi[q]
                        if (yi.real * zi.real + yi.imag * zi.imag) / mag[i] - dj > _PUSH_EPS:
                            g = 0.0
                            break
                    g = _pair_exit(yi, qzi[q], yj, zj, bound, g)
                    if g <= 0.0:
                        break
        if g <= 0.0:
            continue
        out[c] = g
        for q in range(lp[c], lp[c + 1]):
            r = lr[q]
            v[r] += la[q] * g
            if mono[r] and lim[r] - v[r] <= _SLACK_A:
                for m in members[r]:  # a full linear row blocks its later members for good
                    blocked[m] = True
        for q in range(pp[c], pp[c + 1]):
            r = pr[q]
            yr = y[r] + pz[q] * g
            y[r] = yr
            mr = abs(yr)
            mag[r] = mr
            if zlim[r] - mr <= slack and zmembers[r] is not None:
                for m in zmembers[r]:  # likewise a full growing phasor row
                    blocked[m] = True
    return out


# ---------------------------------------------------------------------- weighted fill
def weighted_fill_rows(
    rows: RowSystem,
    lo_a: np.ndarray,
    hi_a: np.ndarray,
    weights: np.ndarray,
    tol: float = CURRENT_TOL_A,
) -> np.ndarray:
    """Weighted max-min fair share (progressive filling) over general rows: every free
    connector sits at ``clip(L * weight, lo, hi)``, the common level L rises until a row would
    pass ``max(limit, its value at lo)``; there the connectors that push a
    binding row (its value's derivative in their current is positive, or zero with the row
    curving up: a phasor row, a pair row) freeze, as do those at ``hi``; the others rise on.

    Each rise is solved exactly on the piecewise-linear path of the level: a linear row is
    piecewise linear, a phasor row's square piecewise quadratic (per segment, vectorised over
    rows), a pair row is searched per segment where a certified bound cannot clear it.
    Requires ``lo_a`` feasible. On linear rows only: :func:`weighted_fill`.
    """
    if rows.linear_only:
        return weighted_fill(rows.M, lo_a, hi_a, rows.cap, weights, tol)
    return _weighted_rows(
        rows,
        np.asarray(lo_a, dtype=np.float64),
        np.asarray(hi_a, dtype=np.float64),
        np.asarray(weights, dtype=np.float64),
        tol,
    )


@dataclass
class _Rise:
    """Where one rise of the level stops: the level, and the binding rows of each kind
    (indices into the linear rows, the phasor rows and the pair rows)."""

    level: float
    lin: np.ndarray
    ph: np.ndarray
    pair: np.ndarray


def _pair_bound_v(yj, zj, ell, fa, fb, ja, jb, lip):
    """:func:`_pair_bound` over arrays (start ``yj`` of each segment, slope ``zj``, length
    ``ell``, end values ``fa``, ``fb`` of the difference and ``ja``, ``jb`` of ``|yj|``)."""
    zj2 = zj.real * zj.real + zj.imag * zj.imag
    moving = zj2 > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = np.where(moving, -(yj.real * zj.real + yj.imag * zj.imag) / zj2, 0.0)
        d = np.abs(yj + np.clip(u, 0.0, ell) * zj)
        kappa = zj2 / d
        curved = (d > 0) & (kappa > 0) & np.isfinite(kappa)
        kappa = np.where(curved, kappa, 1.0)
        slope = np.where(ell > 0, (fb - fa) / ell, 0.0)
        s = np.clip(ell / 2.0 + slope / kappa, 0.0, ell)
        sag = np.where(curved, fa + slope * s + kappa * s * (ell - s) / 2.0, np.inf)
        # tangents at both ends and the least magnitude d bound |yj| from below
        y1 = yj + ell * zj
        nz = np.sqrt(zj2)
        da = np.where(ja > 0, (yj.real * zj.real + yj.imag * zj.imag) / ja, nz)
        db = np.where(jb > 0, (y1.real * zj.real + y1.imag * zj.imag) / jb, -nz)
        ia, ib = fa + ja, fb + jb
        pts = [
            np.zeros_like(sag),
            ell + np.zeros_like(sag),
            np.where(db > da, (jb - ja - db * ell) / (da - db), -1.0),
            np.where(da < 0, (d - ja) / da, -1.0),
            np.where(db > 0, ell + (d - jb) / db, -1.0),
        ]
        top = np.full(sag.shape, -np.inf)
        for q in pts:
            ok = (q >= 0) & (q <= ell)
            val = (
                ia
                + (ib - ia) * np.where(ell > 0, q / ell, 0.0)
                - np.maximum(np.maximum(ja + da * q, jb + db * (q - ell)), d)
            )
            top = np.where(ok, np.maximum(top, val), top)
    out = np.minimum(np.minimum(sag, top), (fa + fb + lip * ell) / 2.0)
    return np.where(moving, out, np.maximum(fa, fb))


def _segment_slopes(C: np.ndarray, s0: np.ndarray, col: np.ndarray, ds: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(rows, segments): each row's slope on each segment of the level's path, from its slope
    ``s0`` on the first and the rate changes ``ds`` of columns ``col`` at the breakpoints,
    grouped where several connectors share a breakpoint (``starts``)."""
    out = np.empty((C.shape[0], starts.size + 1), dtype=C.dtype)
    out[:, 0] = s0
    if starts.size:
        jumps = np.add.reduceat(C[:, col] * ds, starts, axis=1)
        out[:, 1:] = s0[:, None] + np.add.accumulate(jumps, axis=1)
    return out[:, :-1] if starts.size else out


def _rise(rows, A, absZ, lim, free, x, w, lo, hi, level, tol):
    """One rise of the level from ``level`` (free connectors at ``clip(level * w, lo, hi)``
    in ``x``; ``absZ`` the magnitudes of ``rows.Z``): where the first row passes its bound,
    or None when none does."""
    wf, lof, hif = w[free], lo[free], hi[free]
    up = hif - x[free]
    Af = A[:, free]
    lv = A @ x
    lb = np.maximum(lim, lv)
    lin = np.flatnonzero(np.maximum(Af, 0.0) @ up > lb - lv)
    Z = rows.Z
    Zf = Z[:, free]
    y0 = Z @ x + rows.zb
    m0 = np.abs(y0)
    reach = absZ[:, free] @ up
    pb = np.maximum(rows.zlim, m0)
    chk = reach > pb - m0
    pairs = rows.pairs
    live = np.zeros(0, dtype=np.int64)
    if pairs.shape[0]:
        pi, pj = pairs[:, 0], pairs[:, 1]
        ub = np.maximum(rows.ulim, m0[pi] - m0[pj])
        top = (m0[pi] + reach[pi]) - np.maximum(m0[pj] - reach[pj], 0.0)
        live = np.flatnonzero(top > ub + _SLACK_A)
    tracked = chk.copy()
    tracked[pairs[live].ravel()] = True
    trk = np.flatnonzero(tracked)
    if not (lin.size or trk.size):
        return None

    # the path: breakpoints where a connector starts (lo / w) or stops (hi / w) rising
    lw, hw = lof / wf, hif / wf
    f = len(free)
    bp = np.concatenate([lw, hw])
    sel = np.flatnonzero(bp > level)
    if not sel.size:
        return None
    srt = sel[bp[sel].argsort(kind="stable")]
    bp = bp[srt]
    col = srt % f
    ds = np.where(srt < f, wf[col], -wf[col])
    first = np.flatnonzero(np.diff(bp) > 0) + 1  # a new breakpoint starts here
    B = np.concatenate([[level], bp[:1], bp[first]])  # segment s runs from B[s] to B[s + 1]
    starts = np.concatenate([[0], first])
    dB = np.diff(B)
    moving = (lw <= level) & (level < hw)
    crossing = []  # (level, kind, rows)

    if lin.size:
        AL = Af[lin]
        slope = _segment_slopes(AL, AL[:, moving] @ wf[moving], col, ds, starts)
        vals = lv[lin, None] + np.add.accumulate(slope * dB, axis=1)  # at the end of each segment
        over = vals > lb[lin, None]
        hit = np.flatnonzero(over.any(axis=1))
        if hit.size:
            s = over[hit].argmax(axis=1)
            start = np.where(s > 0, vals[hit, np.maximum(s - 1, 0)], lv[lin[hit]])
            lvl = B[s] + np.clip((lb[lin[hit]] - start) / slope[hit, s], 0.0, dB[s])
            crossing.append((lvl, 0, lin[hit]))

    if trk.size:
        ZT = Zf[trk]
        zsl = _segment_slopes(ZT, ZT[:, moving] @ wf[moving], col, ds, starts)
        ys = np.empty((trk.size, dB.size + 1), dtype=np.complex128)  # at every breakpoint
        ys[:, 0] = y0[trk]
        ys[:, 1:] = y0[trk, None] + np.add.accumulate(zsl * dB, axis=1)
        mag = np.abs(ys)
        cr = np.flatnonzero(chk[trk])
        if cr.size:
            over = mag[cr, 1:] > pb[trk[cr], None]
            hit = cr[over.any(axis=1)]
            if hit.size:
                s = (mag[hit, 1:] > pb[trk[hit], None]).argmax(axis=1)
                tau = _quad_exit_v(ys[hit, s], zsl[hit, s], pb[trk[hit]], dB[s])
                crossing.append((B[s] + tau, 1, trk[hit]))
        if live.size:
            best = min((float(c[0].min()) for c in crossing), default=np.inf)
            found = _pair_crossings(trk, pairs[live], ub[live], ys, zsl, mag, B, dB, best)
            if found[0].size:
                crossing.append((found[0], 2, live[found[1]]))

    if not crossing:
        return None
    level_new = min(float(c[0].min()) for c in crossing)
    tie = level_new + max(tol, 1e-12 * abs(level_new))  # rows binding together freeze together
    kinds: list[list[np.ndarray]] = [[], [], []]
    for lvl, kind, idx in crossing:
        kinds[kind].append(idx[lvl <= tie])
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return _Rise(level_new, cat(kinds[0]), cat(kinds[1]), cat(kinds[2]))


def _pair_crossings(trk, pairs, ub, ys, zsl, mag, B, dB, best):
    """The first crossing on the level's path of each pair row (``pairs`` into the phasor
    rows, tracked ones ``trk``; values ``ys`` and magnitudes ``mag`` at the breakpoints,
    slopes ``zsl`` on the segments) before ``best``: (levels, indices into ``pairs``)."""
    renum = np.full(int(trk.max()) + 1, -1)
    renum[trk] = np.arange(trk.size)
    ti, tj = renum[pairs[:, 0]], renum[pairs[:, 1]]
    f = mag[ti] - mag[tj]  # at every breakpoint
    fa, fb = f[:, :-1], f[:, 1:]
    # quick: f <= f(start) + t * (|s_i| - d|y_j|/dt at the start) on each segment
    yj, sj = ys[tj, :-1], zsl[tj]
    with np.errstate(divide="ignore", invalid="ignore"):
        dj = np.where(mag[tj, :-1] > 0, (yj.real * sj.real + yj.imag * sj.imag) / mag[tj, :-1], np.abs(sj))
    quick = fa + dB * np.maximum(np.abs(zsl[ti]) - dj, 0.0)
    hi = ub[:, None] + _SLACK_A
    flagged = (quick > hi) & (B[None, :-1] < best)
    if np.count_nonzero(flagged) > _VECTOR_BOUNDS:  # else each is certified on its own, below
        qs, s = np.nonzero(flagged)
        top = _pair_bound_v(
            yj[qs, s],
            sj[qs, s],
            dB[s],
            fa[qs, s],
            fb[qs, s],
            mag[tj[qs], s],
            mag[tj[qs], s + 1],
            np.abs(zsl[ti[qs], s]) + np.abs(sj[qs, s]),
        )
        ok = top <= hi[qs, 0]
        flagged[qs[ok], s[ok]] = False
    levels, which = [], []
    for q in np.flatnonzero(flagged.any(axis=1)).tolist():
        a, b = int(ti[q]), int(tj[q])
        for g in np.flatnonzero(flagged[q]).tolist():
            if B[g] >= best:
                break
            t = _pair_exit(
                complex(ys[a, g]), complex(zsl[a, g]), complex(ys[b, g]), complex(zsl[b, g]), float(ub[q]), float(dB[g])
            )
            if t < dB[g]:
                levels.append(B[g] + t)
                which.append(q)
                best = min(best, B[g] + t)
                break
    return np.array(levels), np.array(which, dtype=np.int64)


def _pushers(rows, A, free, x, rise: _Rise, fallback: bool = True) -> np.ndarray:
    """Mask over ``free``: the connectors that push a binding row at ``x`` (the derivative of
    its value in their current positive, or zero with the row curving up), and, when none
    does (rounding) and ``fallback``, every free connector that loads a binding row."""
    push = np.zeros(len(free), dtype=bool)
    loads = np.zeros(len(free), dtype=bool)
    if rise.lin.size:
        a = A[np.ix_(rise.lin, free)]
        push |= (a > 0).any(axis=0)
        loads |= (a != 0).any(axis=0)
    if rise.ph.size or rise.pair.size:
        rows_ph = np.unique(np.concatenate([rise.ph, rows.pairs[rise.pair].ravel()]).astype(np.int64))
        z = rows.Z[np.ix_(rows_ph, free)]
        y = rows.Z[rows_ph] @ x + rows.zb[rows_ph]
        m = np.abs(y)
        away = m > _SLACK_A  # at the origin a magnitude rises in every direction
        safe = np.where(away, m, 1.0)
        unit = np.where(away, y / safe, 0.0)
        az = np.abs(z)
        d = np.where(away[:, None], (np.conj(unit)[:, None] * z).real, az)  # d|y| / dx
        curv = np.where(away[:, None], (az * az - d * d) / safe[:, None], 0.0)
        if rise.ph.size:
            q = np.searchsorted(rows_ph, rise.ph)
            azq, dq = az[q], d[q]
            push |= ((azq > 0) & (dq > -_PUSH_EPS * azq)).any(axis=0)
            loads |= (azq > 0).any(axis=0)
        if rise.pair.size:
            i = np.searchsorted(rows_ph, rows.pairs[rise.pair, 0])
            j = np.searchsorted(rows_ph, rows.pairs[rise.pair, 1])
            dd, scale = d[i] - d[j], az[i] + az[j]
            cc = curv[i] - curv[j]
            up = (dd > _PUSH_EPS * scale) | ((dd >= -_PUSH_EPS * scale) & (cc > _PUSH_EPS * 1e-3))
            push |= ((scale > 0) & up).any(axis=0)
            loads |= (scale > 0).any(axis=0)
    return push if push.any() or not fallback else loads


#: The max-min fill is repeated from its own answer until nobody gains more than the
#: tolerance, at most this many times: with rows that are not monotone, a connector frozen by
#: a row may find room again once others rose (each round shares that room max-min again).
_FILL_ROUNDS = 50


@_repeat_last
def _weighted_rows(rows: RowSystem, lo: np.ndarray, hi: np.ndarray, weights: np.ndarray, tol: float) -> np.ndarray:
    rows = rows.at_least(lo)  # a row over at the start: its bound for every round, not a ratchet
    w = np.maximum(weights, 1e-9)
    A = np.vstack([rows.M, rows.S])
    lim = np.concatenate([rows.cap, rows.scap])
    x = np.array(lo, dtype=np.float64)
    absZ = np.abs(rows.Z)  # once: each rise takes its free columns
    for k in range(_FILL_ROUNDS):
        nxt = _progressive(rows, A, absZ, lim, x, hi, w, tol, k > 0)
        gained = float(np.max(nxt - x, initial=0.0))
        x = nxt
        if gained <= tol:
            break
    return _guard(rows, lo, x, tol)


def _progressive(rows, A, absZ, lim, lo, hi, w, tol, prefreeze: bool) -> np.ndarray:
    """One progressive filling from ``lo``. With ``prefreeze``, the connectors pushing a row
    already at its bound at ``lo`` are frozen from the start (a later round's shortcut)."""
    x = np.array(lo, dtype=np.float64)
    free = np.flatnonzero(hi > lo + tol)
    if free.size and prefreeze:
        ex = rows.excess(x)
        sl = rows.kind_slices()
        at = ex > -tol
        lin_at = np.flatnonzero(np.concatenate([at[sl["linear"]], at[sl["signed"]]]))
        rise = _Rise(0.0, lin_at, np.flatnonzero(at[sl["phasor"]]), np.flatnonzero(at[sl["pair"]]))
        if rise.lin.size or rise.ph.size or rise.pair.size:
            free = free[~_pushers(rows, A, free, x, rise, fallback=False)]
    if not free.size:
        return x
    level = float(np.min(lo[free] / w[free]))
    while free.size:
        rise_or_none = _rise(rows, A, absZ, lim, free, x, w, lo, hi, level, tol)
        if rise_or_none is None:
            x[free] = hi[free]
            break
        level = rise_or_none.level
        val = np.minimum(np.maximum(level * w[free], lo[free]), hi[free])
        x[free] = val
        frozen = (val >= hi[free] - tol) | _pushers(rows, A, free, x, rise_or_none)
        if not frozen.any():  # numerical corner: nothing binds, settle here
            break
        free = free[~frozen]
    return x


def _guard(rows: RowSystem, start: np.ndarray, x: np.ndarray, tol: float) -> np.ndarray:
    """``x`` if no row is over by more than at ``start`` (or ``tol``); else the furthest point
    towards it from ``start`` that is (bisection): never a worse answer than the start."""
    allowed = np.maximum(rows.excess(start), 0.0) + tol
    if np.all(rows.excess(x) <= allowed):
        return x
    lo_t, hi_t = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo_t + hi_t)
        if np.all(rows.excess(start + mid * (x - start)) <= allowed):
            lo_t = mid
        else:
            hi_t = mid
    return start + lo_t * (x - start)
