"""What a run produced: the raw record (arrays), and the tables and KPIs built from it.

Time series columns (one row per step, timestamps in the scenario's zone):

- ``l1_a, l2_a, l3_a``: current at the grid connection on each phase, EVs settled at the
  end of the step plus the base load at the step's start [A]: the quantity held under
  ``limit_a`` (magnitudes of phasor sums where line-to-line EVSEs load a phase);
- ``ev_l1_a`` .. : the EVs' part; ``base_l1_a`` ..: building minus PV;
- ``unbalance_a``: the largest difference between the three phase currents [A];
- ``limit_a``: the connection limit per phase as it is; ``limit_seen_a``: as the controller
  saw it (announced) [A];
- ``site_power_kw``, ``ev_power_kw``, ``building_power_kw``, ``pv_power_kw``: averages
  over the step [kW];
- ``plugged``, ``charging``: counts of connectors;
- ``<connector>_current_a``: each connector's average per-conductor current over the step
  [A]; ``<connector>_phases``: the grid phases it drew on (``"L2"``, ``"L1L2L3"``, ``"L1-L2"``
  for a line-to-line EVSE, ``""`` when not drawing), so per-phase currents and energies can be
  re-checked from the outputs alone (energy per step = current x conductors x voltage x step).

What is over a limit, honestly: the physics apply the actual series. A row is *over* when
its settled current (EVs at the end of the step) plus the actual base load exceeds its
actual limit; where a series changes inside a step, each part of the step is checked with
the values then (``limit_violation_s`` counts the time). The currents while chargers respond
are reported as the ``transient_*`` KPIs. The controller's own promise, that its set-points
keep every row within the limits and base load *it was shown*, is an invariant checked after
every run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evflex.control.interface import Strategy
from evflex.errors import InvariantError
from evflex.model.topology import Topology, busy_steps
from evflex.units import CURRENT_TOL_A, J_PER_KWH, N_PHASES, PHASE_NAMES

if TYPE_CHECKING:
    from evflex.sim.scenario import Scenario
    from evflex.sim.sensing import SiteSeries

#: A session counts as fully served when less than this is left unmet [kWh].
FULLY_SERVED_TOL_KWH = 0.01
#: Tolerance of checks on recorded currents, which are stored as float32 [A].
RECORD_TOL_A = 1e-3
#: An EV drawing this much less than a set-point it is offered for the first time surprises
#: the controller (see :meth:`SimulationResult.surprises`) [A].
SURPRISE_A = 0.05
#: How far under its limit a row without EV current counts, in the transients [A].
UNLOADED_A = 1e9
#: Relative tolerance of the energy balance checks.
ENERGY_BALANCE_RTOL = 1e-4


@dataclass
class RunRecord:
    """Arrays written by the simulation loop (N steps, n connectors)."""

    times_s: np.ndarray
    building_a: np.ndarray  # (N, 3) at the step start
    pv_a: np.ndarray  # (N, 3) generation positive
    limit_a: np.ndarray  # (N,) connection limit, actual, at the step start
    base_seen_a: np.ndarray  # (N, 3) base load as the controller saw it
    limit_seen_a: np.ndarray  # (N,) connection limit as the controller saw it
    setpoint_a: np.ndarray  # (N, n) float32
    current_a: np.ndarray  # (N, n) float32, average over the step
    end_a: np.ndarray  # (N, n) float32, settled at the end of the step
    drawn: np.ndarray  # (N, n) int8, conductors drawn
    active: np.ndarray  # (N,) bool: an EV wanted energy
    called: np.ndarray  # (N,) bool: the controller was called
    wall_s: float = 0.0
    sessions: dict = field(default_factory=dict)

    @property
    def base_a(self) -> np.ndarray:
        """(N, 3) building minus PV [A]."""
        return self.building_a - self.pv_a

    @classmethod
    def allocate(
        cls, N: int, n: int, times: np.ndarray, actual: SiteSeries, base_seen: np.ndarray, limit_seen: np.ndarray
    ) -> RunRecord:
        f32 = lambda: np.zeros((N, n), dtype=np.float32)
        return cls(
            times_s=times,
            building_a=actual.building_a,
            pv_a=actual.pv_a,
            limit_a=actual.limit_a,
            base_seen_a=base_seen,
            limit_seen_a=limit_seen,
            setpoint_a=f32(),
            current_a=f32(),
            end_a=f32(),
            drawn=np.zeros((N, n), dtype=np.int8),
            active=np.zeros(N, dtype=bool),
            called=np.zeros(N, dtype=bool),
        )

    def store(
        self, k: int, setpoint_a: np.ndarray, avg_a: np.ndarray, end_a: np.ndarray, drawn: np.ndarray, called: bool
    ) -> None:
        self.setpoint_a[k] = setpoint_a
        self.current_a[k] = avg_a
        self.end_a[k] = end_a
        self.drawn[k] = drawn
        self.active[k] = True
        self.called[k] = called

    def store_many(self, k0: int, setpoint_a: np.ndarray, current_a: np.ndarray, drawn: np.ndarray) -> None:
        """Steps ``k0 ..`` ran under unchanged set-points with settled chargers (no controller
        call): ``current_a`` (count, n) each one's current."""
        s = slice(k0, k0 + len(current_a))
        self.setpoint_a[s] = setpoint_a
        self.current_a[s] = current_a
        self.end_a[s] = current_a
        self.drawn[s] = drawn
        self.active[s] = True


