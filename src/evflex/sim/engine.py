"""The time-stepped simulator: drives a controller through the port, applies its
set-points to the physics, records everything.

What belongs here: the step loop and its order of concerns, each in its own module or
function: plug-in/out events (:mod:`evflex.sim.plugs`), what the controller sees
(:mod:`evflex.sim.sensing`), the charger and battery physics (:mod:`evflex.sim.physics`),
and the record (:mod:`evflex.sim.results`). Vectorised over connectors; the loop runs over
steps and skips ahead whenever no plugged EV wants energy, and it does not call the
controller on steps where nothing it sees can change its answer (its set-points state how
long they hold). Row loads, KPIs and checks are computed afterwards in bulk.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evflex.control.allocation.controller import make_controller
from evflex.control.interface import Controller, Setpoints, SiteSnapshot, Strategy
from evflex.errors import NoRoomWarning, ValidationError, problem
from evflex.model.topology import Topology, compile_topology
from evflex.sim import sensing
from evflex.sim.physics import TAPER_MARGIN, ChargerBank, taper_limit_a
from evflex.sim.plugs import Plugs
from evflex.sim.results import RunRecord, SimulationResult
from evflex.sim.scenario import Scenario
from evflex.sim.steady import tapering_currents
from evflex.units import CURRENT_TOL_A, ENERGY_TOL_KWH, J_PER_KWH, N_PHASES

ProgressFn = Callable[[int, int], None]
#: Per-connector values (steps x connectors) a run may record: four arrays of them are kept
#: (about 13 bytes a value), and the post-run checks make a few float64 copies.
MAX_RECORDED_VALUES = 150_000_000
#: Longest steady stretch computed at once [steps] (bounds its memory).
MAX_STRETCH = 4096
#: Answers of the EVs' response to a pilot kept at most (while nothing else changes).
MAX_KEPT_TARGETS = 64


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy: snapshots share it between steps, no controller may change it."""
    c = a.copy()
    c.flags.writeable = False
    return c


def window_sessions(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, int]:
    """Sessions present during the simulated window: their indices, whether each is cut by
    the window's start or end (truncated), and how many sessions lie wholly outside."""
    cfg, s = scenario.simulation, scenario.sessions
    present = (s.arrival_s < cfg.end_s) & (s.departure_s > cfg.start_s)
    sel = np.flatnonzero(present)
    cut = (s.arrival_s[sel] < cfg.start_s) | (s.departure_s[sel] > cfg.end_s)
    return sel, cut, int((~present).sum())


def simulate(
    scenario: Scenario,
    strategy: Strategy | str | None = None,
    *,
    controller: Controller | None = None,
    progress: ProgressFn | None = None,
    check: bool = True,
) -> SimulationResult:
    """Simulate ``scenario`` under ``strategy`` (default: the scenario's).

    Parameters
    ----------
    controller : Controller, optional
        Any object implementing the port; by default the allocation controller of
        ``strategy`` with the scenario's controller parameters.
    progress : callable(done_steps, total_steps), optional
    check : bool
        Run the invariant checks and raise :class:`~evflex.errors.InvariantError` if the
        run broke one (limits only for controlled strategies).
    """
    cfg = scenario.simulation
    strat = Strategy(strategy) if strategy is not None else cfg.strategy
    topo = compile_topology(scenario.site)
    values = cfg.n_steps * topo.n
    if values > MAX_RECORDED_VALUES:
        raise ValidationError(
            [
                problem(
                    "simulation",
                    f"{cfg.n_steps} steps x {topo.n} connectors = "
                    f"{values / 1e6:.0f} million recorded values, more than the "
                    f"{MAX_RECORDED_VALUES / 1e6:.0f} million a run keeps in memory: shorten "
                    "days, lengthen period_s or split the site",
                )
            ]
        )
    ctrl = controller or make_controller(topo, strat, scenario.controller)
    wall0 = time.perf_counter()
    rec = _run(scenario, topo, ctrl, progress)
    rec.wall_s = time.perf_counter() - wall0
    result = SimulationResult(scenario=scenario, topology=topo, strategy=strat, record=rec)
    if check:
        result.check_invariants(raise_on_error=True)
    return result


