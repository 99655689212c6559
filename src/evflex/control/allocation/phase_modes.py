"""Phase switching that a real EV survives: which connectors run on one phase, and when
they may switch.

What belongs here: the mode (one phase, or all the charger's phases) of every connector of a
phase-switching charger, and the rules that bound switching: a mode is kept at least
``dwell_s`` (an EV re-negotiates at every switch, and the charge pauses), and a session
switches at most ``max_switches`` times. The controller decides *whether* a switch helps
(one phase where three do not fit; three again once there is room, with a margin); this
module says whether it is allowed.
"""

from __future__ import annotations

import numpy as np

from evflex.model.topology import Topology


class PhaseModes:
    """The number of conductors each connector is asked to use, and its switching history."""

    def __init__(self, topology: Topology, dwell_s: float, max_switches: int):
        self.topology = topology
        self.dwell_s = float(dwell_s)
        self.max_switches = int(max_switches)
        self.switchable = topology.phase_switching & (topology.charger_phases > 1)
        self.any = bool(self.switchable.any())
        self.reset()

    def reset(self) -> None:
        t = self.topology
        self.phases = t.charger_phases.copy()
        self.since = np.full(t.n, -np.inf)  # when the mode last changed
        self.switches = np.zeros(t.n, dtype=np.int64)  # in the current session

    def new_sessions(self, new: np.ndarray) -> None:
        self.phases[new] = self.topology.charger_phases[new]
        self.since[new] = -np.inf
        self.switches[new] = 0

    @property
    def full(self) -> np.ndarray:
        """Connectors on all their charger's phases."""
        return self.phases == self.topology.charger_phases

    def may_switch(self, t_s: float) -> np.ndarray:
        """Connectors allowed to change mode now: switchable, dwell kept, switches left."""
        return self.switchable & ((t_s - self.since) >= self.dwell_s) & (self.switches < self.max_switches)

    def set(self, where: np.ndarray, phases: np.ndarray | int, t_s: float) -> np.ndarray:
        """Switch ``where`` to ``phases``; returns the connectors that actually changed."""
        mode = self.phases.copy()
        mode[where] = phases if np.isscalar(phases) else np.asarray(phases)[where]
        changed = mode != self.phases
        self.since[changed] = t_s
        self.switches[changed] += 1
        self.phases = mode
        return changed