@dataclass
class Derived:
    """Bulk quantities computed from a :class:`RunRecord` after the run."""

    session_at: np.ndarray  # (N, n) int32: session on each connector, -1 none
    ev_end_a: np.ndarray  # (N, m) EV current through each row, settled at the end of the step
    row_end_a: np.ndarray  # (N, m) ... plus the base load (the row's total)
    row_start_a: np.ndarray  # (N, m) total at the start of the step (before the response)
    row_cmd_a: np.ndarray  # (N, m) set-points through the physical phases, plus the base load seen
    ev_start_a: np.ndarray  # (N, m) EV part at the start of the step
    start_a: np.ndarray  # (N, n) each connector's current at the start of the step
    ev_phase_avg_a: np.ndarray  # (N, 3) average EV current at the connection, per phase
    ev_kw: np.ndarray  # (N,) average EV power
    ev_energy_by_phase_kwh: np.ndarray  # (3,)
    starts: np.ndarray  # (sessions,) switch-ons per session
    phase_switches: np.ndarray  # (sessions,) changes of the number of phases used
    first_s: np.ndarray  # (sessions,) first step with current [POSIX s]
    bad_setpoints: int
    bad_setpoint_example: str


def _session_at(rec: RunRecord) -> np.ndarray:
    s = rec.sessions
    S = s["table"]
    N, n = rec.setpoint_a.shape
    session_at = np.full((N, n), -1, dtype=np.int32)
    for j in range(len(S)):
        a, b = s["arr_step"][j], s["dep_step"][j]
        if b > a:
            session_at[a:b, S.connector[j]] = j
    return session_at


def _energy_by_phase(rec: RunRecord, topo: Topology, dt: float) -> np.ndarray:
    """EV energy per grid phase [kWh]: each connector's energy shared equally by the phases
    its current flows through (a line-to-line EVSE: half on each)."""
    out = np.zeros(N_PHASES)
    busy = busy_steps(rec.current_a)
    drawn = rec.drawn[busy]
    kwh = rec.current_a[busy].astype(np.float64) * drawn * (topo.voltage_v * dt / J_PER_KWH)
    for d in np.flatnonzero(np.bincount(np.clip(drawn, 0, None).ravel(), minlength=1)).tolist():
        if d <= 0:
            continue
        inc = topo.incidence(np.full(topo.n, d))
        share = inc / np.maximum(inc.sum(axis=1, keepdims=True), 1.0)
        out += (np.where(drawn == d, kwh, 0.0).sum(axis=0)) @ share
    return out


