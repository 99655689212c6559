"""The time-stepped simulator: drives a controller through the port, applies its
set-points to the physics, records everything.

Vectorised over connectors; the loop runs over steps and skips ahead whenever no plugged
EV wants energy. Arrivals are aligned up and departures down to the step grid, so an EV
is available for whole steps only. The loop only stores per-step arrays; row loads, KPIs
and checks are computed afterwards in bulk (:mod:`evflex.sim.results`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np

from evflex.control.allocation.controller import make_controller
from evflex.control.interface import Controller, SiteSnapshot, Strategy
from evflex.errors import ValidationError, problem
from evflex.model.topology import Topology, compile_topology
from evflex.sim.physics import response, taper_limit_a
from evflex.sim.results import RunRecord, SimulationResult
from evflex.sim.scenario import Scenario
from evflex.units import CURRENT_TOL_A, ENERGY_TOL_KWH, J_PER_KWH, N_PHASES

ProgressFn = Callable[[int, int], None]
#: Per-connector values (steps x connectors) a run may record: four arrays of them are kept
#: (about 13 bytes a value), and the post-run checks make a few float64 copies.
MAX_RECORDED_VALUES = 150_000_000


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy: snapshots share it between steps, no controller may change it."""
    c = a.copy()
    c.flags.writeable = False
    return c


