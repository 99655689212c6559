"""The constraint rows of one allocation, over its k connectors, as one value.

A :class:`RowSystem` holds every row the allocation kernels must honour, in four kinds; ``x``
is the vector of the k connectors' currents [A] (one per connector, on each phase it draws):

- **linear** rows ``M @ x <= cap``, ``M >= 0`` (a grid phase, a sub-feeder, a charger group
  at a phase-to-neutral site): a row's load only grows with any connector's current;
- **signed** rows ``S @ x <= scap``, coefficients of both signs (an unbalance limit at a
  phase-to-neutral site: ``(M_p - M_q) @ x <= U - (b_p - b_q)``);
- **phasor** rows ``|Z @ x + zb| <= zlim``, complex ``Z`` and base phasor ``zb`` (a phase
  carrying line-to-line branches, a line of a delta primary): convex, but a row's magnitude
  may fall before it rises as a connector's current grows;
- **pair** rows ``|y_i| - |y_j| <= ulim`` for phasor rows i, j (``y = Z @ x + zb``): an
  unbalance limit at a phasor site (a difference of two norms, not convex).

The limits are what is left for the connectors of this allocation: whatever else flows
through a row (base load, connectors not in the allocation) is already in ``cap``, ``scap``
and ``zb``. Row values and excesses are listed kind by kind in that order (:data:`ROW_KINDS`).
What belongs here: the rows as data and their evaluation; the kernels that allocate under
them are in :mod:`evflex.control.allocation.kernels`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from evflex.units import CURRENT_TOL_A

#: The row kinds, in the order :meth:`RowSystem.excess` lists them.
ROW_KINDS = ("linear", "signed", "phasor", "pair")


def _real(a, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape) if a is None else np.asarray(a, dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _empty_kinds(k: int) -> tuple[np.ndarray, ...]:
    """The signed, phasor and pair rows of a linear system over k connectors: none (shared,
    read-only)."""
    arrays = (
        np.zeros((0, k)),
        np.zeros(0),
        np.zeros((0, k), dtype=np.complex128),
        np.zeros(0, dtype=np.complex128),
        np.zeros(0),
        np.zeros((0, 2), dtype=np.int64),
        np.zeros(0),
    )
    for a in arrays:
        a.flags.writeable = False
    return arrays


#: Phasor coefficients (and a row's value) all within this angle of one direction make a
#: row whose magnitude only grows as currents rise: any two are less than 90 degrees apart.
CONE_DEG = 40.0
CONE_COS = math.cos(math.radians(CONE_DEG))


def phasor_cones(row: np.ndarray, coef: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``m`` phasor rows with nonzero coefficients ``coef`` at rows ``row``: per row, a
    unit direction ``d`` (the mean of its coefficients' directions) and whether every
    coefficient lies within :data:`CONE_DEG` of it (no coefficient: False)."""
    u = coef / np.abs(coef)
    d = np.bincount(row, u.real, m) + 1j * np.bincount(row, u.imag, m)
    ad = np.abs(d)
    d = np.where(ad > 0.0, d / np.where(ad > 0.0, ad, 1.0), 0.0)
    wide = np.bincount(row, (u * d[row].conj()).real < CONE_COS, m) > 0
    return d, ~wide & (ad > 0.0)