def derive(rec: RunRecord, topo: Topology, period_s: float) -> Derived:
    """Row loads, per-phase currents, switch-ons and set-point checks, in bulk."""
    s = rec.sessions
    S = s["table"]
    N, n = rec.setpoint_a.shape
    session_at = _session_at(rec)
    same = np.zeros((N, n), dtype=bool)
    same[1:] = (session_at[1:] == session_at[:-1]) & (session_at[1:] >= 0)
    start = np.zeros((N, n), dtype=np.float64)
    start[1:] = rec.end_a[:-1]
    start *= same
    start[1:] *= rec.drawn[1:] == rec.drawn[:-1]  # a phase switch pauses the charge
    both = topo.row_loads_without_and_with_base
    base = rec.base_a
    ev_end, row_end = both(rec.end_a, rec.drawn, base)
    ev_start, row_start = both(start, rec.drawn, base)
    conn = topo.connection_rows
    ev_avg_conn = topo.row_loads_over_time(rec.current_a, rec.drawn)[:, conn]
    busy = busy_steps(rec.current_a)
    ev_kw = np.zeros(N)
    ev_kw[busy] = (rec.current_a[busy].astype(np.float64) * rec.drawn[busy]) @ topo.voltage_v / 1000.0
    sp = rec.setpoint_a
    plugged = session_at >= 0
    # set-points in range, on the steps with any set-point above 0
    on_k = busy_steps(sp)
    sp_on, at_on = sp[on_k], session_at[on_k]
    known = np.where(at_on >= 0, s["known_max_a"][np.maximum(at_on, 0)], np.nan) if len(S) else np.nan
    hi = np.maximum(topo.min_current_a, np.fmin(topo.max_current_a, known))
    bad = (sp_on > 0) & ((at_on < 0) | (sp_on < topo.min_current_a - RECORD_TOL_A) | (sp_on > hi + RECORD_TOL_A))
    example = ""
    if bad.any():
        kb, c = np.argwhere(bad)[0]
        kk = on_k[kb]
        example = f"step {kk}: connector {topo.connector_ids[c]} set to {sp[kk, c]:.3f} A"
    first_s = np.full(len(S), np.nan)
    charged = (rec.current_a > 0) & plugged
    ks, cs = charged.nonzero()  # row-major: the first hit of each session is its first step
    if ks.size:
        js = session_at[ks, cs]
        uniq, first = np.unique(js, return_index=True)
        first_s[uniq] = rec.times_s[ks[first]]
    on = sp > 0
    rising = on & ~(np.vstack([np.zeros((1, n), dtype=bool), on[:-1]]) & same)
    starts = np.bincount(session_at[rising], minlength=len(S)) if len(S) else np.zeros(0, dtype=np.int64)
    d = rec.drawn
    switch = np.zeros((N, n), dtype=bool)
    switch[1:] = same[1:] & (d[1:] > 0) & (d[:-1] > 0) & (d[1:] != d[:-1])
    phase_switches = np.bincount(session_at[switch], minlength=len(S)) if len(S) else np.zeros(0, dtype=np.int64)
    return Derived(
        session_at=session_at,
        ev_end_a=ev_end,
        row_end_a=row_end,
        row_start_a=row_start,
        row_cmd_a=topo.row_loads_over_time(sp, rec.drawn, rec.base_seen_a),
        ev_start_a=ev_start,
        start_a=start,
        ev_phase_avg_a=np.abs(ev_avg_conn),
        ev_kw=ev_kw,
        ev_energy_by_phase_kwh=_energy_by_phase(rec, topo, period_s),
        starts=starts,
        phase_switches=phase_switches,
        first_s=first_s,
        bad_setpoints=int(bad.any(axis=1).sum()),
        bad_setpoint_example=example,
    )


def _phase_labels(topo: Topology, c: int, drawn: np.ndarray) -> pd.Categorical[str]:
    """The grid phases connector ``c`` drew on at each step, as text ("" when not drawing)."""
    if topo.line_to_line[c]:
        a, b = topo.phase_map[c, :2]
        labels = ["", f"{PHASE_NAMES[a]}-{PHASE_NAMES[b]}"]
    else:
        labels = [""] + ["".join(PHASE_NAMES[q] for q in topo.phase_map[c, :k]) for k in range(1, N_PHASES + 1)]
    codes = np.clip(drawn.astype(np.int64), 0, len(labels) - 1)
    return pd.Categorical.from_codes(codes, categories=pd.Index(labels))