def site_series(scenario: Scenario, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Building load (N, 3) [A], PV (N,) [kW] and connection limit (N,) [A] on the step grid.

    Conservative where a series is finer than the steps: each step takes the highest
    building load, the lowest PV and the lowest limit holding at any time within it.
    """
    n, dt = len(times_s), scenario.simulation.period_s
    building = (
        scenario.base_load.over_steps(times_s, dt, np.maximum)
        if scenario.base_load is not None
        else np.zeros((n, N_PHASES))
    )
    if building.ndim == 1:
        building = np.repeat(building[:, None], N_PHASES, axis=1)
    pv_kw = scenario.pv.over_steps(times_s, dt, np.minimum) if scenario.pv is not None else np.zeros(n)
    if scenario.connection_limit is not None:
        limit = scenario.connection_limit.over_steps(times_s, dt, np.minimum)
    else:
        limit = np.full(n, scenario.site.connection_limit_a)
    return building, pv_kw, limit


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
    slow = topo.activation_delay_s >= cfg.period_s
    if slow.any():
        c = int(np.argmax(slow))
        raise ValidationError(
            [
                problem(
                    "simulation",
                    f"must be shorter than period_s ({cfg.period_s:g} s)",
                    field=f"{topo.connector_ids[c]}: activation_delay_s",
                    value=float(topo.activation_delay_s[c]),
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


def _run(scenario: Scenario, topo: Topology, ctrl: Controller, progress: ProgressFn | None) -> RunRecord:
    cfg = scenario.simulation
    dt = float(cfg.period_s)
    V = topo.voltage_ln_v
    N, n = cfg.n_steps, topo.n
    start_s = cfg.start_s
    times = start_s + dt * np.arange(N)
    building, pv_kw, limit = site_series(scenario, times)
    base = building - (pv_kw * 1000.0 / (N_PHASES * V))[:, None]
    row_limit_static = topo.row_limit_a.copy()
    row_limit_static[topo.connection_rows] = limit[0] if N else scenario.site.connection_limit_a
    varying_limit = bool(N) and bool(np.any(limit != limit[0]))
    conn = topo.connection_rows

    sel, truncated, outside = window_sessions(scenario)
    if outside:
        warnings.warn(f"{outside} session(s) outside the simulated window were skipped", stacklevel=3)
    if truncated.any():
        warnings.warn(
            f"{int(truncated.sum())} session(s) cut by the window's start or end are simulated inside it "
            "and left out of the served-energy KPIs",
            stacklevel=3,
        )
    S = scenario.sessions.take(sel)
    ns = len(S)
    rng = np.random.default_rng(cfg.seed)
    arr_step = np.maximum(np.ceil((S.arrival_s - start_s) / dt - 1e-9).astype(np.int64), 0)
    dep_step = np.minimum(np.floor((S.departure_s - start_s) / dt + 1e-9).astype(np.int64), N)
    short = dep_step <= arr_step
    if short.any():
        warnings.warn(
            f"{int(short.sum())} session(s) shorter than one {dt:g} s step once aligned to the steps get no energy",
            stacklevel=3,
        )
    phys_phases = np.where(
        S.phases > 0, np.minimum(S.phases, topo.charger_phases[S.connector]), topo.charger_phases[S.connector]
    )
    with np.errstate(invalid="ignore"):
        ev_max_a = np.fmin(
            S.max_power_kw * 1000.0 / (V * np.where(S.phases > 0, S.phases, phys_phases)), S.max_current_a
        )
    ev_max_phys = np.fmin(ev_max_a, topo.max_current_a[S.connector])
    room_kwh = np.where(
        np.isnan(S.battery_kwh) | np.isnan(S.soc_arrival), np.inf, (1.0 - S.soc_arrival) * S.battery_kwh / S.efficiency
    )
    request = np.minimum(S.energy_kwh, room_kwh)
    offset_a = rng.uniform(0.0, 1.0, ns) * topo.precision_a[S.connector]  # each EV's draw below the pilot
    known_max_s = ev_max_a if cfg.ev_limits_known else np.full(ns, np.nan)
    known_ph_s = S.phases if cfg.ev_limits_known else np.zeros(ns, dtype=np.int64)

    # per-connector state
    sess = np.full(n, -1, dtype=np.int64)
    plugged = np.zeros(n, dtype=bool)
    remaining = np.zeros(n)
    # physics state; an unknown battery is infinite at state of charge -inf: never tapered
    soc0 = np.where(np.isnan(S.battery_kwh) | np.isnan(S.soc_arrival), -np.inf, S.soc_arrival)
    battery_s = np.where(np.isnan(S.battery_kwh) | np.isnan(S.soc_arrival), np.inf, S.battery_kwh)
    soc = np.full(n, -np.inf)
    battery = np.full(n, np.inf)
    eff = np.ones(n)
    evmax = np.zeros(n)
    offset = np.zeros(n)
    ph = np.zeros(n, dtype=np.int64)
    arrival = np.full(n, np.nan)
    departure = np.full(n, np.nan)
    known_max = np.full(n, np.nan)
    known_ph = np.zeros(n, dtype=np.int64)
    i_end = np.zeros(n)
    sp_prev = np.zeros(n)  # the set-point in effect
    target_prev = np.zeros(n)  # what it let the EV draw
    drawn_prev = np.zeros(n, dtype=np.int64)
    gate = np.zeros(n)  # seconds into the step before a waiting rise may start
    onoff = ~topo.modulation
    any_onoff = bool(onoff.any())
    delivered = np.zeros(ns)
    finish_s = np.full(ns, np.nan)
    has_battery = False

    rec = RunRecord.allocate(N, n, times, base, building, pv_kw, limit)
    min_a = topo.min_current_a - CURRENT_TOL_A
    (
        delay,
        ramp,
    ) = topo.activation_delay_s, np.maximum(topo.ramp_a_per_s, 1e-9)
    a_order = np.argsort(arr_step, kind="stable")
    d_order = np.argsort(dep_step, kind="stable")
    ia = idp = 0
    k = 0
    last_report = 0
    inc_key, inc = None, np.zeros((n, N_PHASES))
    events, fixed = True, tuple[np.ndarray, ...]()
    while k < N:
        while idp < ns and dep_step[d_order[idp]] <= k:
            j = d_order[idp]
            idp += 1
            c = S.connector[j]
            if sess[c] == j:
                delivered[j] = request[j] - remaining[c]
                sess[c], plugged[c], remaining[c], i_end[c] = -1, False, 0.0, 0.0
                sp_prev[c], gate[c], drawn_prev[c], target_prev[c] = 0.0, 0.0, 0, 0.0
                events = True
        while ia < ns and arr_step[a_order[ia]] <= k:
            j = a_order[ia]
            ia += 1
            if dep_step[j] <= arr_step[j]:
                continue  # present for less than one step
            c = S.connector[j]
            sess[c], plugged[c], remaining[c], i_end[c] = j, True, request[j], 0.0
            sp_prev[c], gate[c], drawn_prev[c], target_prev[c] = 0.0, 0.0, 0, 0.0
            soc[c], battery[c], eff[c] = soc0[j], battery_s[j], S.efficiency[j]
            has_battery = has_battery or battery_s[j] < np.inf
            evmax[c], ph[c], offset[c] = ev_max_phys[j], phys_phases[j], offset_a[j]
            arrival[c], departure[c] = S.arrival_s[j], S.departure_s[j]
            known_max[c], known_ph[c] = known_max_s[j], known_ph_s[j]
            events = True
        busy = plugged & (remaining > ENERGY_TOL_KWH)
        if not np.count_nonzero(busy):
            i_end[:] = 0.0
            sp_prev[:] = 0.0
            target_prev[:] = 0.0
            gate[:] = 0.0
            nxt = N if ia >= ns else int(arr_step[a_order[ia]])
            k = max(k + 1, min(nxt, N))
            continue

        if varying_limit:
            row_limit = row_limit_static.copy()
            row_limit[conn] = limit[k]
        else:
            row_limit = row_limit_static
        if events:  # what changes only with arrivals and departures: fresh read-only copies
            fixed = tuple(_frozen(a) for a in (plugged, sess, arrival, departure, known_max, known_ph))
            events = False
        snap = SiteSnapshot(
            time_s=float(times[k]),
            period_s=dt,
            plugged=fixed[0],
            session_key=fixed[1],
            arrival_s=fixed[2],
            departure_s=fixed[3],
            energy_remaining_kwh=np.where(plugged, remaining, np.nan),
            ev_max_current_a=fixed[4],
            ev_phases=fixed[5],
            measured_current_a=inc * i_end[:, None],
            base_load_a=base[k].copy(),
            row_limit_a=row_limit,
        )
        sp = ctrl.step(snap)
        sp_a = np.asarray(sp.current_a, dtype=np.float64)
        drawn = np.minimum(ph, sp.phases) * plugged
        key = drawn.tobytes()
        if key != inc_key:
            inc_key, inc = key, topo.incidence(drawn)

        # physics: what the EV takes, how fast it gets there
        cap_a = taper_limit_a(soc, evmax, cfg.taper_soc) if has_battery else evmax
        switched = (drawn != drawn_prev) & (drawn_prev > 0)
        i0 = np.where(switched, 0.0, i_end) if np.count_nonzero(switched) else i_end  # charging pauses
        changed = (sp_a != sp_prev) | switched
        pilot = sp_a
        if any_onoff:  # an on/off charger is on at its rating: the EV takes what it can
            pilot = np.where(onoff & (sp_a > 0), topo.max_current_a, sp_a)
        target = np.where(busy & (pilot >= min_a), np.maximum(np.minimum(pilot, cap_a) - offset, 0.0), 0.0)
        # during a new set-point's activation delay the EV keeps to last step's target
        old = np.where(switched, 0.0, target_prev) if np.count_nonzero(switched) else target_prev
        avg, end, gate = response(i0, old, target, changed, gate, delay, ramp, dt)
        sp_prev, drawn_prev, target_prev = sp_a, drawn, target
        e = avg * drawn * (V * dt / J_PER_KWH)
        over = e > remaining
        frac: np.ndarray | float = 1.0
        if np.count_nonzero(over):  # the request is met inside the step: the charge stops there
            frac = np.where(over, remaining / np.where(e > 0, e, 1.0), 1.0)
            avg = avg * frac
            end = np.where(over, 0.0, end)
            e = np.where(over, remaining, e)
        remaining -= e
        done = busy & (remaining <= ENERGY_TOL_KWH)
        if np.count_nonzero(done):
            finish_s[sess[done]] = times[k] + dt * (np.asarray(frac)[done] if np.ndim(frac) else frac)
            remaining[done] = 0.0
        if has_battery:
            soc += e * eff / battery

        rec.setpoint_a[k] = sp_a
        rec.current_a[k] = avg
        rec.end_a[k] = end
        rec.drawn[k] = drawn
        rec.active[k] = True
        i_end = end
        k += 1
        if progress is not None and k - last_report >= 1000:
            progress(k, N)
            last_report = k
    if progress is not None:
        progress(N, N)
    still = sess >= 0
    delivered[sess[still]] = request[sess[still]] - remaining[still]

    rec.sessions = dict(
        table=S,
        index=sel,
        arr_step=arr_step,
        dep_step=dep_step,
        request=request,
        delivered=delivered,
        finish_s=finish_s,
        phases=phys_phases,
        known_max_a=known_max_s,
        truncated=truncated,
    )
    return rec
