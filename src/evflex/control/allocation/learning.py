"""What the meters teach the controller about each EV: its own current limit and phases.

What belongs here: learning from meter readings, only from *settled* responses, whatever the
step length. A reading counts as settled when it was taken once the set-point must have taken
effect: its activation delay and a full ramp after it was sent, and for a rise also after
every decrease sent with it has settled (chargers raise only once the others are down), and
after a phase switch's pause. A charger still ramping, or held back while others ramp down, is
not at the EV's limit. An EV drawing clearly less than a settled set-point is at its own limit
(learned as what it draws plus half the threshold), a known EV limit included: a battery
tapering near full draws less than any rating says. A learned limit is put to the test
after ``reprobe_s`` (at the next multiple of it, so that the limits learned within one such
period are tested together, at one controller call): the EV is *probing*
(:attr:`EvLearning.probing`) and the controller offers it only room no other EV wants;
drawing clearly more than its limit there, the EV is
taken to take all it is offered (the limit forgotten), drawing clearly less than offered, the
limit is learned afresh. An EV whose phases are unknown is assumed to draw on all of its
charger's phases until a settled reading shows fewer.

Each EV also draws a little below a set-point it follows (a charger's precision, a battery
tapering slowly, an own limit just under the set-point): that *offset* is read at the first
settled reading after each new set-point where the EV follows it, and again whenever it draws
clearly (half the threshold) less than foretold (while at its own limit, the learned draw
says it all). With the learned limits it gives the draw the meters
will read for a set-point (:meth:`EvLearning.predicted`). An unbalance limit is held there as
well as at the set-points: EVs drawing less than they are offered widen an unbalance. What no
reading can tell, whether an EV takes a current it is offered for the first time (a start,
a rise), or stops on its own, shows at the next reading.
"""

from __future__ import annotations

import numpy as np

from evflex.control.interface import SiteSnapshot
from evflex.model.topology import Topology

#: A phase carries an EV's current when it reads above this share of its highest phase.
PHASE_SHARE = 0.25


class EvLearning:
    """Learned EV limits and phases, per connector."""

    def __init__(self, topology: Topology, threshold_a: float, reprobe_s: float, enabled: bool, foretell: bool = True):
        t = topology
        self.topology = t
        self.enabled = enabled
        self.foretell = enabled and foretell  # read the offsets (see the module; only an unbalance needs them)
        self.reprobe_s = reprobe_s
        self.threshold_a = np.maximum(threshold_a, 2.0 * t.precision_a)
        self._half_a = 0.5 * self.threshold_a
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
        self.offset_a = np.zeros(n)  # draw below a followed set-point
        self.offset_read = np.zeros(n, dtype=bool)  # offset_a read this session

    def new_sessions(self, new: np.ndarray, ev_phases: np.ndarray) -> None:
        self.max_a[new] = np.inf
        self.learned_at[new] = np.nan
        self.probing[new] = False
        self.phases[new] = 0
        self.phase_unknown[new] = (ev_phases[new] <= 0) & ~self.topology.line_to_line[new]
        self.any_phase_unknown = bool(self.phase_unknown.any())
        self.settled_at[new] = -np.inf
        self.offset_a[new] = 0.0
        self.offset_read[new] = False
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
        if self.foretell:
            self.offset_read[changed] = False  # an EV near its own limit draws less below some set-points

    def update(self, snap: SiteSnapshot, setpoint_a: np.ndarray, full_mode: np.ndarray) -> bool:
        """Learn from the snapshot's readings against the set-points in force;
        ``full_mode``: connectors on all their charger's phases. Returns whether a learned
        phase count changed."""
        t = snap.time_s
        read_at = t if np.isnan(snap.measured_at_s) else snap.measured_at_s
        if t >= self.next_forget:  # the oldest learned limit is due for a test
            due = self._test_at(self.learned_at) <= t
            self.probing |= due
            self.learned_at[due] = np.nan
            self._update_next_forget()
        meas = snap.measured_current_a
        drawn = meas.max(axis=1)
        steady = (setpoint_a > 0) & (read_at >= self.settled_at)
        if not self.enabled or not np.count_nonzero(steady):
            return False
        if self.foretell:  # offsets: at the first settled reading, and where the EV draws clearly less than foretold
            read = steady & (~self.offset_read | (drawn < self.predicted(setpoint_a) - self._half_a))
        limited = steady & (drawn < setpoint_a - self.threshold_a)
        if np.count_nonzero(limited):
            self.max_a[limited] = drawn[limited] + 0.5 * self.threshold_a[limited]
            self.learned_at[limited] = t
            self.probing[limited] = False
            self._update_next_forget()
        if self.foretell and np.count_nonzero(read := read & ~limited):  # at its own limit: read once it follows
            self.offset_a[read] = np.clip(setpoint_a[read] - drawn[read], 0.0, self.threshold_a[read])
            self.offset_read |= read
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

    def predicted(self, current_a: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """The currents the meters will read for set-points ``current_a`` (of the connectors
        ``idx``, default all) once settled, as far as the readings tell: each set-point less
        the EV's offset, at most what the EV drew when its limit was learned [A]."""
        if not self.enabled:
            return current_a
        if idx is None:
            p = np.minimum(current_a - self.offset_a, self.max_a - self._half_a)
        else:
            p = np.minimum(current_a - self.offset_a[idx], self.max_a[idx] - self._half_a[idx])
        return np.where(current_a > 0, np.maximum(p, 0.0), 0.0)

    def offset_due(self, on: np.ndarray, t_s: float) -> float:
        """When the first reading of an EV charging (``on``) whose offset is not read at its
        set-point yet settles (after ``t_s``; inf: none)."""
        due = self.settled_at[on & ~self.offset_read] if self.enabled else np.zeros(0)
        due = due[due > t_s]
        return float(due.min()) if due.size else np.inf

    def _test_at(self, learned_at: np.ndarray) -> np.ndarray:
        """When limits learned at ``learned_at`` are due for a test: the first multiple of
        ``reprobe_s`` (from the epoch) at least ``reprobe_s`` after, so the limits learned
        within one such period are tested together, at one controller call (NaN: none)."""
        if self.reprobe_s <= 0:
            return learned_at
        return np.ceil((learned_at + self.reprobe_s) / self.reprobe_s - 1e-9) * self.reprobe_s

    def _update_next_forget(self) -> None:
        known = self.learned_at[~np.isnan(self.learned_at)]
        self.next_forget = float(self._test_at(known).min()) if known.size else np.inf
