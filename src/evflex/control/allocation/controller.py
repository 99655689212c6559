"""The real-time allocation controller: one object per site, used unchanged by the
simulator and by live operation.

Each step it
1. learns from the meters what every plugged EV can take (:mod:`.learning`): the charger
   rating, the EV's own limit when known or learned from settled readings, the phases it
   draws on, the current that would finish its request within the step and, at a site with
   an unbalance limit, the draw the meters will read for a set-point;
2. builds the site's constraint rows for the phases each EV draws (:mod:`.constraints`):
   linear rows, phasor rows (line-to-line EVSEs, a delta primary) and an unbalance limit;
3. admits, in priority order, the EVs that can each get at least their minimum current
   (6 A, or the full rating for on/off chargers) without any row going over: EVs switched
   on less than ``min_on_s`` ago keep their place (no contactor cycling), EVs kept waiting
   for ``starvation_s`` or more come next (nobody starves), then the strategy's own order
   (for the sharing strategies, EVs already charging before those waiting: a running EV is
   not stopped to rotate, only to let a starving one in). An EV left out on three phases
   whose charger can switch to one phase gets a second chance there (:mod:`.phase_modes`:
   at most ``max_phase_switches`` a session, each mode kept ``phase_switch_dwell_s``), and
   goes back to three phases once they fit with a margin;
4. shares the remaining capacity among the admitted EVs by the strategy's rule;
5. rounds each set-point down to the charger's resolution, then, where rows other than
   linear ones are present, lowers set-points until every row holds again, and an unbalance
   limit at the draws foretold too (:meth:`AllocationController._repair`);
6. says how long the answer holds (``valid_until_s``): until a timer or the energy taken
   could change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evflex.control.allocation.constraints import SiteRows
from evflex.control.allocation.kernels import SMALL_PROBLEM, admit_rows, greedy_fill_rows, weighted_fill_rows
from evflex.control.allocation.learning import EvLearning
from evflex.control.allocation.phase_modes import PhaseModes
from evflex.control.allocation.rows import RowSystem
from evflex.control.interface import Setpoints, SiteSnapshot, Strategy
from evflex.model.topology import Topology
from evflex.units import CURRENT_TOL_A, ENERGY_TOL_KWH, J_PER_KWH

#: The proportional strategy weighs remaining energy on a logarithmic scale, in steps of this
#: ratio (25 %), refreshed every ``order_period_s``: shares move when the energy left has
#: changed by that much, not every minute.
PROPORTIONAL_RATIO = 1.25
#: Remaining energies below this weigh as this much [kWh].
PROPORTIONAL_FLOOR_KWH = 1.0
#: Lock ends and starts of starvation looked ahead at: if the admission would not change at
#: any of them, the answer is valid beyond them.
LOOK_AHEAD = 3
#: Up to this many connectors, the admission order is sorted in plain Python.
SMALL_ORDER = 64
#: On a site of more than SMALL_ORDER connectors where a start or stop changed the admission
#: this many calls in a row, the check is tried only every REKEY_EVERY-th call (see
#: :meth:`AllocationController._restart_holds`).
REKEY_FAILS = 2
REKEY_EVERY = 8
#: Lowerings weighed per round of a repair of the unbalance at the draws foretold: those
#: that help its worst row most (see :meth:`AllocationController._repair`).
REPAIR_TRIALS = 8
#: Headroom needed on every row before a one-phase connector goes back to three phases [A].
BACK_TO_THREE_MARGIN_A = 1.0


@dataclass(frozen=True)
class ControllerParams:
    """Tuning of the allocation controller.

    Attributes
    ----------
    learn_ev_limits : bool
        Learn each EV's own current limit and phases from the meters when they are not
        given; without it, an unknown EV is assumed to take the charger's rating on all
        its phases.
    min_on_s : float
        An EV switched on keeps charging at least this long unless safety requires
        otherwise: bounds on/off cycling to one start per ``min_on_s`` [s].
    starvation_s : float
        A plugged EV that wants energy and has waited this long goes ahead of the
        strategy's order [s].
    margin_a : float
        Current held back on every row the base load flows through, against base-load
        rises between steps [A].
    learn_threshold_a : float
        An EV drawing this much below a settled set-point is taken to be at its own
        limit [A] (at least twice the charger's precision is used).
    reprobe_s : float
        A learned EV limit is tested after this long with room no other EV wants, so the EV
        can show it takes more [s].
    default_stay_s : float
        Assumed stay when the departure is unknown [s].
    default_energy_kwh : float
        Assumed remaining energy when the request is unknown [kWh].
    order_period_s : float
        LLF recomputes its order (the EVs' laxities), and proportional its weights, this
        often and whenever an EV arrives or leaves; in between they hold, so two EVs of
        nearly equal laxity do not swap places every step, nor do shares move every few
        minutes [s].
    phase_switch_dwell_s : float
        A phase-switching charger keeps a mode (one or three phases) at least this long [s].
    max_phase_switches : int
        Most switches between one and three phases in one session.
    """

    learn_ev_limits: bool = True
    min_on_s: float = 900.0
    starvation_s: float = 3600.0
    margin_a: float = 0.0
    learn_threshold_a: float = 1.0
    reprobe_s: float = 900.0
    default_stay_s: float = 8 * 3600.0
    default_energy_kwh: float = 20.0
    order_period_s: float = 900.0
    phase_switch_dwell_s: float = 900.0
    max_phase_switches: int = 4


class AllocationController:
    """Real-time allocation for one site under one :class:`Strategy`."""

    def __init__(
        self, topology: Topology, strategy: Strategy | str = Strategy.LLF, params: ControllerParams | None = None
    ):
        self.topology = topology
        self.strategy = Strategy(strategy)
        self.params = p = params or ControllerParams()
        t = topology
        self.rows = SiteRows(t, p.margin_a)
        self.learning = EvLearning(
            t, p.learn_threshold_a, p.reprobe_s, p.learn_ev_limits, foretell=t.max_unbalance_a is not None
        )
        self.modes = PhaseModes(t, p.phase_switch_dwell_s, p.max_phase_switches)
        self._onoff = ~t.modulation
        self._any_onoff = bool(self._onoff.any())
        self._inv_res = 1.0 / t.resolution_a
        self._j_per_a = J_PER_KWH / t.voltage_v  # remaining kWh -> A x s per conductor
        self._kwh_per_a_s = 1.0 / self._j_per_a
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget everything learned: as after a restart."""
        n = self.topology.n
        self._key = np.full(n, -1, dtype=np.int64)
        self._on_since = np.full(n, np.nan)
        self._last_on = np.full(n, np.nan)
        self._sp = np.zeros(n)
        self.learning.reset()
        self.modes.reset()
        self._held = np.full(n, np.nan)  # LLF's laxities or proportional's weights, as of _held_at
        self._held_at = -np.inf
        self._ev_phases_seen = np.zeros(n, dtype=np.int64)
        self._drawn = self.modes.phases.copy()
        self._rekey_fails = 0  # calls in a row where a start or stop changed the admission

    def _new_sessions(self, snap: SiteSnapshot, new: np.ndarray) -> None:
        self._key[new] = snap.session_key[new]
        self._on_since[new] = np.nan
        arr = snap.arrival_s[new]
        self._last_on[new] = np.where(np.isnan(arr), snap.time_s, arr)
        self._sp = np.where(new, 0.0, self._sp)  # a fresh array: the last answer given stays as it was
        self.learning.new_sessions(new, snap.ev_phases)
        self.modes.new_sessions(new)
        self._held_at = -np.inf  # a new EV: LLF orders, proportional weighs afresh

    def _ev_phases(self, snap: SiteSnapshot) -> np.ndarray:
        """Phases each EV draws on: told, else learned; 0 while unknown."""
        return np.where(snap.ev_phases > 0, snap.ev_phases, self.learning.phases)

    def _drawn_phases(self, snap: SiteSnapshot, refresh: bool) -> np.ndarray:
        """Conductors each EV is taken to draw on: known, learned, or all of its mode."""
        if refresh or (
            snap.ev_phases is not self._ev_phases_seen and np.count_nonzero(snap.ev_phases != self._ev_phases_seen)
        ):
            self._ev_phases_seen = snap.ev_phases
            ev_ph = self._ev_phases(snap)
            mode = self.modes.phases
            self._drawn = np.where(ev_ph > 0, np.minimum(ev_ph, mode), mode)
        return self._drawn

    # ----------------------------------------------------------------- step
    def step(self, snap: SiteSnapshot) -> Setpoints:
        topo = self.topology
        new = snap.session_key != self._key
        refresh = bool(np.count_nonzero(new))
        if refresh:
            self._new_sessions(snap, new)
        self._last_on[self._sp > 0] = snap.time_s  # set-points hold until the next call
        self._timers = [self.learning.next_forget]
        self._probed: np.ndarray | None = None  # EVs given room to test a learned limit (see _probe)
        self._admission: tuple | None = None  # set when congested (see _allocate)
        mode_before = self.modes.phases.copy()
        refresh |= self.learning.update(snap, self._sp, self.modes.full)
        drawn = self._drawn_phases(snap, refresh)

        remaining = snap.energy_remaining_kwh
        wants = snap.plugged & ~(remaining <= ENERGY_TOL_KWH)
        self._capped: np.ndarray | None = None  # the shares a finish may cut (see _energy_timer)
        if not np.count_nonzero(wants):
            current = np.zeros(topo.n)
        else:
            lb, ub = self._bounds(snap, remaining, drawn)
            if self.strategy is Strategy.UNCONTROLLED:  # a dumb charger offers its rating (or the EV's known limit)
                offer = np.fmin(topo.max_current_a, snap.ev_max_current_a)
                current = np.where(wants, np.maximum(offer, lb), 0.0)
            else:
                current = self._controlled(snap, wants, lb, ub, drawn, remaining)
        switched = self.modes.phases != mode_before
        self.learning.sent(snap.time_s, self._sp, current, switched)
        if self._probed is not None and np.count_nonzero(self._probed):  # ask again when the test reads
            lag = 0.0 if np.isnan(snap.measured_at_s) else snap.time_s - snap.measured_at_s
            self._timers.append(float(self.learning.settled_at[self._probed].max()) + lag)
        if self.learning.foretell:  # ask again when an EV's offset at a new set-point reads (see _worst)
            lag = 0.0 if np.isnan(snap.measured_at_s) else snap.time_s - snap.measured_at_s
            self._timers.append(self.learning.offset_due(current > 0, snap.time_s) + lag)
        started_or_stopped = bool(np.count_nonzero((current > 0) != (self._sp > 0)))
        self._remember(snap.time_s, current)
        valid = self._valid_until(snap, current, started_or_stopped, bool(switched.any()))
        return Setpoints(
            current_a=current, phases=self.modes.phases.copy(), valid_until_s=valid, reading_floor_a=self._floor(snap)
        )

    def _floor(self, snap: SiteSnapshot) -> np.ndarray:
        """Readings below which the meters would teach the controller something (its EV
        limit learning): the set-point less the learning threshold, where it learns; at a
        site with an unbalance limit, also the draw foretold (:meth:`EvLearning.predicted`)
        less half the threshold."""
        learning = self.learning
        learns = (self._sp > 0) & learning.enabled
        floor = self._sp - learning.threshold_a
        if self.learning.foretell:  # and the draw foretold less half the threshold (see _worst)
            floor = np.maximum(floor, learning.predicted(self._sp) - 0.5 * learning.threshold_a)
        return np.where(learns, floor, -np.inf)

    def _valid_until(self, snap: SiteSnapshot, current: np.ndarray, started_or_stopped: bool, switched: bool) -> float:
        """Until when this answer (already remembered) holds if nothing changes but the clock
        and the energy taken (see :class:`~evflex.control.interface.Setpoints`), with the
        meters then reading the settled currents at or above :meth:`_floor`: not while an EV's
        phases are still to be learned, nor after a phase switch (the next step shares on the
        new phases), nor when an EV started or stopped now and the
        admission in the new ranks (:meth:`_admission_holds`) would differ; otherwise until
        the next timer (phase-mode dwell, LLF's reordering or proportional's reweighing, a
        learned limit's expiry, an EV's energy running low: :meth:`_energy_timer`) or the
        first lock's end or start of starvation that changes the admission (a few are
        looked ahead at). The caller asks again at the first step starting at or after it."""
        on = current > 0
        if switched or np.count_nonzero(on & self.learning.phase_unknown):
            return float("-inf")
        t = snap.time_s
        if started_or_stopped and not self._restart_holds(snap):
            return float("-inf")
        timers = [*self._timers, self._energy_timer(snap, on, current)]
        if self.modes.any:
            waiting_mode = self.modes.switchable & (self.modes.switches < self.modes.max_switches)
            due = self.modes.since[waiting_mode] + self.modes.dwell_s
            timers.extend(due[due > t].tolist())
        hard = min((x for x in timers if x == x), default=float("inf"))  # NaN: no such timer
        ranks = self._rank_timers(on, t, hard)
        for at in ranks[:LOOK_AHEAD]:
            if not self._admission_holds(at):
                return at
        return min([hard, *ranks[LOOK_AHEAD : LOOK_AHEAD + 1]])

    def _energy_timer(self, snap: SiteSnapshot, on: np.ndarray, current: np.ndarray) -> float:
        """A time after the last step start at which, the EVs taking energy at these
        set-points (at most), every EV charging (``on``) still has enough left (as seen) for
        the answer to stand (and before the next): more than a step's energy at its share
        before rounding where a share above the minimum would be cut to what finishes the EV
        (:meth:`_bounds`; with rows other than linear ones, a step's energy at its most useful
        current: there a bound moves the allocation even where it does not bind), more than
        nothing elsewhere."""
        idx = np.flatnonzero(on)
        if not idx.size:
            return float("inf")
        per_a = self._drawn[idx] * (snap.period_s * self._kwh_per_a_s[idx])  # kWh a step per A
        pilot_a = current[idx]
        if self._any_onoff:  # an on/off charger's pilot is its rating
            pilot_a = np.where(self._onoff[idx], np.maximum(pilot_a, self.topology.max_current_a[idx]), pilot_a)
        need = ENERGY_TOL_KWH if self._capped is None else self._capped[idx] * per_a + ENERGY_TOL_KWH
        # the answer stands at steps 0..floor(this); NaN (energy not known): no end
        steps = float(np.fmin.reduce((snap.energy_remaining_kwh[idx] - need * (1.0 + 1e-9)) / (pilot_a * per_a)))
        return float("inf") if steps != steps else snap.time_s + snap.period_s * (math.floor(steps) + 0.5)

    def _restart_holds(self, snap: SiteSnapshot) -> bool:
        """Whether the admission holds in the ranks that this step's starts and stops give
        (:meth:`_admission_holds`). Where that failed :data:`REKEY_FAILS` calls in a row on a
        site of more than :data:`SMALL_ORDER` connectors (many EVs coming and going: the caller
        asks again at the next step anyway), the costly check is tried only every
        :data:`REKEY_EVERY`-th call and otherwise taken as failed, which is always safe."""
        n = self._rekey_fails
        large = self._admission is not None and self._admission[0].size > SMALL_ORDER
        if large and n >= REKEY_FAILS and (n - REKEY_FAILS) % REKEY_EVERY != REKEY_EVERY - 1:
            self._rekey_fails += 1
            return False
        holds = self._admission_holds(snap.time_s, rekey=snap)
        self._rekey_fails = 0 if holds else n + 1
        return holds

    def _rank_timers(self, on: np.ndarray, t: float, before: float) -> list[float]:
        """When, after ``t`` and before ``before``, a congested EV's rank changes: a lock
        ends (``min_on_s`` after its start), a waiting EV starts to starve; in time order."""
        if self._admission is None:
            return []
        p, act = self.params, self._admission[0]
        locked = self._on_since[act] + p.min_on_s
        starve = self._last_on[act] + p.starvation_s
        at = np.concatenate([locked[on[act]], starve[~on[act]]])
        return sorted(set(at[(at > t) & (at < before)].tolist()))

    def _admission_holds(self, at_s: float, rekey: SiteSnapshot | None = None) -> bool:
        """Whether the EVs admitted this step are those admitted again in the ranks they have
        at ``at_s`` (a start is locked, a stop waits, a lock ends, a wait turns to
        starvation): then, in the same circumstances, the answer is the same. ``rekey``:
        the strategy's order is taken afresh from this snapshot (it changes with starts and
        stops). Without congestion no rank matters; phase-mode second chances are not
        re-run, so with phase modes: no."""
        if self._admission is None:
            return True
        if self.modes.any:
            return False
        act, lo, hi, drawn, rem, rows, key, admitted = self._admission
        if rekey is not None:
            key = self._keys(rekey, act, hi, drawn, rem)
            self._admission = (act, lo, hi, drawn, rem, rows, key, admitted)
        order = self._order(at_s, act, key)
        if rows.linear_only and admitted[order[: np.count_nonzero(admitted)]].all():
            # loads only grow on linear rows: the admitted, all first, fit together again, and
            # each EV left out meets at least the load that shut it out before
            return True
        return bool(np.array_equal(admit_rows(rows, lo, order), admitted))

    def _bounds(self, snap: SiteSnapshot, remaining: np.ndarray, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each connector's minimum and most useful current this step [A]."""
        topo = self.topology
        lb = topo.min_current_a
        ub = self._useful(snap, remaining, drawn, self.learning.max_a)
        if self._any_onoff:  # on/off chargers: all the EV takes, or nothing. Reserve the rating
            # or the EV's known limit, never a learned one: when on, the EV draws what it can
            onoff_a = np.maximum(np.fmin(topo.max_current_a, snap.ev_max_current_a), lb)
            ub = np.where(self._onoff, onoff_a, ub)
            lb = np.where(self._onoff, ub, lb)
        return lb, ub

    def _useful(self, snap: SiteSnapshot, remaining: np.ndarray, drawn: np.ndarray, learned_a) -> np.ndarray:
        """The most current each connector can use this step [A]: its rating, the EV's known
        and ``learned_a`` limits, and what finishes its request (never below its minimum)."""
        topo = self.topology
        hw = np.fmin(np.fmin(topo.max_current_a, snap.ev_max_current_a), learned_a)
        finish_a = remaining * (self._j_per_a / snap.period_s) / np.maximum(drawn, 1)
        finish_a[np.isnan(finish_a)] = np.inf
        return np.maximum(np.minimum(hw, np.maximum(finish_a, topo.min_current_a)), topo.min_current_a)

    def _probe(self, snap: SiteSnapshot, rows: RowSystem, current, remaining, drawn) -> np.ndarray:
        """EVs whose learned limit is due for a test (:attr:`EvLearning.probing`) and that
        charge get, in the order of their connectors, the room no other EV took, up to what
        they could use without that limit (on/off chargers aside): a test that costs nobody."""
        probing = self.learning.probing & (current > 0)
        if self._any_onoff:
            probing &= ~self._onoff
        if not np.count_nonzero(probing):
            return current
        extra = np.where(probing, self._useful(snap, remaining, drawn, np.inf) - current, 0.0)
        out = greedy_fill_rows(rows, current, np.maximum(extra, 0.0), np.flatnonzero(probing))
        self._probed = out > current + CURRENT_TOL_A
        return out

    def _controlled(self, snap: SiteSnapshot, wants, lb, ub, drawn, remaining) -> np.ndarray:
        topo = self.topology
        rows = self.rows.system(drawn, snap.base_load_a, snap.row_limit_a, self._unknown(snap))
        current = ub * wants
        if not rows.feasible(current):  # congested: share
            act = wants.nonzero()[0]
            x = self._allocate(snap, act, lb[act], ub[act], drawn, remaining, rows.take(act))
            current = np.zeros(topo.n)
            current[act] = x
        current = self._probe(snap, rows, current, remaining, drawn)
        if self.modes.any:
            # the conductors as the admission left them (it may have put EVs on one phase)
            current = self._back_to_full_phases(snap, current, lb, self._drawn)
        # the shares a finish may cut; with phasor, signed or pair rows, where a row is not
        # monotone, a lower bound changes the allocation even where it does not bind
        self._capped = np.where(
            ~self._onoff & (current > lb), current if rows.linear_only else np.maximum(current, ub), 0.0
        )
        q = np.floor(current * self._inv_res + 1e-9) * topo.resolution_a
        rounded = np.where(current > 0, np.maximum(q, lb), 0.0)
        out = np.where(self._onoff, current, rounded) if self._any_onoff else rounded
        if not rows.linear_only:  # rounding down may raise a phasor, signed or pair row
            out = self._repair(
                self.rows.system(self._drawn, snap.base_load_a, snap.row_limit_a, self._unknown(snap)), out, lb
            )
        return out

    def _worst(
        self, rows: RowSystem, x: np.ndarray, unb: RowSystem | None, p: np.ndarray | None
    ) -> tuple[float, float, np.ndarray | None]:
        """The worst excess over every row at set-points ``x`` and, where an unbalance limit
        is declared, of its rows ``unb`` at the draws ``p`` the meters will read for them
        (:meth:`EvLearning.predicted`; None: the set-points, -inf), with the excesses of
        ``unb`` there."""
        wx = float(rows.excess(x).max(initial=-np.inf))
        if unb is None or p is None:
            return wx, -np.inf, None
        ex = unb.excess(p)
        return wx, float(ex.max(initial=-np.inf)), ex

    def _foretold(self, x: np.ndarray) -> np.ndarray | None:
        """The draws the meters will read for set-points ``x`` where they differ from them
        and an unbalance limit is held there too (else None)."""
        if not self.learning.foretell:
            return None
        p = self.learning.predicted(x)
        return p if np.count_nonzero(p != x) else None

    def _repair(self, rows: RowSystem, x: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """Lower set-points a resolution step at a time (to 0 below the minimum), always the
        one that most reduces the worst excess (:meth:`_worst`), until every row holds. Where
        the rows hold at the set-points and only the unbalance at the draws foretold is over,
        the :data:`REPAIR_TRIALS` lowerings that help its worst row most are weighed, on the
        unbalance rows alone (a lowering that breaks another row is mended at the next round)."""
        res = self.topology.resolution_a
        unb = rows.unbalance_only() if self.learning.foretell else None
        x = x.copy()
        for _ in range(4 * len(x) + 8):
            p = self._foretold(x)
            wx, wp, ex_p = self._worst(rows, x, unb, p)
            if max(wx, wp) <= CURRENT_TOL_A:
                return x
            cand = np.flatnonzero(x > 0)
            if not cand.size:
                break
            lower = np.where(x[cand] - res[cand] >= lb[cand] - CURRENT_TOL_A, x[cand] - res[cand], 0.0)
            if self._any_onoff:
                lower = np.where(self._onoff[cand], 0.0, lower)
            if unb is not None and p is not None:
                by_a = p[cand] - self.learning.predicted(lower, cand)
                if wx <= CURRENT_TOL_A and cand.size > REPAIR_TRIALS:
                    # only the unbalance is over, at the draws: try the lowerings that help it most
                    top = np.argsort(-unb.worst_slopes(p, cand, ex_p) * by_a, kind="stable")[:REPAIR_TRIALS]
                    cand, lower, by_a = cand[top], lower[top], by_a[top]
                after = unb.excess_lowered(p, cand, by_a).max(axis=1, initial=-np.inf)
                # the rows hold at the set-points: only the unbalance rows there may rise (the
                # others are checked again at the next round)
                at_x = unb if wx <= CURRENT_TOL_A else rows
                after = np.maximum(after, at_x.excess_lowered(x, cand, x[cand] - lower).max(axis=1, initial=-np.inf))
            else:
                after = rows.excess_lowered(x, cand, x[cand] - lower).max(axis=1, initial=-np.inf)
            best = int(np.argmin(after))
            x[cand[best]] = lower[best]
        wx, wp, _ = self._worst(rows, x, unb, self._foretold(x))
        return np.where(max(wx, wp) <= CURRENT_TOL_A, x, 0.0)

    def _back_to_full_phases(self, snap: SiteSnapshot, current, lb, drawn) -> np.ndarray:
        """One-phase connectors go back to all their phases where those fit with a margin,
        at no less than the power they get now."""
        modes = self.modes
        cand = ~modes.full & modes.may_switch(snap.time_s) & (current > 0)
        if not cand.any():
            return current
        full = self.topology.charger_phases
        ev_ph = self._ev_phases(snap)
        for c in np.flatnonzero(cand):
            trial_drawn = drawn.copy()
            trial_drawn[c] = full[c] if ev_ph[c] <= 0 else min(int(ev_ph[c]), int(full[c]))
            if trial_drawn[c] <= drawn[c]:
                continue
            rows = self.rows.system(trial_drawn, snap.base_load_a, snap.row_limit_a, self._unknown(snap))
            trial = current.copy()
            trial[c] = max(float(lb[c]), current[c] * drawn[c] / trial_drawn[c] + BACK_TO_THREE_MARGIN_A)
            this = np.arange(len(trial)) == c
            if rows.feasible(trial + BACK_TO_THREE_MARGIN_A * this):
                modes.set(this, int(full[c]), snap.time_s)
                self._drawn = drawn = trial_drawn
                current = trial
        return current

    def _unknown(self, snap: SiteSnapshot) -> np.ndarray:
        """Connectors whose EV's phases are neither told nor learned (it may draw on fewer
        than it is given)."""
        return (snap.ev_phases <= 0) & self.learning.phase_unknown

    # ----------------------------------------------------------------- ordering
    def _keys(self, snap: SiteSnapshot, act, hi, drawn, rem) -> np.ndarray:
        """The strategy's own order among the connectors ``act`` (lower = first)."""
        topo, s = self.topology, self.strategy
        t = snap.time_s
        if s is Strategy.EDF or s is Strategy.LLF:
            departure = self._departures(snap, act)
            if s is Strategy.EDF:
                return departure
            if self._refresh_held(t):
                rate_kw = hi * drawn[act] * (topo.voltage_v[act] / 1000.0)
                self._held[act] = (departure - t) - rem * 3600.0 / rate_kw
            lax = self._held[act]
            return np.where(np.isnan(lax), -np.inf, lax)  # wanting again since: first
        # equal, proportional: EVs charging keep their place, longest-running last; then the
        # EVs waiting, who charged least recently first
        on = self._sp[act] > 0
        return np.where(on, -1e12 + (t - self._on_since[act]), self._last_on[act])

    def _departures(self, snap: SiteSnapshot, act: np.ndarray) -> np.ndarray:
        """The departures of the connectors ``act``: told, else the default stay after arrival."""
        departure = snap.departure_s[act]
        unknown = np.isnan(departure)
        if unknown.any():
            arrival = snap.arrival_s[act]
            t = snap.time_s
            departure = np.where(
                unknown, np.where(np.isnan(arrival), t, arrival) + self.params.default_stay_s, departure
            )
        return departure

    def _refresh_held(self, t: float) -> bool:
        """Whether LLF's laxities or proportional's weights are due afresh at ``t`` (then
        forgotten, to be set by the caller); sets the timer of the next refresh (a call then,
        so that refreshes happen when they are due whether or not steps are skipped)."""
        due = t - self._held_at >= self.params.order_period_s
        if due:
            self._held[:] = np.nan
            self._held_at = t
        self._timers.append(self._held_at + self.params.order_period_s)
        return due

    def _weights(self, t: float, act: np.ndarray, rem: np.ndarray) -> np.ndarray:
        """Proportional's weights of the connectors ``act``: their remaining energy in log
        steps, as of the last refresh (an EV without one, e.g. wanting again since, weighs
        as it does now)."""
        if self._refresh_held(t):
            self._held[act] = _energy_weight(rem)
        w = self._held[act]
        return np.where(np.isnan(w), _energy_weight(rem), w)

    def _order(self, t: float, act: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Admission order at ``t``: locked on, then starving, then the strategy's order."""
        p = self.params
        if act.size <= SMALL_ORDER and not np.isnan(key).any():
            return _order_small(
                t, self._sp[act].tolist(), self._on_since[act].tolist(), self._last_on[act].tolist(), key.tolist(), p
            )
        on = self._sp[act] > 0
        locked = on & ((t - self._on_since[act]) < p.min_on_s)
        waiting = t - self._last_on[act]
        starving = ~on & (waiting >= p.starvation_s)
        rank = np.where(locked, 0, np.where(starving, 1, 2))
        return np.lexsort((np.where(starving, -waiting, key), rank))

    def _allocate(self, snap, act, lo, hi, drawn, remaining, rows: RowSystem):
        """Admission and sharing among the connectors ``act`` (``rows``: their columns)."""
        s = self.strategy
        rem = remaining[act]
        rem = np.where(np.isnan(rem), self.params.default_energy_kwh, rem)
        key = self._keys(snap, act, hi, drawn, rem)
        order = self._order(snap.time_s, act, key)
        admitted = admit_rows(rows, lo, order)
        self._admission = (act, lo, hi, drawn, rem, rows, key, admitted)
        if self.modes.any:
            rows, admitted = self._admit_one_phase(snap, rows, lo, order, admitted, act, drawn)
        x = np.zeros(len(act))
        idx = admitted.nonzero()[0]
        if not idx.size:
            return x
        if s is Strategy.EDF or s is Strategy.LLF:
            fill = np.argsort(key[idx], kind="stable")
            if rows.linear_only and rows.M.size <= SMALL_PROBLEM:
                # a small site: over the whole system (no column subset), the others at 0 load nothing
                return greedy_fill_rows(rows, lo * admitted, hi - lo, idx[fill])
            x[idx] = greedy_fill_rows(rows.take(idx), lo[idx], hi[idx] - lo[idx], fill)
            return x
        ra, lo_a, hi_a = rows.take(idx), lo[idx], hi[idx]
        if s is Strategy.PROPORTIONAL:  # power in proportion to remaining energy
            w = self._weights(snap.time_s, act, rem)
            x[idx] = weighted_fill_rows(ra, lo_a, hi_a, w[idx] / self._drawn[act][idx])
        else:
            x[idx] = weighted_fill_rows(ra, lo_a, hi_a, np.ones(idx.size))
        return x

    def _admit_one_phase(self, snap, rows: RowSystem, lo, order, admitted, act, drawn):
        """Second chance for EVs left out on several phases whose charger may switch to one:
        6 A on one phase fits where 6 A on three did not."""
        cand = ~admitted & self.modes.may_switch(snap.time_s)[act] & (drawn[act] > 1)
        if not cand.any():
            return rows, admitted
        one = drawn.copy()
        one[act[cand]] = 1
        rows1 = self.rows.system(one, snap.base_load_a, snap.row_limit_a, self._unknown(snap)).take(act)
        trial = rows.splice(cand, rows1)
        # in the same order, with the admitted ones first at their minimum
        base_order = np.concatenate([order[admitted[order]], order[cand[order]]])
        second = admit_rows(trial, lo, base_order) & cand
        if not second.any():
            return rows, admitted
        switched = np.zeros(self.topology.n, dtype=bool)
        switched[act[second]] = True
        self.modes.set(switched, 1, snap.time_s)
        self._drawn = np.where(switched, 1, self._drawn)
        return rows.splice(second, rows1), admitted | second

    def _remember(self, t: float, current: np.ndarray) -> None:
        on = current > 0
        changed = current != self._sp
        if np.count_nonzero(changed):
            starting = on & (self._sp <= 0)
            self._on_since[starting] = t
            self._on_since[~on] = np.nan
        self._sp = current
        self._last_on[on] = t


def _order_small(t: float, sp: list, on_since: list, last_on: list, key: list, p: ControllerParams) -> np.ndarray:
    """:meth:`AllocationController._order` in plain Python (a stable sort by rank, then the
    strategy's key or the time waited): faster for a few connectors; ``key`` without NaN."""
    keys = []
    for s_a, since, last, k in zip(sp, on_since, last_on, key):
        if s_a > 0:
            keys.append((0, k) if t - since < p.min_on_s else (2, k))
        else:
            waiting = t - last
            keys.append((1, -waiting) if waiting >= p.starvation_s else (2, k))
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _energy_weight(rem_kwh: np.ndarray) -> np.ndarray:
    """Remaining energy rounded to a step of :data:`PROPORTIONAL_RATIO` on a log scale [kWh]."""
    level = np.round(np.log(np.maximum(rem_kwh, PROPORTIONAL_FLOOR_KWH)) / np.log(PROPORTIONAL_RATIO))
    return np.exp(level * np.log(PROPORTIONAL_RATIO))


def make_controller(
    topology: Topology, strategy: Strategy | str, params: ControllerParams | None = None
) -> AllocationController:
    """The controller for ``strategy`` on ``topology``."""
    return AllocationController(topology, strategy, params)