@dataclass
class _Seen:
    """What the controller is shown at each step (precomputed where it is a series)."""

    base_a: np.ndarray  # (N, 3) the site meter's base load
    limit_a: np.ndarray  # (N,) the connection limit as announced
    delay_steps: int


def _warn_window(plugs: Plugs, truncated: np.ndarray, outside: int, period_s: float) -> None:
    if outside:
        warnings.warn(f"{outside} session(s) outside the simulated window were skipped", stacklevel=4)
    if truncated.any():
        warnings.warn(
            f"{int(truncated.sum())} session(s) cut by the window's start or end are simulated inside it "
            "and left out of the served-energy KPIs",
            stacklevel=4,
        )
    if plugs.short.any():
        warnings.warn(
            f"{int(plugs.short.sum())} session(s) shorter than one {period_s:g} s step once aligned to the steps "
            "get no energy",
            stacklevel=4,
        )


def _run(scenario: Scenario, topo: Topology, ctrl: Controller, progress: ProgressFn | None) -> RunRecord:
    cfg = scenario.simulation
    dt = float(cfg.period_s)
    N, n = cfg.n_steps, topo.n
    times = cfg.start_s + dt * np.arange(N)
    static_limit = scenario.site.phase_limit_a
    actual = sensing.actual_series(scenario.base_load, scenario.pv, scenario.connection_limit, static_limit, times)
    lag = sensing.delay_steps(cfg.metering_delay_s, dt)
    seen = _Seen(
        base_a=sensing.measured_base_a(scenario.base_load, scenario.pv, times, lag, dt),
        limit_a=sensing.announced_limit_a(scenario.connection_limit, static_limit, times, dt),
        delay_steps=lag,
    )
    if sensing.no_ev_can_charge(topo, actual):
        warnings.warn(
            f"no EV can ever charge: the connection leaves less than the {float(topo.min_current_a.min()):g} A "
            "minimum current on every phase at every step (limit, less the base load)",
            NoRoomWarning,
            stacklevel=3,
        )

    sel, truncated, outside = window_sessions(scenario)
    S = scenario.sessions.take(sel)
    plugs = Plugs(S, topo, cfg.start_s, dt, N, cfg.ev_limits_known, np.random.default_rng(cfg.seed))
    _warn_window(plugs, truncated, outside, dt)
    bank = ChargerBank(topo.activation_delay_s, topo.ramp_a_per_s, topo.phase_switch_s)
    rec = RunRecord.allocate(N, n, times, actual, seen.base_a, seen.limit_a)
    loop = _Loop(topo, ctrl, plugs, bank, rec, seen, dt, cfg.taper_soc)
    k, last_report = 0, 0
    while k < N:
        k = loop.step(k)
        if progress is not None and k - last_report >= 1000:
            progress(min(k, N), N)
            last_report = k
    if progress is not None:
        progress(N, N)
    plugs.finish()
    rec.sessions = dict(
        table=S,
        index=sel,
        arr_step=plugs.arr_step,
        dep_step=plugs.dep_step,
        request=plugs.request,
        delivered=plugs.delivered,
        finish_s=plugs.finish_s,
        phases=plugs.phases,
        known_max_a=plugs.known_max,
        truncated=truncated,
    )
    return rec


def _next_change(seen: _Seen) -> np.ndarray:
    """(N,) for each step, the next step at which what the controller is shown of the site
    (base load, limit) changes (N when it does not)."""
    N = len(seen.limit_a)
    if N < 2:
        return np.full(N, N)
    diff = np.any(seen.base_a[1:] != seen.base_a[:-1], axis=1) | (seen.limit_a[1:] != seen.limit_a[:-1])
    at = np.append(np.flatnonzero(diff) + 1, N)
    return at[np.searchsorted(at, np.arange(N), side="right")]