def _over_limit(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """See :meth:`SimulationResult.over_limit_s` and :meth:`SimulationResult.over_limit_a`."""
    from evflex.sim.sensing import change_points, per_phase

    r, topo, sc = result.record, result.topology, result.scenario
    dt = result.period_s
    viol = result.violations("end").any(axis=1)
    over = np.where(viol, dt, 0.0)
    d = result.derived
    loaded_end = np.abs(d.ev_end_a) > RECORD_TOL_A
    amp = np.max(np.maximum(d.row_end_a - result.row_limits(), 0.0) * loaded_end, axis=1, initial=0.0)
    pts = change_points(r.times_s, dt, sc.base_load, sc.pv, sc.connection_limit)
    if not pts.size:
        return over, amp
    ks = np.floor((pts - r.times_s[0]) / dt + 1e-9).astype(np.int64)
    lim_static = topo.row_limit_a
    for k in np.unique(ks):
        if not r.active[k]:
            continue
        cuts = np.concatenate([[r.times_s[k]], pts[ks == k], [r.times_s[k] + dt]])
        starts = cuts[:-1]
        base = per_phase(sc.base_load, starts) - per_phase(sc.pv, starts)
        limit = (
            sc.connection_limit.sample(starts)
            if sc.connection_limit is not None
            else np.full(len(starts), sc.site.phase_limit_a)
        )
        total = 0.0
        ev = np.abs(d.ev_end_a[k]) > RECORD_TOL_A
        for j in range(len(starts)):
            rows = topo.row_loads(r.end_a[k].astype(np.float64), r.drawn[k], base[j])
            lim = lim_static.copy()
            lim[topo.connection_rows] = limit[j]
            excess = np.where(ev, rows - lim, 0.0)
            if np.any(excess > RECORD_TOL_A):
                total += cuts[j + 1] - cuts[j]
                amp[k] = max(amp[k], float(excess.max()))
        over[k] = total
    return over, amp


def _response_times(result: SimulationResult, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, n) when each connector's current leaves its value at the start of each step ``ks``
    and when it reaches its value at the end [s from the step's start], as the charger
    physics move it (:mod:`evflex.sim.physics`): a new set-point after the activation delay
    (a phase switch after its pause), rises once every set-point lowered has ramped down, at
    the ramp rate; a current moving without a new set-point (a ramp going on, a battery
    tapering, an EV finishing) from the start. Clipped so the move ends within the step."""
    topo, r, d = result.topology, result.record, result.derived
    start, end = d.start_a[ks], r.end_a[ks].astype(np.float64)
    tau = np.abs(end - start) / np.maximum(topo.ramp_a_per_s, 1e-9)
    prev = np.maximum(ks - 1, 0)
    first = (ks == 0)[:, None]
    new_sp = np.where(first, r.setpoint_a[ks] != 0, r.setpoint_a[ks] != r.setpoint_a[prev])
    switched = ~first & (r.drawn[ks] != r.drawn[prev]) & (r.drawn[ks] > 0) & (r.drawn[prev] > 0)
    delay = np.where(switched, np.maximum(topo.activation_delay_s, topo.phase_switch_s), topo.activation_delay_s)
    t0 = np.where(new_sp, delay, 0.0)
    lowered = new_sp & (end < start)
    hold = np.max(np.where(lowered, t0 + tau, 0.0), axis=1, keepdims=True)
    t0 = np.where(new_sp & (end > start), np.maximum(t0, hold), t0)
    t0 = np.clip(np.minimum(t0, result.period_s - tau), 0.0, None)
    return t0, np.minimum(t0 + tau, result.period_s)


#: Transients are evaluated this many (step x moment x connector) values at a time.
TRANSIENT_CHUNK = 1 << 21


def _transients(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """(N,) time [s] and largest excess [A] of a row loaded by EVs over its limit while the
    chargers respond within each step (from the step's start until the last connector
    reaches its value at the end; the base load and limit of the step's start). Between the
    moments a connector starts or ends its move every current is linear in time: a linear
    row's load is exact there, a phasor row's magnitude (convex) lies under the straight line
    between them, so its time over is taken from the line (at most the true time)."""
    r, topo, d = result.record, result.topology, result.derived
    N, n = r.end_a.shape
    secs, amp = np.zeros(N), np.zeros(N)
    start, end = d.start_a, r.end_a
    moving = np.abs(end - start) > RECORD_TOL_A
    moved = np.where(moving, np.abs(end - start), 0.0).sum(axis=1)
    limits = result.row_limits()
    cmax = float(np.abs(topo.coefficients(topo.charger_phases)).max(initial=0.0))
    bound = np.maximum(d.row_start_a, d.row_end_a) + cmax * moved[:, None] - limits
    cand = np.flatnonzero((moved > 0) & (bound.max(axis=1) > RECORD_TOL_A))
    per_step = (2 * n + 1) * max(n, topo.m)
    for lo in range(0, cand.size, max(1, TRANSIENT_CHUNK // per_step)):
        ks = cand[lo : lo + max(1, TRANSIENT_CHUNK // per_step)]
        secs[ks], amp[ks] = _transients_of(result, ks, limits[ks])
    return secs, amp


def _transients_of(result: SimulationResult, ks: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_transients` of the steps ``ks`` (K,), their rows' limits (K, m)."""
    r, topo, d = result.record, result.topology, result.derived
    K, n = len(ks), topo.n
    start, end = d.start_a[ks], r.end_a[ks].astype(np.float64)
    t0, t1 = _response_times(result, ks)
    moving = np.abs(end - start) > RECORD_TOL_A
    T = np.sort(np.concatenate([np.zeros((K, 1)), np.where(moving, t0, 0.0), np.where(moving, t1, 0.0)], axis=1))
    P = T.shape[1]
    span = np.where(t1 > t0, t1 - t0, 1.0)[:, None, :]
    frac = np.clip((T[:, :, None] - t0[:, None, :]) / span, 0.0, 1.0)
    frac = np.where((t1 > t0)[:, None, :], frac, (T[:, :, None] >= t1[:, None, :]).astype(np.float64))
    cur = (start[:, None, :] + (end - start)[:, None, :] * frac).reshape(K * P, n)
    drawn = np.repeat(r.drawn[ks], P, axis=0)
    rows = topo.row_loads_over_time(cur, drawn, np.repeat(r.base_a[ks], P, axis=0)).reshape(K, P, topo.m)
    loaded = (np.abs(d.ev_start_a[ks]) > RECORD_TOL_A) | (np.abs(d.ev_end_a[ks]) > RECORD_TOL_A)
    ex = np.where(loaded[:, None, :], rows - limits[:, None, :], -UNLOADED_A)  # rows without EVs: never over
    worst = ex.max(axis=(1, 2))
    over = worst > RECORD_TOL_A
    # time over: on each stretch between moments, each row's excess is linear in time
    a, b = ex[:, :-1], ex[:, 1:]
    a_on, b_on = a > RECORD_TOL_A, b > RECORD_TOL_A
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(a_on & ~b_on, (a - RECORD_TOL_A) / (a - b), 0.0).max(axis=2)
        right = np.where(b_on & ~a_on, (b - RECORD_TOL_A) / (b - a), 0.0).max(axis=2)
    part = np.where((a_on & b_on).any(axis=2), 1.0, np.minimum(1.0, left + right))
    secs = (np.diff(T, axis=1) * part).sum(axis=1)
    return np.where(over, secs, 0.0), np.where(over, worst, 0.0)


def _no_room(result: SimulationResult) -> bool:
    from evflex.sim.sensing import SiteSeries, no_ev_can_charge

    r = result.record
    return no_ev_can_charge(result.topology, SiteSeries(r.times_s, r.building_a, r.pv_a, r.limit_a))


class SimulationResult:
    """A finished run: KPIs as a dict, time series and per-session outcomes as DataFrames."""

    def __init__(self, scenario: Scenario, topology: Topology, strategy: Strategy, record: RunRecord):
        self.scenario = scenario
        self.topology = topology
        self.strategy = strategy
        self.record = record
        self._derived: Derived | None = None
        self._kpis: dict | None = None
        self._ts: pd.DataFrame | None = None
        self._sessions: pd.DataFrame | None = None
        self._over: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------ derived arrays
    @property
    def derived(self) -> Derived:
        if self._derived is None:
            self._derived = derive(self.record, self.topology, self.period_s)
        return self._derived

    @property
    def period_s(self) -> float:
        return float(self.scenario.simulation.period_s)

    def row_totals(self, which: str = "end") -> np.ndarray:
        """(N, m) current through every row including the base load where it flows [A]:
        ``end`` settled, ``start`` before the chargers respond (both with the actual base
        load), ``cmd`` the set-points with the base load the controller saw."""
        d = self.derived
        return {"end": d.row_end_a, "start": d.row_start_a, "cmd": d.row_cmd_a}[which]

    def row_limits(self, seen: bool = False) -> np.ndarray:
        """(N, m) limit of every row at every step [A], as it was or (``seen``) as announced."""
        lim = np.broadcast_to(self.topology.row_limit_a, (len(self.record.times_s), self.topology.m)).copy()
        conn = self.record.limit_seen_a if seen else self.record.limit_a
        lim[:, self.topology.connection_rows] = conn[:, None]
        return lim

    def violations(self, which: str = "end") -> np.ndarray:
        """(N, m) bool: the row was over its limit while EVs loaded it (``cmd``: the
        set-points against the limits and base load the controller was shown; a row already
        over without the EVs must not be made worse)."""
        d = self.derived
        if which == "cmd":
            lim = self.row_limits(seen=True)
            base_only = self.topology.row_loads_over_time(
                np.zeros_like(self.record.setpoint_a), self.record.drawn, self.record.base_seen_a
            )
            lim = np.maximum(lim, base_only)
            ev = self.topology.row_loads_over_time(self.record.setpoint_a, self.record.drawn)
            return (d.row_cmd_a > lim + RECORD_TOL_A) & (np.abs(ev) > RECORD_TOL_A)
        return (d.row_end_a > self.row_limits() + RECORD_TOL_A) & (np.abs(d.ev_end_a) > RECORD_TOL_A)

    def unbalance(self, which: str = "end") -> np.ndarray:
        """(N,) largest difference between the connection's phase currents [A]."""
        return self.topology.unbalance(self.row_totals(which))

    def surprises(self) -> np.ndarray:
        """(N,) steps in which some EV did what no reading could tell the controller: drew
        clearly (:data:`SURPRISE_A`) less than a set-point higher than the step before's (a
        start, a rise), or stopped drawing while offered current (its need met, or a battery
        full). An unbalance at the meters beyond the controller's foretold draws comes from
        such steps (and from batteries tapering between readings)."""
        return np.any(self.surprising(), axis=1)

    def surprising(self) -> np.ndarray:
        """(N, n) the connectors of :meth:`surprises` in each step."""
        sp, end = self.record.setpoint_a, self.record.end_a
        before = np.zeros_like(sp)
        before[1:] = sp[:-1]
        took_less = (sp > before) & (end < sp - SURPRISE_A)
        stopped = (sp > 0) & (end <= RECORD_TOL_A)
        return took_less | stopped

    def over_limit_s(self) -> np.ndarray:
        """(N,) time within each step that some row loaded by EVs was over its actual limit
        (settled EV currents; the actual base load and limit of each part of the step) [s]."""
        if self._over is None:
            self._over = _over_limit(self)
        return self._over[0]

    def over_limit_a(self) -> np.ndarray:
        """(N,) the largest excess [A] of a row loaded by EVs over its actual limit within each
        step (as :meth:`over_limit_s`), end of the step included."""
        self.over_limit_s()
        assert self._over is not None
        return self._over[1]

    # ------------------------------------------------------------ tables
    @property
    def timeseries(self) -> pd.DataFrame:
        if self._ts is None:
            self._ts = self._build_timeseries()
        return self._ts

    def _build_timeseries(self) -> pd.DataFrame:
        r, topo = self.record, self.topology
        V = topo.voltage_ln_v
        idx = pd.DatetimeIndex(pd.to_datetime(r.times_s, unit="s", utc=True)).tz_convert(self.scenario.simulation.tz)
        idx.name = "timestamp"
        conn = topo.connection_rows
        d = self.derived
        tot, ev = d.row_end_a[:, conn], d.ev_end_a[:, conn]
        base = r.base_a
        cols: dict[str, np.ndarray] = {}
        for p, name in enumerate(PHASE_NAMES):
            cols[f"{name.lower()}_a"] = tot[:, p]
        for p, name in enumerate(PHASE_NAMES):
            cols[f"ev_{name.lower()}_a"] = ev[:, p]
        for p, name in enumerate(PHASE_NAMES):
            cols[f"base_{name.lower()}_a"] = base[:, p]
        cols["unbalance_a"] = topo.unbalance(d.row_end_a)
        cols["limit_a"] = r.limit_a
        cols["limit_seen_a"] = r.limit_seen_a
        building_kw = r.building_a.sum(axis=1) * V / 1000.0
        pv_kw = r.pv_a.sum(axis=1) * V / 1000.0
        cols["site_power_kw"] = d.ev_kw + building_kw - pv_kw
        cols["ev_power_kw"] = d.ev_kw
        cols["building_power_kw"] = building_kw
        cols["pv_power_kw"] = pv_kw
        cols["plugged"] = (d.session_at >= 0).sum(axis=1)
        cols["charging"] = (r.current_a > 0).sum(axis=1)
        df = pd.DataFrame(cols, index=idx)
        cur = pd.DataFrame(r.current_a, index=idx, columns=[f"{c}_current_a" for c in topo.connector_ids])
        phases = pd.DataFrame(
            {f"{c}_phases": _phase_labels(topo, k, r.drawn[:, k]) for k, c in enumerate(topo.connector_ids)}, index=idx
        )
        return pd.concat([df, cur, phases], axis=1)

    @property
    def sessions(self) -> pd.DataFrame:
        if self._sessions is None:
            self._sessions = self._build_sessions()
        return self._sessions

    def _build_sessions(self) -> pd.DataFrame:
        s = self.record.sessions
        S = s["table"]
        tz = self.scenario.simulation.tz

        def ts(x):
            return pd.to_datetime(x, unit="s", utc=True).tz_convert(tz)

        req, got = s["request"], s["delivered"]
        unmet = np.maximum(req - got, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            served = np.where(req > 0, 100.0 * got / req, 100.0)
        first = self.derived.first_s
        never = np.isnan(first) & (req > 0)
        wait_min = np.where(never, (S.departure_s - S.arrival_s) / 60.0, (first - S.arrival_s) / 60.0)
        return pd.DataFrame(
            {
                "session_id": S.session_id.astype(str),
                "connector_id": np.asarray(self.topology.connector_ids, dtype=object)[S.connector],
                "arrival": ts(S.arrival_s),
                "departure": ts(S.departure_s),
                "phases": s["phases"],
                "requested_kwh": req,
                "delivered_kwh": got,
                "unmet_kwh": unmet,
                "served_pct": served,
                "fully_served": unmet < FULLY_SERVED_TOL_KWH,
                "first_charge": ts(self.derived.first_s),
                "finish": ts(s["finish_s"]),
                "wait_min": wait_min,
                "truncated": s["truncated"],
                "starts": self.derived.starts,
                "phase_switches": self.derived.phase_switches,
            }
        )

    # ------------------------------------------------------------ KPIs
    @property
    def kpis(self) -> dict:
        if self._kpis is None:
            self._kpis = self._build_kpis()
        return dict(self._kpis)

    def _build_kpis(self) -> dict:
        r, topo, s, d = self.record, self.topology, self.record.sessions, self.derived
        V, dt = topo.voltage_ln_v, self.period_s
        whole = ~s["truncated"]  # served-energy KPIs count sessions wholly inside the window
        req, got = s["request"][whole], s["delivered"][whole]
        ns = len(req)
        unmet = np.maximum(req - got, 0.0)
        conn = topo.connection_rows
        phase_tot = d.row_end_a[:, conn]
        lim = r.limit_a
        over_s = self.over_limit_s()
        base_over = np.any(r.base_a > lim[:, None] + CURRENT_TOL_A, axis=1)
        t_over_s, t_over_a = _transients(self)
        ev_kw = d.ev_kw
        site_kw = ev_kw + (r.building_a.sum(axis=1) - r.pv_a.sum(axis=1)) * V / 1000.0
        total_req = float(req.sum())
        first_wait = self.sessions[whole]["wait_min"].to_numpy(dtype=float)
        unbalance = topo.unbalance(d.row_end_a)
        U = topo.max_unbalance_a
        ev_on: np.ndarray = np.any(r.current_a > 0, axis=1)
        unb_over = (unbalance > U + RECORD_TOL_A) & ev_on if U is not None else np.zeros(ev_on.shape, dtype=np.bool_)
        k = {
            "strategy": self.strategy.value,
            "sessions": int(ns),
            "sessions_truncated": int((~whole).sum()),
            "steps": int(len(r.times_s)),
            "period_s": dt,
            "energy_requested_kwh": total_req,
            "energy_delivered_kwh": float(got.sum()),
            "energy_served_pct": 100.0 * float(got.sum()) / total_req if total_req > 0 else 100.0,
            "sessions_fully_served_pct": 100.0 * float(np.mean(unmet < FULLY_SERVED_TOL_KWH)) if ns else 100.0,
            "unmet_energy_kwh": float(unmet.sum()),
            "peak_site_kw": float(site_kw.max()) if len(site_kw) else 0.0,
            "peak_ev_kw": float(ev_kw.max()) if len(ev_kw) else 0.0,
            "max_phase_current_a": float(phase_tot.max()) if len(phase_tot) else 0.0,
            "grid_limit_a": self._lowest_limit_a(),
            "limit_violation_steps": int(np.count_nonzero(over_s)),
            "limit_violation_s": float(over_s.sum()),
            "max_overload_a": float(self.over_limit_a().max(initial=0.0)),
            "transient_overshoot_max_a": float(t_over_a.max(initial=0.0)),
            "transient_overshoot_steps": int(np.count_nonzero(t_over_a > CURRENT_TOL_A)),
            "transient_overshoot_s": float(t_over_s.sum()),
            "base_load_over_limit_steps": int(base_over.sum()),
            "no_ev_can_charge": bool(_no_room(self)),
            "phase_unbalance_max_a": float(unbalance.max(initial=0.0)),
            "max_unbalance_a": U,
            "unbalance_violation_steps": int(np.count_nonzero(unb_over)),
            "unbalance_violation_surprise_steps": int(np.count_nonzero(unb_over & self.surprises())),
            "ev_energy_by_phase_kwh": [float(x) for x in d.ev_energy_by_phase_kwh],
            "switch_ons_per_session_mean": float(d.starts[whole].mean()) if ns else 0.0,
            "switch_ons_per_session_max": int(d.starts[whole].max()) if ns else 0,
            "phase_switches": int(d.phase_switches.sum()),
            "phase_switches_per_session_mean": float(d.phase_switches[whole].mean()) if ns else 0.0,
            "phase_switches_per_session_max": int(d.phase_switches[whole].max()) if ns else 0,
            "wait_to_first_charge_max_min": float(np.nanmax(first_wait)) if np.isfinite(first_wait).any() else 0.0,
            "sessions_never_charged": int(np.sum((got <= 0) & (req > 0))),
            "metering_delay_s": float(self.scenario.simulation.metering_delay_s),
            "active_steps": int(r.active.sum()),
            "controller_calls": int(r.called.sum()),
            "sim_wall_s": float(r.wall_s),
        }
        if self.scenario.tariff is not None:
            k.update(self._costs(site_kw))
        return k

    def _costs(self, site_kw: np.ndarray) -> dict[str, float]:
        """The tariff's cost KPIs: each step's metered energy at the price at its start (export
        at the export price), the demand charge on the highest step-average import power of
        each billing period, the penalty for a peak above a subscribed capacity [EUR]; with a
        carbon intensity, the imports' CO2 [kg]."""
        from evflex.markets.tariff import (
            block_cost_eur,
            capacity_excess_eur,
            co2_kg,
            demand_charge_eur,
            energy_cost_eur,
        )

        tariff, cfg, t = self.scenario.tariff, self.scenario.simulation, self.record.times_s
        assert tariff is not None
        kwh = site_kw * (self.period_s / 3600.0)
        if tariff.blocks:
            energy = block_cost_eur(kwh, t, cfg.tz, tariff.blocks, tariff.billing, tariff.export_eur_per_kwh)
        else:
            energy = energy_cost_eur(kwh, tariff.energy_price(t, cfg.tz), tariff.export_eur_per_kwh)
        demand = demand_charge_eur(site_kw, t, cfg.tz, tariff.demand_charge_eur_per_kw, tariff.billing)
        excess = 0.0
        if tariff.subscribed_kw is not None:
            excess = capacity_excess_eur(
                site_kw, t, cfg.tz, tariff.subscribed_kw, tariff.excess_eur_per_kw, tariff.billing
            )
        out = {
            "energy_cost_eur": energy,
            "demand_charge_eur": demand,
            "capacity_excess_eur": excess,
            "total_cost_eur": energy + demand + excess,
        }
        if tariff.has_carbon:
            out["co2_kg"] = co2_kg(kwh, tariff.carbon_intensity(t))
        return out

    def _lowest_limit_a(self) -> float:
        """The lowest connection limit at any time of the window, inside steps too [A]."""
        r, ser = self.record, self.scenario.connection_limit
        if not len(r.times_s):
            return float(self.topology.row_limit_a[0])
        if ser is None:
            return float(r.limit_a.min())
        end = r.times_s[-1] + self.period_s
        nxt = np.append(ser.times_s[1:], np.inf)
        inside = (nxt > r.times_s[0]) & (ser.times_s < end)
        return float(ser.values[inside].min()) if inside.any() else float(r.limit_a.min())

    # ------------------------------------------------------------ checks
    def check_invariants(self, raise_on_error: bool = False) -> list[str]:
        """Physics and safety checks; returns the problems found (empty when all hold).

        Always: energy equals the integral of power per session and for the site; no session
        gets more than its request (or battery room); set-points are 0 or within
        [min, min(charger, EV) max]. For controlled strategies also: the set-points keep
        every constraint row within its limit and the unbalance within its limit, as the
        controller was shown them (a row or an unbalance already over without the EVs must
        not be made worse). (Physical currents lag set-points while chargers respond, and
        the actual base load and limits may differ from what the controller saw: that is
        measured by the ``limit_violation_*`` and ``transient_*`` KPIs, not raised.)
        """
        r, topo, s, d = self.record, self.topology, self.record.sessions, self.derived
        dt = self.period_s
        problems = []
        S = s["table"]
        delivered, request = s["delivered"], s["request"]
        # energy = integral of power, per session
        integ = np.zeros(len(S))
        kwh = r.current_a.astype(np.float64) * r.drawn * (topo.voltage_v * dt / J_PER_KWH)
        for j in range(len(S)):
            a, b, c = s["arr_step"][j], s["dep_step"][j], S.connector[j]
            if b > a:
                integ[j] = float(kwh[a:b, c].sum())
        bad = np.abs(integ - delivered) > ENERGY_BALANCE_RTOL * np.maximum(delivered, 1.0)
        if bad.any():
            j = int(np.argmax(bad))
            problems.append(
                f"energy balance: session {S.session_id[j]} delivered {delivered[j]:.6f} kWh, "
                f"integral of its current {integ[j]:.6f} kWh"
            )
        site_e = float(d.ev_energy_by_phase_kwh.sum())
        if abs(site_e - delivered.sum()) > ENERGY_BALANCE_RTOL * max(delivered.sum(), 1.0):
            problems.append(f"energy balance: site EV energy {site_e:.6f} kWh != sessions {delivered.sum():.6f} kWh")
        over = delivered > request + 1e-6
        if over.any():
            j = int(np.argmax(over))
            problems.append(f"session {S.session_id[j]} got {delivered[j]:.6f} kWh > requested {request[j]:.6f} kWh")
        if d.bad_setpoints:
            problems.append(f"set-point out of range at {d.bad_setpoints} step(s), first {d.bad_setpoint_example}")
        if self.strategy is not Strategy.UNCONTROLLED:
            problems += self._controller_promise()
        if problems and raise_on_error:
            raise InvariantError("; ".join(problems))
        return problems

    def _controller_promise(self) -> list[str]:
        """The set-points within every limit (and the unbalance limit) the controller was shown."""
        r, topo, d = self.record, self.topology, self.derived
        problems = []
        v = self.violations("cmd")
        if v.any():
            kk, rr = np.argwhere(v)[0]
            problems.append(
                f"limit: set-points put row {topo.row_ids[rr]} at {d.row_cmd_a[kk, rr]:.3f} A > "
                f"{self.row_limits(seen=True)[kk, rr]:.3f} A at step {kk}, {int(v.any(axis=1).sum())} step(s)"
            )
        U = topo.max_unbalance_a
        if U is not None:
            base_only = topo.unbalance(topo.row_loads_over_time(np.zeros_like(r.setpoint_a), r.drawn, r.base_seen_a))
            unb = topo.unbalance(d.row_cmd_a)
            bad = (unb > np.maximum(U, base_only) + RECORD_TOL_A) & (r.setpoint_a > 0).any(axis=1)
            if bad.any():
                kk = int(np.argmax(bad))
                problems.append(
                    f"unbalance: set-points put the connection at {unb[kk]:.3f} A between phases > "
                    f"{U:g} A at step {kk}, {int(bad.sum())} step(s)"
                )
        return problems

    # ------------------------------------------------------------ output
    def write(self, out_dir: str | Path) -> Path:
        """Write the run's data: ``kpis.json``, ``timeseries.parquet`` and ``sessions.csv``
        (the HTML report is :func:`evflex.report.write_outputs`'s business)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kpis.json").write_text(json.dumps(self.kpis, indent=2, allow_nan=False) + "\n")
        self.timeseries.to_parquet(out / "timeseries.parquet")
        self.sessions.to_csv(out / "sessions.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        return out
