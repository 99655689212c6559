"""The site compiled to arrays: connectors, their phase wiring, and the constraint matrix.

Every limit of a site is a *constraint row*: a grid phase, the set of connectors that load
it, a limit in amperes and whether the site base load (building, PV) flows through it.
Which columns of a row a connector actually loads depends on the EV plugged in (a
single-phase EV loads only the grid phase its charger's L1 is wired to), so the numeric
matrix is built per step from the number of phases each EV draws: see
:meth:`Topology.matrix`. Allocators and optimisers share this one matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evflex.model.site import Site
from evflex.units import N_PHASES, PHASE_NAMES


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
    charger_phases: np.ndarray  # (n,) int, 1..3
    phase_map: np.ndarray  # (n, 3) int, grid phase of charger conductor k; -1 where absent
    modulation: np.ndarray  # (n,) bool
    phase_switching: np.ndarray  # (n,) bool
    v2g: np.ndarray  # (n,) bool
    activation_delay_s: np.ndarray  # (n,)
    ramp_a_per_s: np.ndarray  # (n,)
    precision_a: np.ndarray  # (n,)
    row_ids: tuple[str, ...]
    row_phase: np.ndarray  # (m,) int
    row_members: np.ndarray  # (m, n) bool
    row_limit_a: np.ndarray  # (m,) static limit
    row_base: np.ndarray  # (m,) bool: the base load flows through this row
    connection_rows: np.ndarray  # (3,) int: rows of the grid connection, L1..L3

    @property
    def n(self) -> int:
        return len(self.connector_ids)

    @property
    def m(self) -> int:
        return len(self.row_ids)

    def index(self) -> dict[str, int]:
        """Connector id -> column index."""
        return {cid: k for k, cid in enumerate(self.connector_ids)}

    def incidence(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(n, 3) 0/1 matrix: which grid phases each connector loads when its EV draws on
        ``drawn_phases[c]`` of its charger's conductors (0 = not drawing)."""
        drawn = np.asarray(drawn_phases)
        inc = np.zeros((self.n, N_PHASES))
        rows = np.arange(self.n)
        for k in range(N_PHASES):
            sel = drawn > k
            inc[rows[sel], self.phase_map[sel, k]] = 1.0
        return inc

    def matrix(self, drawn_phases: np.ndarray) -> np.ndarray:
        """(m, n) constraint matrix: row r's current is ``matrix @ current_a``."""
        inc = self.incidence(drawn_phases)
        return self.row_members * inc[:, self.row_phase].T

    def row_loads(self, current_a: np.ndarray, drawn_phases: np.ndarray) -> np.ndarray:
        """Current through every row for connector currents ``current_a`` [A], EVs only."""
        return self.matrix(drawn_phases) @ np.asarray(current_a, dtype=np.float64)


def compile_topology(site: Site) -> Topology:
    """Compile a site into arrays and its constraint rows.

    Rows: the grid connection on L1, L2, L3 (base load included); each feeder on each of its
    phases; each charger with a ``max_total_current_a`` on each of its phases.
    """
    ids, charger_of = [], []
    cols: dict[str, list] = {
        k: [] for k in ("max", "min", "res", "ph", "map", "mod", "sw", "v2g", "delay", "ramp", "prec")
    }
    for ci, ch in enumerate(site.chargers):
        for k, cid in enumerate(ch.connector_ids()):
            ids.append(cid)
            charger_of.append(ci)
            cols["max"].append(ch.max_current_a)
            cols["min"].append(ch.min_current_a)
            cols["res"].append(ch.setpoint_resolution_a)
            cols["ph"].append(ch.phases)
            cols["map"].append(list(ch.rotation(k)) + [-1] * (N_PHASES - ch.phases))
            cols["mod"].append(ch.modulation)
            cols["sw"].append(ch.phase_switching)
            cols["v2g"].append(ch.v2g)
            cols["delay"].append(ch.response.activation_delay_s)
            cols["ramp"].append(ch.response.ramp_a_per_s)
            cols["prec"].append(ch.response.precision_a)
    n = len(ids)
    charger_of_arr = np.array(charger_of, dtype=np.int64)
    charger_ids = tuple(ch.id for ch in site.chargers)
    cindex = {c: i for i, c in enumerate(charger_ids)}

    row_ids, row_phase, members, limits, base = [], [], [], [], []
    everyone = np.ones(n, dtype=bool)
    for p in range(N_PHASES):
        row_ids.append(f"connection:{PHASE_NAMES[p]}")
        row_phase.append(p)
        members.append(everyone)
        limits.append(site.connection_limit_a)
        base.append(True)
    for fd in site.feeders:
        sel = np.isin(charger_of_arr, [cindex[c] for c in fd.chargers])
        for p in fd.phases:
            row_ids.append(f"feeder:{fd.id}:{PHASE_NAMES[p]}")
            row_phase.append(p)
            members.append(sel)
            limits.append(fd.limit_a)
            base.append(fd.includes_base_load)
    for ci, ch in enumerate(site.chargers):
        if ch.max_total_current_a is None:
            continue
        sel = charger_of_arr == ci
        for p in sorted({q for k in range(ch.connectors) for q in ch.rotation(k)}):
            row_ids.append(f"charger:{ch.id}:{PHASE_NAMES[p]}")
            row_phase.append(p)
            members.append(sel)
            limits.append(ch.max_total_current_a)
            base.append(False)

    f = lambda key, dt=np.float64: np.array(cols[key], dtype=dt)  # noqa: E731
    return Topology(
        voltage_ln_v=float(site.voltage_ln_v),
        connector_ids=tuple(ids),
        charger_ids=charger_ids,
        charger_of=charger_of_arr,
        max_current_a=f("max"),
        min_current_a=f("min"),
        resolution_a=f("res"),
        charger_phases=f("ph", np.int64),
        phase_map=np.array(cols["map"], dtype=np.int64).reshape(n, N_PHASES),
        modulation=f("mod", bool),
        phase_switching=f("sw", bool),
        v2g=f("v2g", bool),
        activation_delay_s=f("delay"),
        ramp_a_per_s=f("ramp"),
        precision_a=f("prec"),
        row_ids=tuple(row_ids),
        row_phase=np.array(row_phase, dtype=np.int64),
        row_members=np.array(members, dtype=bool).reshape(len(row_ids), n),
        row_limit_a=np.array(limits, dtype=np.float64),
        row_base=np.array(base, dtype=bool),
        connection_rows=np.arange(N_PHASES),
    )