class _Loop:
    """One simulated step after another: events, what the controller sees, its set-points,
    the physics, the record."""

    def __init__(
        self,
        topo: Topology,
        ctrl: Controller,
        plugs: Plugs,
        bank: ChargerBank,
        rec: RunRecord,
        seen: _Seen,
        dt: float,
        taper_soc: float,
    ):
        self.topo, self.ctrl, self.plugs, self.bank, self.rec, self.seen = topo, ctrl, plugs, bank, rec, seen
        self.dt, self.taper_soc = dt, taper_soc
        n = topo.n
        self.min_a = topo.min_current_a - CURRENT_TOL_A
        self.onoff = ~topo.modulation
        self.any_onoff = bool(self.onoff.any())
        self.kwh_per_a = topo.voltage_v * (dt / J_PER_KWH)  # per conductor, per step
        self.drawn_prev = np.zeros(n, dtype=np.int64)
        self.no_steps = np.zeros((0, n))  # a steady stretch of no steps
        self.row_limit: tuple[float, np.ndarray] | None = None  # the rows' limits for a connection limit
        self.inc_key: bytes | None = None
        self.inc = np.zeros((n, N_PHASES))
        # each connector's row of the incidence for 0 .. 3 conductors drawn (rows are independent)
        self.inc_rows = np.stack([topo.incidence(np.full(n, d)) for d in range(N_PHASES + 1)], axis=1)
        self.targets: tuple[bytes, dict[tuple[str, bytes], np.ndarray]] = (b"", {})  # see _target_of
        self.fixed: tuple[np.ndarray, ...] = ()
        self.events = True
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # readings at past step boundaries
        self.next_seen_change = _next_change(seen)

    # ------------------------------------------------------------------ events
    def _plug_events(self, k: int) -> None:
        if k < self.plugs.next_event_step():
            return
        changed = self.plugs.advance(k)
        if np.count_nonzero(changed):
            self.bank.clear(changed)
            self.drawn_prev[changed] = 0
            self.events = True

    def _idle(self, k: int) -> int:
        """No plugged EV wants energy: everything rests until the next arrival."""
        self.bank.clear(np.ones(self.topo.n, dtype=bool))
        self.drawn_prev[:] = 0
        self.history.clear()
        nxt = self.plugs.next_arrival_step()
        N = len(self.rec.times_s)
        return max(k + 1, min(N if nxt is None else nxt, N))

    # ------------------------------------------------------------------ sensing
    def _reading(self) -> np.ndarray:
        """What the connector meters show: the currents at the step boundary ``delay_steps`` back."""
        if self.seen.delay_steps == 0:
            return self.inc * self.bank.current_a[:, None]
        if len(self.history) <= self.seen.delay_steps:
            return np.zeros((self.topo.n, N_PHASES))
        cur, inc = self.history[-1 - self.seen.delay_steps]
        return inc * cur[:, None]

    def _snapshot(self, k: int, busy: np.ndarray) -> SiteSnapshot:
        p = self.plugs
        if self.events:  # what changes only with arrivals and departures: fresh read-only copies
            self.fixed = tuple(
                _frozen(a) for a in (p.plugged, p.sess, p.arrival, p.departure, p.ev_known_max, p.ev_known_ph)
            )
            self.events = False
        t = float(self.rec.times_s[k])
        return SiteSnapshot(
            time_s=t,
            period_s=self.dt,
            plugged=self.fixed[0],
            session_key=self.fixed[1],
            arrival_s=self.fixed[2],
            departure_s=self.fixed[3],
            energy_remaining_kwh=p.energy_seen_kwh(busy),
            ev_max_current_a=self.fixed[4],
            ev_phases=self.fixed[5],
            measured_current_a=self._reading(),
            base_load_a=self.seen.base_a[k].copy(),
            row_limit_a=self._row_limit(float(self.seen.limit_a[k])),
            measured_at_s=t - self.seen.delay_steps * self.dt,
        )

    def _row_limit(self, connection_a: float) -> np.ndarray:
        """Each row's limit when the connection's is ``connection_a`` [A] (a fresh copy of the
        one kept while it holds)."""
        if self.row_limit is None or self.row_limit[0] != connection_a:
            row_limit = self.topo.row_limit_a.copy()
            row_limit[self.topo.connection_rows] = connection_a
            self.row_limit = (connection_a, row_limit)
        return self.row_limit[1].copy()

    # ------------------------------------------------------------------ physics
    def _target_of(self, busy: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """What each EV draws under a pilot: its own limit, the battery taper, the offset.
        Each pilot's answer is worked out once (a read-only array) and kept while the limits,
        offsets and busy connectors stay the same."""
        p = self.plugs
        cap = p.evmax
        if p.has_battery and not float(np.where(busy, p.soc, -np.inf).max()) < self.taper_soc - TAPER_MARGIN:
            cap = taper_limit_a(p.soc, p.evmax, self.taper_soc)  # (below the taper the limit is the EV's own)
        min_a, offset = self.min_a, p.ev_offset
        state = cap.tobytes() + busy.tobytes() + offset.tobytes()
        if state != self.targets[0] or len(self.targets[1]) > MAX_KEPT_TARGETS:
            self.targets = (state, {})
        known = self.targets[1]

        def target_of(pilot_a: np.ndarray) -> np.ndarray:
            key = (pilot_a.dtype.str, pilot_a.tobytes())
            tgt = known.get(key)
            if tgt is None:
                tgt = np.where(busy & (pilot_a >= min_a), np.maximum(np.minimum(pilot_a, cap) - offset, 0.0), 0.0)
                tgt.flags.writeable = False
                known[key] = tgt
            return tgt

        return target_of

    def step(self, k: int) -> int:
        """Simulate step ``k`` (and the steady steps after it); returns the next step to simulate."""
        self._plug_events(k)
        busy = self.plugs.busy()
        if not np.count_nonzero(busy):
            return self._idle(k)
        sp = self.ctrl.step(self._snapshot(k, busy))
        end, drawn, target = self._physics(k, sp, busy)
        skip, cur, energy = self._steady_steps(k, sp, busy, end, drawn, target)
        if skip:
            self._fast_forward(k + 1, np.asarray(sp.current_a, dtype=np.float64), cur, energy, drawn)
        return k + 1 + skip

    def _physics(self, k: int, sp: Setpoints, busy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply the set-points to the chargers for step ``k`` and book the energy; returns the
        currents at the end of the step, the conductors drawn and what the EVs aim for."""
        sp_a = np.asarray(sp.current_a, dtype=np.float64)
        p, bank, topo = self.plugs, self.bank, self.topo
        drawn = np.minimum(p.ph, sp.phases) * p.plugged
        key = drawn.tobytes()
        if key != self.inc_key:
            self.inc_key, self.inc = key, self._incidence(drawn)
        switched = None  # the same conductors as before: no phase switch
        if key != self.drawn_prev.tobytes():
            switched = (drawn != self.drawn_prev) & (self.drawn_prev > 0) & (drawn > 0)
        pilot = np.where(self.onoff & (sp_a > 0), topo.max_current_a, sp_a) if self.any_onoff else sp_a
        target_of = self._target_of(busy)
        t0 = float(self.rec.times_s[k])
        bank.command(t0, pilot, switched, target_of)
        avg, end = bank.advance(t0, self.dt, target_of)
        frac = p.deliver(avg * drawn * self.kwh_per_a, busy, t0, self.dt)
        if isinstance(frac, np.ndarray) and np.count_nonzero(frac < 1.0):  # the need met inside the step: the EV stops
            avg = avg * frac
            end = np.where(frac < 1.0, 0.0, end)
            bank.current_a = end
        self.drawn_prev = drawn
        self._remember_reading(end)
        self.rec.store(k, sp_a, avg, end, drawn, called=True)
        return end, drawn, target_of(bank.pilot_a)

    def _incidence(self, drawn: np.ndarray) -> np.ndarray:
        """(n, 3) the grid phases each connector's current flows on (:meth:`Topology.incidence`)."""
        return self.inc_rows[np.arange(self.topo.n), np.clip(drawn, 0, N_PHASES)]

    def _remember_reading(self, end: np.ndarray) -> None:
        if self.seen.delay_steps:
            self.history.append((end.copy(), self.inc))
            del self.history[: -self.seen.delay_steps - 1]

    # ------------------------------------------------------------------ steady stretches
    def _steady_steps(
        self, k: int, sp: Setpoints, busy: np.ndarray, end: np.ndarray, drawn: np.ndarray, target: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """The steps after ``k`` that are certain to run under the same set-points: chargers
        settled, the controller's answer valid, nothing arriving, leaving, finishing or
        changing in what the controller sees, no reading below the controller's floor.
        Returns their number (0 when none), each one's currents (count, n) [A] and the
        energy each EV takes in each (count, n) [kWh]."""
        none = (0, self.no_steps, self.no_steps)
        N = len(self.rec.times_s)
        t_next = float(self.rec.times_s[k]) + self.dt
        if sp.valid_until_s <= t_next or k + 2 >= N or self.bank.queued or self.seen.delay_steps:
            return none
        p = self.plugs
        horizon = min(N, int(self.next_seen_change[k]), p.next_event_step()) - (k + 1)
        if math.isfinite(sp.valid_until_s):
            horizon = min(horizon, math.ceil((sp.valid_until_s - t_next) / self.dt))  # steps starting before it
        horizon = min(horizon, MAX_STRETCH)
        if horizon < 2 or np.abs(end - target).max() > 1e-9:
            return none
        kwh = drawn * self.kwh_per_a
        drawing = busy & (end > 0)
        if np.count_nonzero(drawing):  # the others under no pilot: they draw 0
            pilot = np.where(drawing, self.bank.pilot_a, 0.0)
            cur = tapering_currents(p.soc, p.battery, p.eff, p.evmax, pilot, p.ev_offset, kwh, self.taper_soc, horizon)
        else:
            cur = np.zeros((horizon, self.topo.n))
        if sp.reading_floor_a is None:
            moved = np.logical_or.reduce(np.abs(cur - end) > 1e-9, axis=1)
        else:
            moved = np.logical_or.reduce(cur < sp.reading_floor_a - 1e-9, axis=1)
        e = cur * kwh
        left = p.remaining - np.add.accumulate(e, axis=0)
        # an EV whose need is met inside a step goes through the physics (the controller's
        # answer covers the energy taken at its set-points: its valid_until_s says how long)
        stop = moved | np.logical_or.reduce(busy & (left < 1e-6 * e + 2.0 * ENERGY_TOL_KWH), axis=1)
        count = int(stop.argmax())
        if not stop[count]:
            count = horizon
        return (count, cur[:count], e[:count]) if count >= 2 else none

    def _fast_forward(self, k0: int, sp_a: np.ndarray, cur: np.ndarray, energy: np.ndarray, drawn: np.ndarray) -> None:
        """Steps ``k0 ..`` run under the last set-points with currents ``cur`` and energy
        ``energy`` (count, n) [kWh]: record them and book their energy."""
        e = energy.sum(axis=0)
        p = self.plugs
        p.remaining -= e
        p.seen_left = np.maximum(p.seen_left - e, 0.0)
        if p.has_battery:
            p.soc += e * p.eff / p.battery
        self.bank.current_a = cur[-1].copy()
        self.rec.store_many(k0, sp_a, cur, drawn)
