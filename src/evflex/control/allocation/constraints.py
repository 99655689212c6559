"""The site's constraint rows as the allocation kernels take them, for one control step.

What belongs here: turning the topology's rows, the phases each EV draws, the base load and
the limits of a snapshot into a :class:`~evflex.control.allocation.rows.RowSystem` over all
connectors: linear rows with their room (limit less base load and margin), signed unbalance
rows at phase-to-neutral sites, phasor rows with their base-load phasor, and pair rows for an
unbalance limit at a phasor site. A row that is already over its limit without the EVs (a
base load above the limit) may not be made worse: its limit is raised to what it carries
without them, so EVs can use only what lowers it.

An EV whose phases are not known yet is taken to draw on all its charger's phases: the worst
case for every limit row, but not for an unbalance, which a two-phase EV on a three-phase
charger raises. Its unbalance coefficients are the worst over the phase counts it may draw
on, so the unbalance holds whatever the EV turns out to be.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from evflex.control.allocation.rows import RowSystem, columns_replaced, phasor_cones
from evflex.model.topology import Topology
from evflex.units import N_PHASES

#: Ordered pairs of connection phases an unbalance limit compares.
PHASE_PAIRS = tuple(itertools.permutations(range(N_PHASES), 2))


#: One number per SiteRows: a system's key names its maker and the inputs it was built from.
_TOKENS = itertools.count()


class SiteRows:
    """Builds (and caches) the row system of a topology for a step's drawn phases, base load
    and limits."""

    def __init__(self, topology: Topology, margin_a: float = 0.0):
        t = topology
        self.topology = t
        self.margin_a = float(margin_a)
        self.lin = np.flatnonzero(t.row_linear)
        self.ph = np.flatnonzero(~t.row_linear)
        self.base_lin = t.base_matrix()[self.lin]
        self.base_ph = t.base_coefficients()[self.ph]
        self.margin_lin = self.margin_a * t.row_base[self.lin]
        self.margin_ph = self.margin_a * t.row_base[self.ph]
        conn = t.connection_rows
        self.unbalance = t.max_unbalance_a
        self.signed = self.unbalance is not None and bool(t.row_linear[conn].all())
        pos = {int(r): i for i, r in enumerate(self.lin)} if self.signed else {int(r): i for i, r in enumerate(self.ph)}
        self.conn_pos = np.array([pos.get(int(r), -1) for r in conn])
        self.pairs = np.array([(self.conn_pos[p], self.conn_pos[q]) for p, q in PHASE_PAIRS], dtype=np.int64)
        self._coef_key: bytes | None = None
        self._coef: tuple[np.ndarray, np.ndarray] | None = None
        self._coef_drawn: np.ndarray | None = None
        self._zcols: tuple | None = None  # Z by column of the coefficients _coef
        self._key: tuple | None = None
        self._rows: RowSystem | None = None
        self._token = next(_TOKENS)  # this instance's systems' keys are its own

    @functools.cached_property
    def _zcone(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`phasor_cones` over every phase count each connector may draw on: a row
        narrow here is narrow whatever the EVs draw (so computed once)."""
        t = self.topology
        options = [np.minimum(t.charger_phases, d) for d in range(1, N_PHASES + 1)]
        C = np.concatenate([t.coefficients(o)[self.ph] for o in options], axis=1)
        r, _ = np.nonzero(C)
        return phasor_cones(r, C[C != 0], self.ph.size)

    def _coefficients(self, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear and phasor coefficients for ``drawn``: from the last ones, where only a
        few connectors' phases changed, those columns afresh (new arrays: systems built
        before keep theirs)."""
        key = drawn.tobytes()
        if key == self._coef_key and self._coef is not None:
            return self._coef
        t = self.topology
        zcols, self._zcols = self._zcols, None  # Z by column belongs to the coefficients
        cols = None if self._coef_drawn is None else np.flatnonzero(drawn != self._coef_drawn)
        if t.all_linear:
            M, Z = t.matrix(drawn)[self.lin], np.zeros((0, t.n), dtype=np.complex128)
        elif cols is None or cols.size > t.n // 8 or self._coef is None:
            C = t.coefficients(drawn)
            M, Z = np.abs(C[self.lin]), C[self.ph]
        else:
            M, Z = self._coef[0].copy(), self._coef[1].copy()
            C = t.coefficients(drawn, cols)
            M[:, cols] = np.abs(C[self.lin])
            Z[:, cols] = C[self.ph]
            if zcols is not None:  # likewise by column
                self._zcols = columns_replaced(zcols, cols, Z[:, cols])
        self._coef_key, self._coef, self._coef_drawn = key, (M, Z), drawn.copy()
        return self._coef

    def system(
        self, drawn: np.ndarray, base_a: np.ndarray, row_limit_a: np.ndarray, unknown: np.ndarray | None = None
    ) -> RowSystem:
        """The rows over all n connectors when they draw on ``drawn`` phases (``unknown``:
        connectors whose EV may draw on fewer)."""
        if unknown is not None and not np.count_nonzero(unknown):
            unknown = None
        key = (drawn.tobytes(), base_a.tobytes(), row_limit_a.tobytes(), None if unknown is None else unknown.tobytes())
        if key == self._key and self._rows is not None:
            return self._rows
        M, Z = self._coefficients(drawn)
        base_lin = self.base_lin @ base_a
        cap = np.maximum(row_limit_a[self.lin] - base_lin - self.margin_lin, 0.0)
        kw: dict[str, np.ndarray] = {}
        if self.ph.size:
            zb = self.base_ph @ base_a
            zlim = np.maximum(row_limit_a[self.ph] - self.margin_ph, np.abs(zb))
            kw.update(Z=Z, zb=zb, zlim=zlim)
        if self.unbalance is not None:
            U = float(self.unbalance)
            i, j = self.pairs[:, 0], self.pairs[:, 1]
            if self.signed:
                S = M[i] - M[j]
                if unknown is not None:  # the worst over the phase counts such an EV may draw on
                    for k in range(1, int(drawn[unknown].max()) + 1):
                        Mk = self._coefficients(np.where(unknown, np.minimum(drawn, k), drawn))[0]
                        S = np.where(unknown, np.maximum(S, Mk[i] - Mk[j]), S)
                    self._coefficients(drawn)
                kw.update(S=S, scap=np.maximum(U - (base_lin[i] - base_lin[j]), 0.0))
            else:
                zb = kw["zb"]
                kw.update(pairs=self.pairs, ulim=np.maximum(U, np.abs(zb[i]) - np.abs(zb[j])))
        rows = RowSystem.build(M, cap, **kw) if kw else RowSystem.linear(M, cap)
        if self.ph.size:  # Z by column, once per coefficients, and the cones (systems taken inherit them)
            if self._zcols is None:
                self._zcols = rows.zcols
            rows.known(zcols=self._zcols, zcone=self._zcone)
        self._key, self._rows = key, rows.known(key=("site", self._token, key))
        return rows