def _segments(start: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments ``start[i]:start[i] + lens[i]`` of a flat array, one after the other: their
    pointer array and the positions of their entries."""
    ptr = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    return ptr, np.arange(int(ptr[-1]), dtype=np.int64) + np.repeat(start - ptr[:-1], lens)


def column_entries(ptr: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For entries stored by column (column c at ``ptr[c]:ptr[c + 1]``), those of ``cols`` in
    turn: their pointer array and the positions of their entries."""
    return _segments(ptr[cols], ptr[cols + 1] - ptr[cols])


def columns_replaced(
    zcols: tuple[np.ndarray, np.ndarray, np.ndarray], cols: np.ndarray, Zc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:attr:`RowSystem.zcols` with the columns ``cols`` (distinct) replaced by those of ``Zc``
    ((m, len(cols)) complex): the nonzeros of the others are moved, not searched again."""
    ptr, r, z = zcols
    j, nr = np.nonzero((Zc != 0).T.copy())
    new_lens = np.bincount(j, minlength=len(cols))
    lens, start = np.diff(ptr), ptr[:-1].copy()
    lens[cols] = new_lens
    start[cols] = r.size + np.cumsum(new_lens) - new_lens  # the new entries follow the old
    ptr2, at = _segments(start, lens)
    return ptr2, np.concatenate([r, nr])[at], np.concatenate([z, Zc[nr, j]])[at]


def _index(cols: np.ndarray) -> np.ndarray:
    """Columns as int64 indices (from indices or a boolean mask)."""
    cols = np.asarray(cols)
    return np.flatnonzero(cols) if cols.dtype == bool else cols.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class RowSystem:
    """Every constraint row of one allocation over its k connectors (see the module docstring).

    Build with :meth:`linear` (linear rows only) or :meth:`build`. Arrays are not copied;
    treat them as read-only.
    """

    M: np.ndarray  # (ml, k) float >= 0
    cap: np.ndarray  # (ml,)
    S: np.ndarray  # (ms, k) float, any sign
    scap: np.ndarray  # (ms,)
    Z: np.ndarray  # (mp, k) complex
    zb: np.ndarray  # (mp,) complex
    zlim: np.ndarray  # (mp,) >= 0
    pairs: np.ndarray  # (mu, 2) int: indices into the phasor rows
    ulim: np.ndarray  # (mu,) >= 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def linear(cls, M: np.ndarray, cap: np.ndarray) -> RowSystem:
        """Linear rows ``M @ x <= cap`` only (the other kinds empty, shapes (0, k))."""
        M = np.asarray(M, dtype=np.float64)
        return cls(M, np.asarray(cap, dtype=np.float64), *_empty_kinds(M.shape[1]))

    @classmethod
    def build(
        cls,
        M: np.ndarray,
        cap: np.ndarray,
        S: np.ndarray | None = None,
        scap: np.ndarray | None = None,
        Z: np.ndarray | None = None,
        zb: np.ndarray | None = None,
        zlim: np.ndarray | None = None,
        pairs: np.ndarray | None = None,
        ulim: np.ndarray | None = None,
    ) -> RowSystem:
        """Rows of every kind; a kind left out is empty (``zb`` defaults to 0). Shapes are
        checked (``ValueError`` naming every mismatch); values are not: see :meth:`problems`."""
        M = np.asarray(M, dtype=np.float64)
        k = M.shape[1]
        S = _real(S, (0, k))
        Z = np.zeros((0, k), dtype=np.complex128) if Z is None else np.asarray(Z, dtype=np.complex128)
        mp = Z.shape[0]
        pairs = np.zeros((0, 2), dtype=np.int64) if pairs is None else np.asarray(pairs, dtype=np.int64)
        out = cls(
            M,
            _real(cap, (0,)),
            S,
            _real(scap, (0,)),
            Z,
            np.zeros(mp, dtype=np.complex128) if zb is None else np.asarray(zb, dtype=np.complex128),
            _real(zlim, (0,)),
            pairs.reshape(-1, 2) if pairs.size == 0 else pairs,
            _real(ulim, (0,)),
        )
        bad = out._shape_problems()
        if bad:
            raise ValueError("; ".join(bad))
        return out

    def _shape_problems(self) -> list[str]:
        k = self.k
        want = {
            "M": (self.M, (None, k)),
            "cap": (self.cap, (self.M.shape[0],)),
            "S": (self.S, (None, k)),
            "scap": (self.scap, (self.S.shape[0],)),
            "Z": (self.Z, (None, k)),
            "zb": (self.zb, (self.Z.shape[0],)),
            "zlim": (self.zlim, (self.Z.shape[0],)),
            "pairs": (self.pairs, (None, 2)),
            "ulim": (self.ulim, (self.pairs.shape[0],)),
        }
        out = []
        for name, (a, shape) in want.items():
            if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
                expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
                out.append(f"{name}: shape {a.shape}, expected {expected}")
        return out

    def problems(self) -> list[str]:
        """Every problem with the rows' shapes and values at once (empty: a valid system):
        ``M >= 0``, ``zlim >= 0``, ``ulim >= 0``, pair indices into the phasor rows, all finite."""
        out = self._shape_problems()
        if out:
            return out
        for name in ("M", "cap", "S", "scap", "Z", "zb", "zlim", "ulim"):
            if not np.all(np.isfinite(getattr(self, name))):
                out.append(f"{name}: not finite")
        for name in ("M", "zlim", "ulim"):
            if np.any(getattr(self, name) < 0):
                out.append(f"{name}: negative")
        if self.pairs.size and (self.pairs.min() < 0 or self.pairs.max() >= self.Z.shape[0]):
            out.append(f"pairs: index outside the {self.Z.shape[0]} phasor rows")
        return out

    # ------------------------------------------------------------------ shape
    @property
    def k(self) -> int:
        """Number of connectors (columns)."""
        return self.M.shape[1]

    @property
    def linear_only(self) -> bool:
        """Only linear rows: the fast kernels over ``(M, cap)`` apply unchanged."""
        return not (self.S.shape[0] or self.Z.shape[0])

    @property
    def n_rows(self) -> int:
        """Rows of all kinds (the length of :meth:`excess`)."""
        return self.M.shape[0] + self.S.shape[0] + self.Z.shape[0] + self.pairs.shape[0]

    def kind_slices(self) -> dict[str, slice]:
        """Where each kind's rows sit in :meth:`excess`, by :data:`ROW_KINDS` name."""
        sizes = (self.M.shape[0], self.S.shape[0], self.Z.shape[0], self.pairs.shape[0])
        ends = np.cumsum(sizes).tolist()
        return {kind: slice(e - s, e) for kind, s, e in zip(ROW_KINDS, sizes, ends)}

    @functools.cached_property
    def zcols(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Z`` by column, nonzeros only: ``(ptr, row, coef)``, column c's entries at
        ``ptr[c]:ptr[c + 1]``, rows ascending (computed once; :meth:`take` passes it on)."""
        cj, r = np.nonzero((self.Z != 0).T.copy())  # a contiguous mask: twice as fast
        ptr = np.zeros(self.k + 1, dtype=np.int64)
        np.cumsum(np.bincount(cj, minlength=self.k), out=ptr[1:])
        return ptr, r, self.Z[r, cj]

    @functools.cached_property
    def zcone(self) -> tuple[np.ndarray, np.ndarray]:
        """Per phasor row, :func:`phasor_cones` of its coefficients (holds for any subset of
        the columns too: :meth:`take` passes it on)."""
        _, r, z = self.zcols
        return phasor_cones(r, z, self.Z.shape[0])

    def known(self, key: tuple | None = None, zcols: tuple | None = None, zcone: tuple | None = None) -> RowSystem:
        """This system, given what its maker already knows of it: ``key`` as its :meth:`key`
        (a small summary that the maker guarantees unique to these arrays, e.g. the inputs it
        was built from), :attr:`zcols` and :attr:`zcone` (not computed again)."""
        for name, value in (("_key", key), ("zcols", zcols), ("zcone", zcone)):
            if value is not None:
                self.__dict__[name] = value
        return self

    # ------------------------------------------------------------------ derived systems
    def take(self, cols: np.ndarray) -> RowSystem:
        """The rows over a subset of the columns (int index or bool mask); the connectors left
        out are taken to draw nothing. Limits are unchanged."""
        if self.linear_only:
            out = RowSystem.linear(self.M[:, cols], self.cap)
        else:
            out = RowSystem(
                self.M[:, cols],
                self.cap,
                self.S[:, cols],
                self.scap,
                self.Z[:, cols],
                self.zb,
                self.zlim,
                self.pairs,
                self.ulim,
            )
        given = self.__dict__.get("_key")
        if given is None and "zcols" not in self.__dict__:
            return out
        idx = _index(cols)
        if "zcols" in self.__dict__:  # the nonzeros of the columns taken, without a search
            ptr, r, z = self.zcols
            ptr2, at = column_entries(ptr, idx)
            # a subset's coefficients lie in the same cones
            out.known(zcols=(ptr2, r[at], z[at]), zcone=self.zcone)
        return out.known(key=None if given is None else ("take", given, idx.tobytes()))

    def splice(self, mask: np.ndarray, other: RowSystem) -> RowSystem:
        """The columns where ``mask`` (bool, (k,)) is set replaced by ``other``'s (e.g. EVs tried
        on fewer phases). ``other`` must have the same rows; the limits are this system's."""
        if other.M.shape != self.M.shape or other.S.shape != self.S.shape or other.Z.shape != self.Z.shape:
            raise ValueError("splice: the two row systems differ in shape")
        m = np.asarray(mask, dtype=bool)
        return RowSystem(
            np.where(m, other.M, self.M),
            self.cap,
            np.where(m, other.S, self.S),
            self.scap,
            np.where(m, other.Z, self.Z),
            self.zb,
            self.zlim,
            self.pairs,
            self.ulim,
        )

    def shifted(self, x0: np.ndarray) -> RowSystem:
        """The rows for currents on top of ``x0``: row values of ``x`` here are those of
        ``x0 + x`` in this system (what is left once ``x0`` is drawn)."""
        x0 = np.asarray(x0, dtype=np.float64)
        return RowSystem(
            self.M,
            self.cap - self.M @ x0,
            self.S,
            self.scap - self.S @ x0,
            self.Z,
            self.zb + self.Z @ x0,
            self.zlim,
            self.pairs,
            self.ulim,
        )

    def at_least(self, x: np.ndarray) -> RowSystem:
        """The same rows with each limit raised to its value at currents ``x`` where that is
        higher: a row already over may not get worse than at ``x``, and keeps any room that
        others make below that."""
        v = self.values(x)
        sl = self.kind_slices()
        return RowSystem(
            self.M,
            np.maximum(self.cap, v[sl["linear"]]),
            self.S,
            np.maximum(self.scap, v[sl["signed"]]),
            self.Z,
            self.zb,
            np.maximum(self.zlim, v[sl["phasor"]]),
            self.pairs,
            np.maximum(self.ulim, v[sl["pair"]]),
        )

    def unbalance_only(self) -> RowSystem:
        """Only the rows of an unbalance limit: the signed rows, and the pair rows with the
        phasor rows they compare (no longer limited themselves)."""
        used, inv = np.unique(self.pairs, return_inverse=True)
        k = self.k
        return RowSystem(
            np.zeros((0, k)),
            np.zeros(0),
            self.S,
            self.scap,
            self.Z[used],
            self.zb[used],
            np.full(used.size, np.inf),
            inv.reshape(self.pairs.shape),
            self.ulim,
        )

    # ------------------------------------------------------------------ evaluation
    def phasors(self, x: np.ndarray) -> np.ndarray:
        """The phasor rows' currents ``Z @ x + zb`` for currents ``x`` ((k,) or (N, k))."""
        return np.asarray(x, dtype=np.float64) @ self.Z.T + self.zb

    def values(self, x: np.ndarray) -> np.ndarray:
        """Every row's value for currents ``x`` ((k,) or (N, k)), kind by kind: linear and
        signed loads, phasor magnitudes, magnitude differences of the pairs [A]."""
        x = np.asarray(x, dtype=np.float64)
        mag = np.abs(self.phasors(x))
        diff = mag[..., self.pairs[:, 0]] - mag[..., self.pairs[:, 1]]
        return np.concatenate([x @ self.M.T, x @ self.S.T, mag, diff], axis=-1)

    def limits(self) -> np.ndarray:
        """Every row's limit, in the order of :meth:`values` [A]."""
        return np.concatenate([self.cap, self.scap, self.zlim, self.ulim])

    def excess(self, x: np.ndarray) -> np.ndarray:
        """Every row's value less its limit for currents ``x`` ((k,) or (N, k)), kind by kind
        in the order of :data:`ROW_KINDS` (linear, signed, phasor, pair; see
        :meth:`kind_slices`): positive where a row is over [A]."""
        return self.values(x) - self.limits()

    def excess_lowered(self, x: np.ndarray, cols: np.ndarray, by_a: np.ndarray) -> np.ndarray:
        """:meth:`excess` at currents ``x`` (k,) with one connector lowered, for each trial j
        connector ``cols[j]`` by ``by_a[j]``: one row of the (len(cols), n_rows) result per
        trial. Costs a row evaluation per trial column, not a whole system per trial."""
        x = np.asarray(x, dtype=np.float64)
        d = np.asarray(by_a, dtype=np.float64)[:, None]
        parts = []
        if self.M.shape[0]:
            parts.append((self.M @ x - self.cap)[None, :] - d * self.M[:, cols].T)
        if self.S.shape[0]:
            parts.append((self.S @ x - self.scap)[None, :] - d * self.S[:, cols].T)
        if self.Z.shape[0]:
            mag = np.abs(self.phasors(x)[None, :] - d * self.Z[:, cols].T)
            parts.append(mag - self.zlim)
            if self.pairs.shape[0]:
                parts.append(mag[:, self.pairs[:, 0]] - mag[:, self.pairs[:, 1]] - self.ulim)
        if not parts:
            return np.zeros((len(d), 0))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def worst_slopes(self, x: np.ndarray, cols: np.ndarray, excess: np.ndarray | None = None) -> np.ndarray:
        """How fast the row with the largest excess at currents ``x`` (k,) (``excess``: the
        :meth:`excess` there, if known) grows with each of the connectors ``cols``' current,
        there [A per A]: where lowering one helps most."""
        r = int(np.argmax(self.excess(x) if excess is None else excess))
        sl = self.kind_slices()
        if r < sl["linear"].stop:
            return self.M[r, cols]
        if r < sl["signed"].stop:
            return self.S[r - sl["signed"].start, cols]
        y = self.phasors(x)
        u = y / np.where(np.abs(y) > 0, np.abs(y), 1.0)  # d|y| = Re(conj(u) dy)
        if r < sl["phasor"].stop:
            i = r - sl["phasor"].start
            return (np.conj(u[i]) * self.Z[i, cols]).real
        i, j = self.pairs[r - sl["pair"].start]
        return (np.conj(u[i]) * self.Z[i, cols]).real - (np.conj(u[j]) * self.Z[j, cols]).real

    def feasible(self, x: np.ndarray, tol: float = CURRENT_TOL_A) -> bool:
        """Every row within its limit (up to ``tol``) for currents ``x`` ((k,) or (N, k))."""
        if self.linear_only:
            if isinstance(x, np.ndarray) and x.ndim == 1:
                return not np.count_nonzero(self.M @ x > self.cap + tol)
            return bool(np.all(np.asarray(x, dtype=np.float64) @ self.M.T <= self.cap + tol))
        return bool(np.all(self.excess(x) <= tol))

    def key(self) -> tuple:
        """A hashable summary of the whole system (for remembering a kernel's last call): the
        one its maker gave (:meth:`known`; :meth:`take` extends it), else every array."""
        given = self.__dict__.get("_key")
        if given is not None:
            return given
        return tuple(
            (a.shape, a.dtype.str, a.tobytes())
            for a in (self.M, self.cap, self.S, self.scap, self.Z, self.zb, self.zlim, self.pairs, self.ulim)
        )
