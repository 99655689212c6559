"""The real-time allocation controller: one object per site, used unchanged by the
simulator and by live operation.

Each step it
1. works out what every plugged EV can take: the charger rating, the EV's own limit when
   known or learned from what it actually draws, the phases it draws on, and the current
   that would finish its request within the step;
2. admits, in priority order, the EVs that can each get at least their minimum current
   (6 A, or the full rating for on/off chargers) without any constraint row going over:
   EVs switched on less than ``min_on_s`` ago keep their place (no contactor cycling),
   EVs kept waiting for ``starvation_s`` or more come next (nobody starves), then the
   strategy's own order;
   an EV left out on three phases whose charger can switch to one phase gets a second
   chance there (6 A on one phase instead of three), for at least ``min_on_s``;
3. shares the remaining capacity among the admitted EVs by the strategy's rule;
4. rounds each set-point down to the charger's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evflex.control.allocation.kernels import admit, greedy_fill, weighted_fill
from evflex.control.interface import Setpoints, SiteSnapshot, Strategy
from evflex.model.topology import Topology
from evflex.units import CURRENT_TOL_A, ENERGY_TOL_KWH, J_PER_KWH

#: The proportional strategy weighs remaining energy in steps of this much [kWh].
PROPORTIONAL_STEP_KWH = 0.5


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
        An EV drawing this much below a steady set-point is taken to be at its own
        limit [A] (at least twice the charger's precision is used).
    reprobe_s : float
        A learned EV limit is forgotten after this long, so the EV can show it takes more [s].
    default_stay_s : float
        Assumed stay when the departure is unknown [s].
    default_energy_kwh : float
        Assumed remaining energy when the request is unknown [kWh].
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
    phase_switch_dwell_s: float = 900.0
    max_phase_switches: int = 4


class AllocationController:
    """Real-time allocation for one site under one :class:`Strategy`."""

    def __init__(
        self, topology: Topology, strategy: Strategy | str = Strategy.LLF, params: ControllerParams | None = None
    ):
        self.topology = topology
        self.strategy = Strategy(strategy)
        self.params = params or ControllerParams()
        t = topology
        self._settle_s = t.activation_delay_s + t.max_current_a / np.maximum(t.ramp_a_per_s, 1e-9)
        self._learn_thr = np.maximum(self.params.learn_threshold_a, 2.0 * t.precision_a)
        self._onoff = ~t.modulation
        self._any_onoff = bool(self._onoff.any())
        self._base_rows = t.row_base
        self._row_phase = t.row_phase
        self._inv_res = 1.0 / t.resolution_a
        self._j_per_a = J_PER_KWH / t.voltage_ln_v  # remaining kWh -> A x s per phase
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget everything learned: as after a restart."""
        n = self.topology.n
        self._key = np.full(n, -1, dtype=np.int64)
        self._on_since = np.full(n, np.nan)
        self._last_on = np.full(n, np.nan)
        self._sp = np.zeros(n)
        self._sp_time = np.full(n, -np.inf)  # when the current set-point was given
        self._learned_max = np.full(n, np.inf)
        self._learned_at = np.full(n, np.nan)
        self._next_forget = np.inf
        self._settled_at = np.full(n, -np.inf)  # when the current set-point has taken effect
        self._learned_phases = np.zeros(n, dtype=np.int64)
        self._mode_phases = self.topology.charger_phases.copy()
        self._mode_since = np.full(n, -np.inf)
        self._switchable = self.topology.phase_switching & (self.topology.charger_phases > 1)
        self._any_switchable = bool(self._switchable.any())
        self._phase_unknown = np.zeros(n, dtype=bool)
        self._any_phase_unknown = False
        self._ev_phases_seen = np.zeros(n, dtype=np.int64)
        self._drawn = self._mode_phases.copy()
        self._cap_key: tuple | None = None
        self._cap: np.ndarray | None = None
        self._M_key: bytes | None = None
        self._M: np.ndarray | None = None

    def _new_sessions(self, snap: SiteSnapshot, new: np.ndarray) -> None:
        self._key[new] = snap.session_key[new]
        self._on_since[new] = np.nan
        arr = snap.arrival_s[new]
        self._last_on[new] = np.where(np.isnan(arr), snap.time_s, arr)
        self._sp[new] = 0.0
        self._sp_time[new] = -np.inf
        self._learned_max[new] = np.inf
        self._learned_at[new] = np.nan
        self._learned_phases[new] = 0
        self._phase_unknown[new] = snap.ev_phases[new] <= 0
        self._any_phase_unknown = bool(self._phase_unknown.any())
        self._settled_at[new] = -np.inf
        self._update_next_forget()
        self._mode_phases[new] = self.topology.charger_phases[new]
        self._mode_since[new] = -np.inf

    def _learn(self, snap: SiteSnapshot) -> bool:
        """Learn EV limits from meter readings against settled set-points. Returns whether
        the learned phase counts changed."""
        if not self.params.learn_ev_limits:
            return False
        t = snap.time_s
        if t >= self._next_forget:  # the oldest learned limit has expired
            forget = (t - self._learned_at) >= self.params.reprobe_s
            self._learned_max[forget] = np.inf
            self._learned_at[forget] = np.nan
            self._update_next_forget()
        sp = self._sp  # a connector unplugged since has a new session key and sp 0
        steady = (sp > 0) & (t >= self._settled_at)
        if not np.count_nonzero(steady):
            return False
        meas = snap.measured_current_a
        drawn = meas.max(axis=1)
        limited = steady & (drawn < sp - self._learn_thr)
        if np.count_nonzero(limited):
            limited &= np.isnan(snap.ev_max_current_a)
            self._learned_max[limited] = drawn[limited] + 0.5 * self._learn_thr[limited]
            self._learned_at[limited] = t
            self._update_next_forget()
        if not self._any_phase_unknown:
            return False
        clear = steady & self._phase_unknown & (drawn >= 2.0)
        if np.count_nonzero(clear):
            clear &= (snap.ev_phases <= 0) & (self._mode_phases == self.topology.charger_phases)
            on = meas[clear] > np.maximum(0.5, 0.25 * drawn[clear])[:, None]
            self._learned_phases[clear] = on.sum(axis=1)
            self._phase_unknown[clear] = False
            self._any_phase_unknown = bool(self._phase_unknown.any())
            return True
        return False

    def _update_next_forget(self) -> None:
        known = self._learned_at[~np.isnan(self._learned_at)]
        self._next_forget = float(known.min()) + self.params.reprobe_s if known.size else np.inf

    # ----------------------------------------------------------------- step
    def step(self, snap: SiteSnapshot) -> Setpoints:
        topo, p = self.topology, self.params
        new = snap.session_key != self._key
        refresh = bool(np.count_nonzero(new))
        if refresh:
            self._new_sessions(snap, new)
        refresh |= self._learn(snap)
        if self._any_switchable:  # switched connectors try their full phases again once unlocked
            back = (self._mode_phases < topo.charger_phases) & ((snap.time_s - self._mode_since) >= p.min_on_s)
            if np.count_nonzero(back):
                self._set_mode(back, topo.charger_phases, snap.time_s)
                refresh = True
        if refresh or (
            snap.ev_phases is not self._ev_phases_seen and np.count_nonzero(snap.ev_phases != self._ev_phases_seen)
        ):
            self._ev_phases_seen = snap.ev_phases
            ev_ph = np.where(snap.ev_phases > 0, snap.ev_phases, self._learned_phases)
            self._drawn = np.where(ev_ph > 0, np.minimum(ev_ph, self._mode_phases), self._mode_phases)
        drawn = self._drawn

        remaining = snap.energy_remaining_kwh
        wants = snap.plugged & ~(remaining <= ENERGY_TOL_KWH)
        if not np.count_nonzero(wants):
            current = np.zeros(topo.n)
            self._remember(snap.time_s, current)
            return Setpoints(current_a=current, phases=self._mode_phases.copy())
        lb = topo.min_current_a
        hw = np.fmin(np.fmin(topo.max_current_a, snap.ev_max_current_a), self._learned_max)
        finish_a = remaining * (self._j_per_a / snap.period_s) / drawn
        finish_a[np.isnan(finish_a)] = np.inf
        ub = np.maximum(np.minimum(hw, np.maximum(finish_a, lb)), lb)
        if self._any_onoff:  # on/off chargers: all the EV takes, or nothing. Reserve the rating
            # or the EV's known limit, never a learned one: when on, the EV draws what it can
            onoff_a = np.maximum(np.fmin(topo.max_current_a, snap.ev_max_current_a), lb)
            ub = np.where(self._onoff, onoff_a, ub)
            lb = np.where(self._onoff, ub, lb)
        if self.strategy is Strategy.UNCONTROLLED:  # a dumb charger offers its rating
            current = np.where(wants, np.maximum(topo.max_current_a, lb), 0.0)
        else:
            current = ub * wants
            M = self._matrix(drawn)
            cap = self._capacity(snap)
            if np.count_nonzero(M @ current > cap + CURRENT_TOL_A):  # congested: share
                act = wants.nonzero()[0]
                x, one = self._allocate(snap, act, lb[act], ub[act], drawn, remaining, M[:, act], cap)
                current = np.zeros(topo.n)
                current[act] = x
                if one is not None:  # switched to one phase to fit
                    self._set_mode(act[one], 1, snap.time_s)
                    self._drawn[act[one]] = 1
            q = np.floor(current * self._inv_res + 1e-9) * topo.resolution_a
            rounded = np.where(current > 0, np.maximum(q, lb), 0.0)
            current = np.where(self._onoff, current, rounded) if self._any_onoff else rounded
        self._remember(snap.time_s, current)
        return Setpoints(current_a=current, phases=self._mode_phases.copy())

    def _capacity(self, snap: SiteSnapshot) -> np.ndarray:
        """Room on each row for the EVs: its limit less the base load flowing through it."""
        key = (snap.row_limit_a.tobytes(), snap.base_load_a.tobytes())
        if key != self._cap_key:
            base = (snap.base_load_a[self._row_phase] + self.params.margin_a) * self._base_rows
            self._cap_key, self._cap = key, snap.row_limit_a - base
        assert self._cap is not None
        return self._cap

    def _set_mode(self, where, phases, t: float) -> None:
        mode = self._mode_phases.copy()
        mode[where] = phases if np.isscalar(phases) else np.asarray(phases)[where]
        changed = mode != self._mode_phases
        self._mode_since[changed] = t
        self._mode_phases = mode

    def _matrix(self, drawn: np.ndarray) -> np.ndarray:
        key = drawn.tobytes()
        if key != self._M_key:
            self._M_key, self._M = key, self.topology.matrix(drawn)
        assert self._M is not None
        return self._M

    def _allocate(self, snap, act, lo, hi, drawn, remaining, M, cap):
        """Admission and sharing among the connectors ``act`` (M: their columns)."""
        topo, p = self.topology, self.params
        t = snap.time_s
        # ---- strategy keys (lower = first)
        s = self.strategy
        rem = remaining[act]
        rem = np.where(np.isnan(rem), p.default_energy_kwh, rem)
        if s is Strategy.EDF or s is Strategy.LLF:
            departure = snap.departure_s[act]
            unknown = np.isnan(departure)
            if unknown.any():
                arrival = snap.arrival_s[act]
                departure = np.where(unknown, np.where(np.isnan(arrival), t, arrival) + p.default_stay_s, departure)
            if s is Strategy.EDF:
                key = departure
            else:
                rate_kw = hi * drawn[act] * (topo.voltage_ln_v / 1000.0)
                key = (departure - t) - rem * 3600.0 / rate_kw
        else:  # equal, proportional: round-robin on when each last charged
            key = self._last_on[act]

        # ---- admission order: locked on, then starving, then the strategy's order
        on = self._sp[act] > 0
        locked = on & ((t - self._on_since[act]) < p.min_on_s)
        waiting = t - self._last_on[act]
        starving = ~on & (waiting >= p.starvation_s)
        rank = np.where(locked, 0, np.where(starving, 1, 2))
        order = np.lexsort((np.where(starving, -waiting, key), rank))
        admitted = admit(M, lo, cap, order)
        one = None
        if self._any_switchable:
            M, admitted, one = self._admit_one_phase(M, lo, cap, order, admitted, act, drawn)

        x = np.zeros(len(act))
        idx = admitted.nonzero()[0]
        if not idx.size:
            return x, one
        Ma, lo_a, hi_a = M[:, idx], lo[idx], hi[idx]
        if s is Strategy.EDF or s is Strategy.LLF:
            x[idx] = greedy_fill(Ma, lo_a, hi_a - lo_a, cap, np.argsort(key[idx], kind="stable"))
        elif s is Strategy.PROPORTIONAL:  # power in proportion to remaining energy, in steps of
            # PROPORTIONAL_STEP_KWH: set-points move when the shares do, not every minute
            steps = np.maximum(np.round(rem[idx] / PROPORTIONAL_STEP_KWH), 1.0)
            x[idx] = weighted_fill(Ma, lo_a, hi_a, cap, steps / drawn[act][idx])
        else:
            x[idx] = weighted_fill(Ma, lo_a, hi_a, cap, np.ones(idx.size))
        return x, one

    def _admit_one_phase(self, M, lo, cap, order, admitted, act, drawn):
        """Second chance for EVs left out on several phases whose charger can switch to one:
        6 A on one phase fits where 6 A on three did not."""
        topo = self.topology
        cand = ~admitted & self._switchable[act] & (drawn[act] > 1)
        if not cand.any():
            return M, admitted, None
        c = act[cand]
        M1 = M.copy()
        M1[:, cand] = topo.row_members[:, c] & (topo.row_phase[:, None] == topo.phase_map[c, 0][None, :])
        rest = cap - M @ (lo * admitted)
        in_order = order[cand[order]]
        second = admit(M1, lo, rest, in_order)
        if not second.any():
            return M, admitted, None
        M2 = M.copy()
        M2[:, second] = M1[:, second]
        return M2, admitted | second, second

    def _remember(self, t: float, current: np.ndarray) -> None:
        on = current > 0
        changed = current != self._sp
        if np.count_nonzero(changed):
            self._sp_time = np.where(changed, t, self._sp_time)
            self._settled_at = self._sp_time + self._settle_s
            starting = on & (self._sp <= 0)
            self._on_since[starting] = t
            self._on_since[~on] = np.nan
        self._sp = current
        self._last_on[on] = t


def make_controller(
    topology: Topology, strategy: Strategy | str, params: ControllerParams | None = None
) -> AllocationController:
    """The controller for ``strategy`` on ``topology``."""
    return AllocationController(topology, strategy, params)
