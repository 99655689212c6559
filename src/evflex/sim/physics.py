"""Physics of the charger response and the EV battery, as array kernels.

Charger response (practical attributes of seed 000 / 002), per connector:

- a set-point sent at time t takes effect at ``t + activation_delay_s`` (until then the
  previous one applies), however many steps that spans; set-points take effect in the order
  they were sent (a queue per connector);
- the drawn current then moves toward what the set-point lets the EV draw at the charger's
  *ramp rate*, over as many steps as that takes;
- decreases go first: a set-point that raises a connector's current takes effect only once
  every connector on its way down (given a lower set-point now, or still ramping down from
  an earlier one) has settled;
- a switch between one and three phases opens the contactor at once: the charge pauses for
  ``phase_switch_s`` (the EV sees a new supply and re-negotiates), then resumes toward the
  new set-point;
- each EV draws a fixed offset below the set-point, at most the charger's *precision*
  (IEC 61851-1: an EV never draws more than the pilot signal allows).

Battery: a two-stage constant-current / constant-voltage model. Up to ``taper_soc`` the EV
takes its full current; above it the acceptable current falls linearly to zero at full
charge (the usual CC-CV approximation of EV charging curves).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: A difference between current and target below this is settled, not a ramp [A].
SETTLED_A = 1e-6
#: Set-points a connector holds waiting to take effect; a further one replaces the last.
QUEUE = 4
#: A state of charge this far below ``taper_soc`` is below the taper whatever the rounding
#: (far more than it): the battery takes the full current.
TAPER_MARGIN = 1e-9


def ramp_toward(
    start_a: np.ndarray, target_a: np.ndarray, ramp_a_per_s: np.ndarray, duration_s
) -> tuple[np.ndarray, np.ndarray]:
    """Move from ``start_a`` toward ``target_a`` at ``ramp_a_per_s`` for ``duration_s``.

    Returns ``(area, end)``: the integral of the current [A s] and where it ends [A]. The
    trajectory is a straight ramp for ``tau = |end - start| / ramp`` then flat, so its area
    is ``end * duration - (end - start) * tau / 2`` whether or not the target is reached.
    """
    reach = ramp_a_per_s * duration_s
    move = np.minimum(np.maximum(target_a - start_a, -reach), reach)
    end = start_a + move
    return end * duration_s - 0.5 * move * (np.abs(move) / ramp_a_per_s), end


class ChargerBank:
    """The response state of every connector's charger between control steps.

    ``target_of(pilot_a)`` maps set-points in effect to what each EV then draws (the EV's own
    limit, the battery taper and the precision offset applied); the engine gives it per step.
    """

    def __init__(self, delay_s: np.ndarray, ramp_a_per_s: np.ndarray, switch_s: np.ndarray):
        n = len(delay_s)
        self.delay_s = np.asarray(delay_s, dtype=np.float64)
        self.ramp = np.maximum(np.asarray(ramp_a_per_s, dtype=np.float64), 1e-9)
        self.switch_s = np.asarray(switch_s, dtype=np.float64)
        self.current_a = np.zeros(n)  # drawn now
        self.pilot_a = np.zeros(n)  # the set-point in effect
        self.sent_a = np.zeros(n)  # the last set-point sent (in effect or queued)
        self.queue_t = np.full((n, QUEUE), np.inf)  # when each queued set-point takes effect
        self.queue_a = np.zeros((n, QUEUE))
        self.count = np.zeros(n, dtype=np.int64)  # set-points waiting, per connector
        self.last_t = np.full(n, -np.inf)  # when the last one sent takes effect
        self.queued = False  # any set-point waiting

    def clear(self, where: np.ndarray) -> None:
        """Connectors unplugged or plugged anew: no current, nothing in effect or waiting."""
        self.current_a[where] = 0.0
        self.pilot_a[where] = 0.0
        self.sent_a[where] = 0.0
        self.queue_t[where] = np.inf
        self.queue_a[where] = 0.0
        self.count[where] = 0
        self.last_t[where] = -np.inf
        self.queued = bool(np.count_nonzero(self.count))

    def settled(self, target_a: np.ndarray) -> bool:
        """Nothing waiting and every connector at its target."""
        return not self.queued and bool(np.all(np.abs(self.current_a - target_a) <= SETTLED_A))

    def command(
        self,
        t0_s: float,
        setpoint_a: np.ndarray,
        switched: np.ndarray | None,
        target_of: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Send new set-points at ``t0_s``; ``switched`` connectors change their number of
        phases (None: none does)."""
        changed = setpoint_a != self.sent_a
        if switched is not None and not np.count_nonzero(switched):
            switched = None
        if switched is not None:
            changed |= switched
        if not np.count_nonzero(changed):
            return
        if switched is not None:  # the contactor opens now; the new set-point follows the pause
            self.current_a[switched] = 0.0
            self.pilot_a[switched] = 0.0
            self.queue_t[switched] = np.inf
            self.count[switched] = 0
            self.last_t[switched] = -np.inf
            self.queued = bool(np.count_nonzero(self.count))
            eff = t0_s + np.where(switched, np.maximum(self.delay_s, self.switch_s), self.delay_s)
        else:
            eff = t0_s + self.delay_s
        eff = np.maximum(self._held_rises(t0_s, eff, setpoint_a, changed, target_of), self.last_t)
        if self.queued:  # in order: never before a set-point sent earlier; a full queue replaces its last
            c = np.flatnonzero(changed)
            slot = np.minimum(self.count[c], QUEUE - 1)
            self.queue_t[c, slot] = eff[c]
            self.queue_a[c, slot] = setpoint_a[c]
            self.count[c] = slot + 1
        else:  # every queue empty: the new set-points go first in line
            np.copyto(self.queue_t[:, 0], eff, where=changed)
            np.copyto(self.queue_a[:, 0], setpoint_a, where=changed)
            np.copyto(self.count, 1, where=changed)
        np.copyto(self.last_t, eff, where=changed)
        np.copyto(self.sent_a, setpoint_a, where=changed)
        self.queued = True

    def _held_rises(
        self,
        t0_s: float,
        eff: np.ndarray,
        setpoint_a: np.ndarray,
        changed: np.ndarray,
        target_of: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Decreases first: when each changed set-point takes effect, a rise held until every
        connector on its way down (a lower set-point now, or still ramping down from an
        earlier one) has settled [POSIX s]."""
        new_tgt, now_tgt = target_of(setpoint_a), target_of(self.pilot_a)
        i = self.current_a
        below = i - SETTLED_A
        down = changed & (new_tgt < below)
        ramping_down = (now_tgt < below) & ~changed
        if self.queued:
            ramping_down &= self.count == 0
        hold = -np.inf
        if np.count_nonzero(down):
            hold = float(np.max((eff + (i - new_tgt) / self.ramp)[down]))
        if np.count_nonzero(ramping_down):
            hold = max(hold, float(np.max((t0_s + (i - now_tgt) / self.ramp)[ramping_down])))
        if hold == -np.inf:  # nothing on its way down: no rise waits
            return eff
        up = changed & (new_tgt > i + SETTLED_A)
        return np.where(up, np.maximum(eff, hold), eff)

    def advance(
        self, t0_s: float, period_s: float, target_of: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the chargers from ``t0_s`` for ``period_s``: the average current over the step
        and the current at its end [A]."""
        end_s = t0_s + period_s
        if not self.queued:  # nothing waiting: every connector just moves toward its target
            area, end = ramp_toward(self.current_a, target_of(self.pilot_a), self.ramp, period_s)
            self.current_a = end
            return area / period_s, end
        if self.queue_t[:, 1].min() == np.inf:  # at most one set-point waits on each connector
            due = self.queue_t[:, 0] < end_s
            if np.count_nonzero(due):
                return self._advance_one(t0_s, period_s, due, target_of)
        return self._advance_queue(t0_s, period_s, target_of)

    def _advance_queue(
        self, t0_s: float, period_s: float, target_of: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`advance` with set-points waiting: a segment up to each one that takes effect
        within the step, then the rest of the step."""
        end_s = t0_s + period_s
        area = np.zeros_like(self.current_a)
        cur, t = self.current_a, np.full(len(self.current_a), t0_s)
        due = self.queue_t < end_s
        for j in range(QUEUE):
            if not due[:, j].any():
                break
            seg_end = np.where(due[:, j], np.maximum(self.queue_t[:, j], t0_s), end_s)
            a, cur = ramp_toward(cur, target_of(self.pilot_a), self.ramp, seg_end - t)
            area += a
            t = seg_end
            self.pilot_a = np.where(due[:, j], self.queue_a[:, j], self.pilot_a)
        a, cur = ramp_toward(cur, target_of(self.pilot_a), self.ramp, end_s - t)
        area += a
        self.current_a = cur
        if due.any():  # drop what took effect (a prefix of each queue, in time order); the rest moves up
            gone = due.sum(axis=1)
            for j in range(1, QUEUE + 1):
                rows = gone == j
                if j == QUEUE:
                    self.queue_t[rows] = np.inf
                elif np.count_nonzero(rows):
                    self.queue_t[rows, :-j] = self.queue_t[rows, j:]
                    self.queue_t[rows, -j:] = np.inf
                    self.queue_a[rows, :-j] = self.queue_a[rows, j:]
            self.count -= gone
            self.queued = bool(np.count_nonzero(self.count))
        return area / period_s, cur

    def _advance_one(
        self, t0_s: float, period_s: float, due: np.ndarray, target_of: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`advance` when at most one set-point waits on each connector and those of
        ``due`` take effect within the step: the same two segments, the queue emptied there."""
        end_s = t0_s + period_s
        when = self.queue_t[:, 0]
        seg_end = np.where(due, np.maximum(when, t0_s), end_s)
        a1, cur = ramp_toward(self.current_a, target_of(self.pilot_a), self.ramp, seg_end - t0_s)
        self.pilot_a = np.where(due, self.queue_a[:, 0], self.pilot_a)
        a2, cur = ramp_toward(cur, target_of(self.pilot_a), self.ramp, end_s - seg_end)
        self.current_a = cur
        np.copyto(when, np.inf, where=due)
        self.count -= due
        self.queued = bool(np.count_nonzero(self.count))
        return (0.0 + a1 + a2) / period_s, cur  # summed in the order of the general case


def taper_limit_a(soc: np.ndarray, max_a: np.ndarray, taper_soc: float) -> np.ndarray:
    """Current the battery accepts at state of charge ``soc`` (CC-CV) [A]; ``soc`` NaN or
    -inf (no battery model) means no taper."""
    # maximum() keeps NaN and fmin() then drops it: NaN -> 1, and -inf -> inf -> 1
    return max_a * np.fmin(np.maximum((1.0 - soc) * (1.0 / (1.0 - taper_soc)), 0.0), 1.0)


def deliverable_energy_kwh(duration_s, power_kw, battery_kwh, soc_arrival, efficiency, taper_soc: float):
    """Most energy, at the meter, an EV takes in ``duration_s`` charging flat out [kWh].

    Constant power ``power_kw`` until ``taper_soc``, then the linear CC-CV taper of
    :func:`taper_limit_a`, integrated exactly: in the taper the state of charge approaches
    1 exponentially, ``1 - soc(t) = (1 - soc_k) exp(-t P eta / ((1 - taper_soc) B))``.
    Where the battery is unknown (NaN) the answer is ``power_kw * duration``.
    """
    h = np.asarray(duration_s, dtype=float) / 3600.0
    p, b = np.asarray(power_kw, dtype=float), np.asarray(battery_kwh, dtype=float)
    s0, eta = np.asarray(soc_arrival, dtype=float), np.asarray(efficiency, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_cc = np.clip((taper_soc - s0) * b / (p * eta), 0.0, None)
        cc_h = np.minimum(h, t_cc)
        s_k = np.maximum(s0, np.minimum(taper_soc, s0 + cc_h * p * eta / b))
        tau = np.maximum(h - t_cc, 0.0)
        s_end = 1.0 - (1.0 - s_k) * np.exp(-tau * p * eta / ((1.0 - taper_soc) * b))
        e = p * cc_h + np.where(tau > 0, (s_end - s_k) * b / eta, 0.0)
    return np.where(np.isnan(b) | np.isnan(s0), p * h, e)
