"""What the meters teach the controller about each EV: its own current limit and phases.

What belongs here: learning from meter readings, only from *settled* responses, whatever the
step length. A reading counts as settled when it was taken once the set-point must have taken
effect: its activation delay and a full ramp after it was sent, and for a rise also after
every decrease sent with it has settled (chargers raise only once the others are down), and
after a phase switch's pause. A charger still ramping, or held back while others ramp down, is
not at the EV's limit. An EV drawing clearly less than a settled set-point is at its own limit
(learned as what it draws plus half the threshold), a known EV limit included: a battery
tapering near full draws less than any rating says. A learned limit is put to the test
after ``reprobe_s``: the EV is *probing* (:attr:`EvLearning.probing`) and the controller
offers it only room no other EV wants; drawing clearly more than its limit there, the EV is
taken to take all it is offered (the limit forgotten), drawing clearly less than offered, the
limit is learned afresh. An EV whose phases are unknown is assumed to draw on all of its
charger's phases until a settled reading shows fewer.
"""

from __future__ import annotations

import numpy as np

from evflex.control.interface import SiteSnapshot
from evflex.model.topology import Topology

#: A phase carries an EV's current when it reads above this share of its highest phase.
PHASE_SHARE = 0.25


class EvLearning:
    """Learned EV limits and phases, per connector."""

    def __init__(self, topology: Topology, threshold_a: float, reprobe_s: float, enabled: bool):
        t = topology
        self.topology = t
        self.enabled = enabled
        self.reprobe_s = reprobe_s
        self.threshold_a = np.maximum(threshold_a, 2.0 * t.precision_a)
        self.settle_s = t.activation_delay_s + t.max_current_a / np.maximum(t.ramp_a_per_s, 1e-9)
        self.reset()

    def reset(self) -> None:
        n = self.topology.n
        self.max_a = np.full(n, np.inf)
        self.learned_at = np.full(n, np.nan)
        self.probing = np.zeros(n, dtype=bool)  # a learned limit due for a test (see the module)
        self.next_forget = np.inf
        self.phases = np.zeros(n, dtype=np.int64)  # learned, 0 = not yet
        self.phase_unknown = np.zeros(n, dtype=bool)
        self.any_phase_unknown = False
        self.settled_at = np.full(n, -np.inf)  # when the set-point in force has surely taken effect

    def new_sessions(self, new: np.ndarray, ev_phases: np.ndarray) -> None:
        self.max_a[new] = np.inf
        self.learned_at[new] = np.nan
        self.probing[new] = False
        self.phases[new] = 0
        self.phase_unknown[new] = (ev_phases[new] <= 0) & ~self.topology.line_to_line[new]
        self.any_phase_unknown = bool(self.phase_unknown.any())
        self.settled_at[new] = -np.inf
        self._update_next_forget()

    def sent(self, t_s: float, old_a: np.ndarray, new_a: np.ndarray, switched: np.ndarray) -> None:
        """Set-points ``new_a`` replace ``old_a`` at ``t_s`` (``switched``: a phase switch)."""
        changed = new_a != old_a
        any_switched = bool(np.count_nonzero(switched))
        if any_switched:
            changed |= switched
        if not np.count_nonzero(changed):
            return
        down = new_a < old_a
        wait = float(self.settle_s[down].max()) if np.count_nonzero(down) else 0.0
        at = t_s + self.settle_s
        if wait:  # rises wait for the decreases to take effect first
            at = at + np.where(new_a > old_a, wait, 0.0)
        if any_switched:
            at = at + np.where(switched, self.topology.phase_switch_s, 0.0)
        self.settled_at = np.where(changed, np.maximum(self.settled_at, at), self.settled_at)

    def update(self, snap: SiteSnapshot, setpoint_a: np.ndarray, full_mode: np.ndarray) -> bool:
        """Learn from the snapshot's readings against the set-points in force;
        ``full_mode``: connectors on all their charger's phases. Returns whether a learned
        phase count changed."""
        t = snap.time_s
        read_at = t if np.isnan(snap.measured_at_s) else snap.measured_at_s
        if t >= self.next_forget:  # the oldest learned limit is due for a test
            due = (t - self.learned_at) >= self.reprobe_s
            self.probing |= due
            self.learned_at[due] = np.nan
            self._update_next_forget()
        meas = snap.measured_current_a
        drawn = meas.max(axis=1)
        steady = (setpoint_a > 0) & (read_at >= self.settled_at)
        if not self.enabled or not np.count_nonzero(steady):
            return False
        limited = steady & (drawn < setpoint_a - self.threshold_a)
        if np.count_nonzero(limited):
            self.max_a[limited] = drawn[limited] + 0.5 * self.threshold_a[limited]
            self.learned_at[limited] = t
            self.probing[limited] = False
            self._update_next_forget()
        if self.probing.any():  # took clearly more than its limit when offered: no limit
            more = steady & self.probing & ~limited & (drawn > self.max_a + self.threshold_a)
            self.max_a[more] = np.inf
            self.probing[more] = False
        if not self.any_phase_unknown:
            return False
        clear = steady & self.phase_unknown & (drawn >= 2.0)
        if np.count_nonzero(clear):
            clear &= (snap.ev_phases <= 0) & full_mode
            on = meas[clear] > np.maximum(0.5, PHASE_SHARE * drawn[clear])[:, None]
            self.phases[clear] = on.sum(axis=1)
            self.phase_unknown[clear] = False
            self.any_phase_unknown = bool(self.phase_unknown.any())
            return bool(np.count_nonzero(clear))
        return False

    def _update_next_forget(self) -> None:
        known = self.learned_at[~np.isnan(self.learned_at)]
        self.next_forget = float(known.min()) + self.reprobe_s if known.size else np.inf
