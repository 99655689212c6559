"""The site compiled to arrays: connectors, their wiring, and the constraint rows.

Every limit of a site is a *constraint row*: a measurement point (a grid phase of the
connection, of a sub-feeder or of a charger group; a line of a transformer's delta primary),
the connectors whose current flows through it, a limit in amperes and whether the site's
base load (building, PV) flows through it too.

Phasors. At unity power factor a connector drawing ``x`` A injects into the grid phases a
current phasor per ampere (:meth:`Topology.injection`): a phase-to-neutral EV on grid phase
p draws ``x`` at the angle of p (L1 0, L2 -120, L3 +120 degrees); a line-to-line EV between p
and q draws ``x`` at the angle of the voltage p-q (L1-L2 +30, L2-L3 -90, L3-L1 +150 degrees)
out of p and back through q. A row's current is the magnitude of ``kappa . I`` where ``I``
holds the three phase phasors of its members (plus the base load where it flows) and
``kappa`` says how the row combines phases: ``e_p`` for phase p, ``(e_a - e_c) / N`` for line
A of a delta primary (N the transformer's ratio).

Two kinds of rows, decided once from the wiring (:attr:`Topology.row_linear`):

- **linear** rows: every member's phasor (for every number of phases it may draw) and the
  base load's lie on one direction, so the magnitude is a plain sum: ``M @ x + base``, with
  ``M >= 0`` from :meth:`Topology.matrix`. Phase-to-neutral sites have only these, and so do
  groups of line-to-line EVSEs on one pair (ACN's pods);
- **phasor** rows: ``|Z @ x + zb|`` with complex ``Z`` from :meth:`Topology.phasor_matrix`:
  a phase carrying two line-to-line branches (``|I_A| = |I_AB - I_CA|``), a delta primary.

An unbalance limit (``max_unbalance_a``) bounds ``I_p - I_q`` for every ordered pair of
connection phases: signed currents at a phase-to-neutral connection (a phase exporting PV
counts below zero, as its phasor does), magnitudes ``|I_p| - |I_q|`` where line-to-line
branches load the phases. Which columns a connector loads depends on the EV plugged in (a
single-phase EV loads only the phase its charger's L1 is wired to), so the numeric matrices
are built per step from the number of phases each EV draws. Allocators, the simulator's
checks and (later) the optimiser share these rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evflex.model.site import LINE_TO_LINE, Site
from evflex.units import N_PHASES, PHASE_NAMES

#: Angle of each grid phase's voltage (positive sequence) [rad].
PHASE_ANGLE_RAD = np.deg2rad([0.0, -120.0, 120.0])
#: Unit phasor of each grid phase.
PHASE_UNIT = np.exp(1j * PHASE_ANGLE_RAD)
#: Tolerance on phasor directions when classifying rows.
_COLLINEAR_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Topology:
    """Array view of a :class:`~evflex.model.site.Site` (n connectors, m constraint rows)."""

    voltage_ln_v: float
    connector_ids: tuple[str, ...]
    charger_ids: tuple[str, ...]
    charger_of: np.ndarray  # (n,) int, index into charger_ids
    max_current_a: np.ndarray  # (n,)
    min_current_a: np.ndarray  # (n,)
    resolution_a: np.ndarray  # (n,)
    charger_phases: np.ndarray  # (n,) int, 1..3 conductors (a line-to-line charger: 1 pair)
    phase_map: np.ndarray  # (n, 3) int, grid phase of charger conductor k; -1 where absent.
    # For a line-to-line connector: its two phases (from, to) and -1.
    line_to_line: np.ndarray  # (n,) bool
    voltage_v: np.ndarray  # (n,) voltage across one conductor: phase-to-neutral or line-to-line [V]
    modulation: np.ndarray  # (n,) bool
    phase_switching: np.ndarray  # (n,) bool
    v2g: np.ndarray  # (n,) bool
    activation_delay_s: np.ndarray  # (n,)
    ramp_a_per_s: np.ndarray  # (n,)
    precision_a: np.ndarray  # (n,)
    phase_switch_s: np.ndarray  # (n,) pause of a switch between one and three phases [s]
    row_ids: tuple[str, ...]
    row_phase: np.ndarray  # (m,) int: the grid phase a row measures; -1 for a primary line
    row_kappa: np.ndarray  # (m, 3) complex: how the row combines the phase phasors
    row_members: np.ndarray  # (m, n) bool
    row_limit_a: np.ndarray  # (m,) static limit
    row_base: np.ndarray  # (m,) bool: the base load flows through this row
    row_linear: np.ndarray  # (m,) bool: a linear row (see the module docstring)
    row_unit: np.ndarray  # (m,) complex: direction of a linear row's current (1 for phasor rows)
    connection_rows: np.ndarray  # (3,) int: rows of the grid connection, L1..L3
    max_unbalance_a: float | None = None

    @property
    def n(self) -> int:
        return len(self.connector_ids)

    @property
    def m(self) -> int:
        return len(self.row_ids)

    @property
    def all_linear(self) -> bool:
        """Every row is linear (a phase-to-neutral site): no phasor sums needed."""
        return bool(self.row_linear.all())

    def index(self) -> dict[str, int]:
        """Connector id -> column index."""
        return {cid: k for k, cid in enumerate(self.connector_ids)}

    # ------------------------------------------------------------------ per connector
    def incidence(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(n, 3) 0/1 matrix: which grid phases carry each connector's current when its EV
        draws on ``drawn_phases[c]`` of its charger's conductors (0 = not drawing); a
        line-to-line connector drawing loads both its phases."""
        drawn = np.asarray(drawn_phases)
        inc = np.zeros((self.n, N_PHASES))
        rows = np.arange(self.n)
        for k in range(N_PHASES):
            sel = (drawn > k) | ((k == 1) & self.line_to_line & (drawn > 0))
            inc[rows[sel], self.phase_map[sel, k]] = 1.0
        return inc

    def injection(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(n, 3) complex: the phasor each connector injects into each grid phase per ampere."""
        drawn = np.asarray(drawn_phases)
        w = np.zeros((self.n, N_PHASES), dtype=np.complex128)
        rows = np.arange(self.n)
        ll = self.line_to_line
        for k in range(N_PHASES):
            sel = (drawn > k) & ~ll
            w[rows[sel], self.phase_map[sel, k]] += PHASE_UNIT[self.phase_map[sel, k]]
        if ll.any():
            sel = ll & (drawn > 0)
            p, q = self.phase_map[sel, 0], self.phase_map[sel, 1]
            u = PHASE_UNIT[p] - PHASE_UNIT[q]
            u = u / np.abs(u)
            w[rows[sel], p] += u
            w[rows[sel], q] -= u
        return w

    # ------------------------------------------------------------------ per row
    def coefficients(self, drawn_phases: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """(m, n) complex: row r's current phasor is ``coefficients @ current_a`` (EVs only);
        with ``cols``, only those connectors' columns, (m, len(cols))."""
        w = self.injection(drawn_phases)
        members = self.row_members
        if cols is not None:
            w, members = w[cols], members[:, cols]
        # term by term, not a matrix product: a column comes out bit for bit the same whether
        # computed alone or with the others (the controller updates columns in place)
        k = self.row_kappa
        return members * (k[:, 0:1] * w[:, 0] + k[:, 1:2] * w[:, 1] + k[:, 2:3] * w[:, 2])

    def base_coefficients(self) -> np.ndarray:
        """(m, 3) complex: row r's base-load phasor is ``base_coefficients @ base_a`` for the
        per-phase base load ``base_a`` [A] (real: building minus PV, unity power factor)."""
        return (self.row_kappa * PHASE_UNIT[None, :]) * self.row_base[:, None]

    def matrix(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(m, n) real, >= 0: a linear row's current is ``matrix @ current_a`` (EVs only).
        Phasor rows get the magnitude of each coefficient (a bound, not their current: use
        :meth:`phasor_matrix` for them)."""
        if self.all_linear:  # phase-to-neutral only: the magnitudes are the coefficients
            inc = self.incidence(drawn_phases)
            return self.row_members * inc[:, self.row_phase].T
        return np.abs(self.coefficients(drawn_phases))

    def phasor_matrix(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(mp, n) complex coefficients of the phasor rows (``~row_linear``), in row order."""
        return self.coefficients(drawn_phases)[~self.row_linear]

    def base_matrix(self) -> np.ndarray:
        """(m, 3) real: a linear row's base-load current is ``base_matrix @ base_a`` (0 for
        phasor rows: see :meth:`base_coefficients`)."""
        real = (self.base_coefficients() * np.conj(self.row_unit)[:, None]).real
        return np.where(self.row_linear[:, None], np.round(real, 12), 0.0)

    def row_loads(
        self, current_a: np.ndarray, drawn_phases: np.ndarray, base_a: np.ndarray | None = None
    ) -> np.ndarray:
        """Current through every row for connector currents ``current_a`` [A] drawn on
        ``drawn_phases``, plus the base load ``base_a`` (3,) where it flows. Linear rows are
        signed (export negative), phasor rows magnitudes."""
        x = np.asarray(current_a, dtype=np.float64)
        out = self.matrix(drawn_phases) @ x
        if base_a is not None:
            out = out + self.base_matrix() @ np.asarray(base_a, dtype=np.float64)
        ph = ~self.row_linear
        if ph.any():
            y = self.phasor_matrix(drawn_phases) @ x
            if base_a is not None:
                y = y + self.base_coefficients()[ph] @ np.asarray(base_a, dtype=np.float64)
            out[ph] = np.abs(y)
        return out

    def row_loads_over_time(
        self, current_a: np.ndarray, drawn: np.ndarray, base_a: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, m) current through every row at every step, for (N, n) currents drawn on
        (N, n) phases and an (N, 3) base load: :meth:`row_loads` for every step at once.
        The EVs' part is computed on the steps where some current flows only."""
        return self.row_loads_without_and_with_base(current_a, drawn, base_a)[1]

    def row_loads_without_and_with_base(
        self, current_a: np.ndarray, drawn: np.ndarray, base_a: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`row_loads_over_time` of the EVs alone and with the base load ``base_a``
        (None: none), from one pass over the currents."""
        N = current_a.shape[0]
        ph = ~self.row_linear
        any_ph = bool(ph.any())
        lin = np.zeros((N, self.m))
        y = np.zeros((N, int(ph.sum())), dtype=np.complex128)
        busy = busy_steps(current_a)
        if busy.size:
            x = np.asarray(current_a[busy], dtype=np.float64)
            dr = np.asarray(drawn[busy])
            ev = np.zeros((busy.size, self.m))
            ev_y = np.zeros((busy.size, y.shape[1]), dtype=np.complex128)
            for d in np.flatnonzero(np.bincount(np.clip(dr, 0, None).ravel(), minlength=1)).tolist():
                if d <= 0:
                    continue
                xd = np.where(dr == d, x, 0.0)
                full = np.full(self.n, d)
                ev += xd @ self.matrix(full).T
                if any_ph:
                    ev_y += xd @ self.phasor_matrix(full).T
            lin[busy] = ev
            y[busy] = ev_y
        alone = lin.copy() if base_a is not None else lin
        if any_ph:
            alone[:, ph] = np.abs(y)
        if base_a is None:
            return alone, alone
        b = np.asarray(base_a, dtype=np.float64)
        lin += b @ self.base_matrix().T
        if any_ph:
            lin[:, ph] = np.abs(y + b @ self.base_coefficients()[ph].T)
        return alone, lin

    def unbalance(self, row_loads: np.ndarray) -> np.ndarray:
        """Largest difference between the connection's phase currents, from row loads (..., m)
        (as :meth:`row_loads` gives them: signed at a phase-to-neutral connection, so a phase
        exporting PV counts below zero; magnitudes where the phases carry line-to-line
        branches)."""
        ph = row_loads[..., self.connection_rows]
        return ph.max(axis=-1) - ph.min(axis=-1)


def busy_steps(current_a: np.ndarray) -> np.ndarray:
    """The steps (rows of an (N, n) array) where some connector's current is not zero."""
    if not current_a.shape[0]:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.logical_or.reduce(current_a != 0, axis=1))


def compile_topology(site: Site) -> Topology:
    """Compile a site into arrays and its constraint rows.

    Rows: the grid connection on L1, L2, L3 (base load included; the lower of the connection
    limit and the transformer secondary's rating); each feeder on each of its phases; each
    charger with a ``max_total_current_a`` on each phase it loads; the three lines of a delta
    primary when the site declares one.
    """
    ids, charger_of = [], []
    cols: dict[str, list] = {
        k: [] for k in ("max", "min", "res", "ph", "map", "ll", "mod", "sw", "v2g", "delay", "ramp", "prec", "pause")
    }
    for ci, ch in enumerate(site.chargers):
        for k, cid in enumerate(ch.connector_ids()):
            ids.append(cid)
            charger_of.append(ci)
            cols["max"].append(ch.max_current_a)
            cols["min"].append(ch.min_current_a)
            cols["res"].append(ch.setpoint_resolution_a)
            cols["ph"].append(ch.phases)
            rot = list(ch.rotation(k))
            cols["map"].append(rot + [-1] * (N_PHASES - len(rot)))
            cols["ll"].append(ch.line_to_line)
            cols["mod"].append(ch.modulation)
            cols["sw"].append(ch.phase_switching and not ch.line_to_line)
            cols["v2g"].append(ch.v2g)
            cols["delay"].append(ch.response.activation_delay_s)
            cols["ramp"].append(ch.response.ramp_a_per_s)
            cols["prec"].append(ch.response.precision_a)
            cols["pause"].append(ch.response.phase_switch_s)
    n = len(ids)
    charger_of_arr = np.array(charger_of, dtype=np.int64)
    charger_ids = tuple(ch.id for ch in site.chargers)
    cindex = {c: i for i, c in enumerate(charger_ids)}
    ll_arr = np.array(cols["ll"], dtype=bool)
    eye = np.eye(N_PHASES, dtype=np.complex128)

    row_ids: list[str] = []
    row_phase: list[int] = []
    kappa: list[np.ndarray] = []
    members: list[np.ndarray] = []
    limits: list[float] = []
    base: list[bool] = []

    def add(rid: str, phase: int, k: np.ndarray, sel: np.ndarray, limit: float, with_base: bool) -> None:
        row_ids.append(rid)
        row_phase.append(phase)
        kappa.append(k)
        members.append(sel)
        limits.append(limit)
        base.append(with_base)

    everyone = np.ones(n, dtype=bool)
    for p in range(N_PHASES):
        add(f"connection:{PHASE_NAMES[p]}", p, eye[p], everyone, site.phase_limit_a, True)
    for fd in site.feeders:
        sel = np.isin(charger_of_arr, [cindex[c] for c in fd.chargers])
        for p in fd.phases:
            add(f"feeder:{fd.id}:{PHASE_NAMES[p]}", p, eye[p], sel, fd.limit_a, fd.includes_base_load)
    for ci, ch in enumerate(site.chargers):
        if ch.max_total_current_a is None:
            continue
        sel = charger_of_arr == ci
        for p in sorted({q for k in range(ch.connectors) for q in ch.rotation(k)}):
            add(f"charger:{ch.id}:{PHASE_NAMES[p]}", p, eye[p], sel, ch.max_total_current_a, False)
    if site.transformer_kw is not None and site.transformer_primary_ll_v is not None:
        ratio = site.transformer_primary_ll_v / site.voltage_ln_v
        for p, name in enumerate(PHASE_NAMES):
            prev = (p + 2) % N_PHASES  # line A sees (I_a - I_c) / N, as ACN-Sim's caltech_acn
            add(f"primary:{name}", -1, (eye[p] - eye[prev]) / ratio, everyone, site.primary_limit_a, True)

    m = len(row_ids)
    f = lambda key, dt=np.float64: np.array(cols[key], dtype=dt)
    topo = Topology(
        voltage_ln_v=float(site.voltage_ln_v),
        connector_ids=tuple(ids),
        charger_ids=charger_ids,
        charger_of=charger_of_arr,
        max_current_a=f("max"),
        min_current_a=f("min"),
        resolution_a=f("res"),
        charger_phases=f("ph", np.int64),
        phase_map=np.array(cols["map"], dtype=np.int64).reshape(n, N_PHASES),
        line_to_line=ll_arr,
        voltage_v=np.where(ll_arr, math.sqrt(3.0), 1.0) * float(site.voltage_ln_v),
        modulation=f("mod", bool),
        phase_switching=f("sw", bool),
        v2g=f("v2g", bool),
        activation_delay_s=f("delay"),
        ramp_a_per_s=f("ramp"),
        precision_a=f("prec"),
        phase_switch_s=f("pause"),
        row_ids=tuple(row_ids),
        row_phase=np.array(row_phase, dtype=np.int64),
        row_kappa=np.array(kappa, dtype=np.complex128).reshape(m, N_PHASES),
        row_members=np.array(members, dtype=bool).reshape(m, n),
        row_limit_a=np.array(limits, dtype=np.float64),
        row_base=np.array(base, dtype=bool),
        row_linear=np.ones(m, dtype=bool),
        row_unit=np.ones(m, dtype=np.complex128),
        connection_rows=np.arange(N_PHASES),
        max_unbalance_a=site.max_unbalance_a,
    )
    linear, unit = _classify(topo)
    if site.max_unbalance_a is not None and not linear[topo.connection_rows].all():
        linear[topo.connection_rows] = False  # unbalance compares magnitudes: all three as phasors
        unit[topo.connection_rows] = 1.0
    object.__setattr__(topo, "row_linear", linear)
    object.__setattr__(topo, "row_unit", unit)
    return topo


def _classify(topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    """Which rows are linear, and the direction of each linear row's current.

    A row is linear when the phasors of its members (for every number of phases they may
    draw) and of the base load where it flows all point one way: then its magnitude is the
    sum of theirs."""
    options = [np.minimum(topo.charger_phases, d) for d in range(1, N_PHASES + 1)]
    coefs = np.concatenate([topo.coefficients(d) for d in options] + [topo.base_coefficients()], axis=1)
    linear = np.ones(topo.m, dtype=bool)
    unit = np.ones(topo.m, dtype=np.complex128)
    for r in range(topo.m):
        c = coefs[r][np.abs(coefs[r]) > _COLLINEAR_TOL]
        if c.size == 0:
            unit[r] = PHASE_UNIT[topo.row_phase[r]] if topo.row_phase[r] >= 0 else 1.0
            continue
        u = c[0] / abs(c[0])
        along = c * np.conj(u)
        if np.all(np.abs(along.imag) <= _COLLINEAR_TOL * np.abs(c)) and np.all(along.real > 0):
            unit[r] = u
        else:
            linear[r] = False
    return linear, unit


__all__ = ["LINE_TO_LINE", "PHASE_ANGLE_RAD", "PHASE_UNIT", "Topology", "compile_topology"]
