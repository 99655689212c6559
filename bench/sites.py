"""Synthetic large sites and snapshots for the benchmarks (and the tests that keep the
benchmarks honest)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from evflex.control.interface import SiteSnapshot
from evflex.io.sessions import parse_sessions, sessions_as_text
from evflex.model import Charger, Feeder, SessionTable, Site, StepSeries, Topology, compile_topology
from evflex.sim.behaviour import generate_sessions
from evflex.sim.scenario import Scenario, SimulationConfig

TZ = ZoneInfo("Europe/Amsterdam")


def large_site(
    n_connectors: int,
    n_feeders: int,
    seed: int = 0,
    feeder_a_per_charger: float = 8.0,
    connection_a_per_connector: float = 4.0,
) -> Site:
    """Dual-socket chargers, a third single-phase, rotated phases, on ``n_feeders``
    three-phase sub-feeders each limited well below its chargers' sum (32 A a phase for a
    dual 3-phase charger at full power; ``feeder_a_per_charger`` allowed), behind a
    connection of ``connection_a_per_connector`` per connector and phase."""
    rng = np.random.default_rng(seed)
    n_ch = n_connectors // 2
    chargers = []
    for i in range(n_ch):
        one = rng.random() < 1 / 3
        rot = (i % 3,) if one else tuple((p + i) % 3 for p in range(3))
        chargers.append(
            Charger(
                f"C{i + 1}",
                connectors=2,
                phases=1 if one else 3,
                phase_rotation=rot,
                max_current_a=32.0 if one else 16.0,
            )
        )
    groups = np.array_split(np.arange(n_ch), n_feeders)
    feeders = tuple(
        Feeder(f"F{k + 1}", limit_a=feeder_a_per_charger * len(g), chargers=tuple(chargers[i].id for i in g))
        for k, g in enumerate(groups)
    )
    return Site(f"large-{n_connectors}", 230.0, connection_a_per_connector * n_connectors, tuple(chargers), feeders)


def mixed_site(n_connectors: int, n_feeders: int, seed: int = 0, max_unbalance_a: float = 40.0) -> Site:
    """Every row kind at once: :func:`large_site`'s chargers with every third one wired
    line-to-line instead (32 A single-phase EVSEs, L1-L2, L2-L3, L3-L1 in turn: phasor rows),
    a transformer with a delta primary (phasor rows over every connector) and an unbalance
    limit between the connection's phase currents."""
    from dataclasses import replace

    base = large_site(n_connectors, n_feeders, seed)
    ll = ("L1-L2", "L2-L3", "L3-L1")
    chargers = tuple(
        replace(c, phases=1, phase_rotation=(0,), max_current_a=32.0, connection=ll[(i // 3) % 3]) if i % 3 == 2 else c
        for i, c in enumerate(base.chargers)
    )
    # the transformer a little above the connection: both bind at times
    kw = 1.1 * 3 * base.voltage_ln_v * base.connection_limit_a / 1000.0
    return replace(
        base,
        name=f"mixed-{n_connectors}",
        chargers=chargers,
        transformer_kw=kw,
        transformer_primary_ll_v=10_000.0,
        max_unbalance_a=max_unbalance_a,
    )


def allocation_snapshots(
    n_connectors: int, n_feeders: int, steps: int, seed: int, site: Site | None = None
) -> tuple[Topology, list[SiteSnapshot]]:
    """Congested snapshots: 90 % of connectors plugged, mixed 1/3-phase EVs, a moving base load
    (on :func:`large_site` unless ``site`` is given)."""
    topo = compile_topology(site or large_site(n_connectors, n_feeders, seed))
    rng = np.random.default_rng(seed)
    n = topo.n
    t0 = datetime(2026, 3, 2, 8, tzinfo=TZ).timestamp()
    plugged = rng.random(n) < 0.9
    ev_phases = np.where(rng.random(n) < 0.3, 1, 3)
    remaining = rng.uniform(2, 40, n)
    departure = t0 + rng.uniform(1, 10, n) * 3600
    snaps = []
    for k in range(steps):
        t = t0 + 60.0 * k
        flip = rng.random(n) < 0.01
        plugged ^= flip
        remaining = np.where(flip, rng.uniform(2, 40, n), np.maximum(remaining - 0.05, 0.0))
        snaps.append(
            SiteSnapshot(
                time_s=t,
                period_s=60.0,
                plugged=plugged.copy(),
                session_key=np.arange(n) + n * np.cumsum(flip),
                arrival_s=np.full(n, t0),
                departure_s=departure.copy(),
                energy_remaining_kwh=np.where(plugged, remaining, np.nan),
                ev_max_current_a=np.full(n, np.nan),
                ev_phases=np.where(plugged, ev_phases, 0),
                measured_current_a=np.zeros((n, 3)),
                base_load_a=rng.uniform(20, 60, 3),
                row_limit_a=topo.row_limit_a.copy(),
            )
        )
    return topo, snaps


def large_site_scenario(n_connectors: int, n_feeders: int, days: int, seed: int) -> Scenario:
    """A large, congested public site: public behaviour on every connector, sub-feeders at
    4 A a phase per dual charger, the connection at 1 A a phase per connector."""
    site = large_site(n_connectors, n_feeders, seed, feeder_a_per_charger=4.0, connection_a_per_connector=1.0)
    topo = compile_topology(site)
    start = datetime(2026, 3, 2, tzinfo=TZ)
    df = generate_sessions(
        "public",
        list(topo.connector_ids),
        start,
        days,
        seed,
        connector_phases=topo.charger_phases.tolist(),
        connector_max_current_a=topo.max_current_a.tolist(),
        voltage_ln_v=230.0,
    )
    sessions = parse_sessions(sessions_as_text(df), topo, "generated public sessions")
    t = start.timestamp() + np.arange(0, days * 86400 + 1, 900.0)
    base = StepSeries(t, np.full((len(t), 3), 0.1 * site.connection_limit_a))
    return Scenario(site, sessions, SimulationConfig(start=start, days=days, seed=seed), base_load=base)


def congested_sessions(topo: Topology, start: datetime, days: int, seed: int) -> SessionTable:
    """A congested workplace: on most weekdays (90 % of plugs) every plug gets an 11 kW
    three-phase EV arriving 07:00-10:00, staying 4-9 h and asking 5-40 kWh (capped at what
    11 kW delivers in 90 % of the stay), on a 60 kWh battery (arriving at a random state of charge, so
    that the CC-CV taper ends some sessions)."""
    rng = np.random.default_rng(seed)
    rows = []
    day0 = start.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(days):
        day = day0 + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for cid in topo.connector_ids:
            if rng.random() > 0.9:
                continue
            arrival = day.timestamp() + rng.uniform(7.0, 10.0) * 3600.0
            stay_h = rng.uniform(4.0, 9.0)
            energy = min(rng.uniform(5.0, 40.0), 11.0 * stay_h * 0.9)
            soc = rng.uniform(0.05, max(0.05, 0.9 - energy * 0.9 / 60.0))  # most sessions end before the taper
            rows.append((f"s{len(rows) + 1}", cid, arrival, arrival + stay_h * 3600.0, energy, soc))
    sid, cid, arr, dep, e, soc = (list(c) for c in zip(*rows))
    index = topo.index()
    n = len(rows)
    return SessionTable.build(
        np.array(sid, dtype=object),
        [index[c] for c in cid],
        arr,
        dep,
        e,
        max_power_kw=np.full(n, 11.0),
        phases=np.full(n, 3),
        battery_kwh=np.full(n, 60.0),
        soc_arrival=soc,
    )


def congested_year_scenario(root, days: int = 365, seed: int = 1) -> Scenario:
    """The DTU Risoe site (16 plugs, 63 A, its office base load) on a congested workplace year."""
    from dataclasses import replace

    from evflex.io.scenario import read_scenario

    sc = read_scenario(root / "examples" / "dtu_risoe.toml", days=days)
    topo = compile_topology(sc.site)
    return replace(
        sc,
        sessions=congested_sessions(topo, sc.simulation.start, days, seed),
        sessions_source=f"congested workplace, seed {seed}",
    )


# ------------------------------------------------------------------ side by side with ACN-Sim
def ideal(sc: Scenario, period_s: float = 300.0, resolution_a: float | None = None) -> Scenario:
    """``sc`` with ideal chargers (no activation delay, instant ramp, exact pilot following), no
    base load or PV, EV limits known, at ``period_s`` steps: the world ACN-Sim simulates.
    ``resolution_a`` sets every charger's set-point step."""
    from dataclasses import replace

    from evflex.model import ChargerResponse

    resp = ChargerResponse(activation_delay_s=0.0, ramp_a_per_s=1e9, precision_a=0.0)
    res = {} if resolution_a is None else {"setpoint_resolution_a": resolution_a}
    site = replace(sc.site, chargers=tuple(replace(c, response=resp, **res) for c in sc.site.chargers))
    cfg = replace(sc.simulation, period_s=period_s, ev_limits_known=True)
    return replace(sc, site=site, simulation=cfg, base_load=None, pv=None, connection_limit=None)


def peer_sessions(sc: Scenario, three_phase_kw: float | None = None) -> Scenario:
    """The sessions of ``sc`` as both tools can take them: arrivals and departures on the step
    grid, inside the window, at least one step long, one at a time on each connector, no
    battery model (no CC-CV taper: ACN-Sim's ideal battery). ``three_phase_kw`` makes every EV
    three-phase at that limit (ACN-Sim loads a three-phase EVSE as one current on every phase;
    a single-phase EV on it has no equivalent)."""
    from dataclasses import replace

    cfg, S = sc.simulation, sc.sessions
    dt, t0 = cfg.period_s, cfg.start_s
    arr = t0 + dt * np.ceil((S.arrival_s - t0) / dt - 1e-9)
    dep = t0 + dt * np.floor((S.departure_s - t0) / dt + 1e-9)
    keep = (arr >= t0) & (dep <= cfg.end_s) & (dep - arr >= dt) & (S.energy_kwh > 0)
    order = np.lexsort((arr, S.connector))
    last_dep: dict[int, float] = {}
    for j in order:
        if not keep[j]:
            continue
        c = int(S.connector[j])
        if arr[j] <= last_dep.get(c, -np.inf):  # plugged while the last EV is still there
            keep[j] = False
            continue
        last_dep[c] = dep[j]
    n = int(keep.sum())
    idx = np.flatnonzero(keep)
    sessions = SessionTable.build(
        S.session_id[idx],
        S.connector[idx],
        arr[idx],
        dep[idx],
        S.energy_kwh[idx],
        max_power_kw=np.full(n, three_phase_kw) if three_phase_kw else S.max_power_kw[idx],
        max_current_a=S.max_current_a[idx],
        phases=np.full(n, 3) if three_phase_kw else S.phases[idx],
        efficiency=S.efficiency[idx],
    )
    return replace(sc, sessions=sessions, sessions_source=sc.sessions_source + " (aligned for ACN-Sim)")


def dtu_peer_scenario(root, days: int = 30) -> Scenario:
    """The DTU Risoe site (8 x 2 plugs of 0 or 6-16 A in 1 A steps, 63 A a phase) at 5-min steps
    with ideal chargers, its generated workplace sessions as three-phase 11 kW EVs
    (16 A x 3 x 230 V)."""
    from evflex.io.scenario import read_scenario

    sc = ideal(read_scenario(root / "examples" / "dtu_risoe.toml", days=days), resolution_a=1.0)
    return peer_sessions(sc, three_phase_kw=16.0 * 3 * 230.0 / 1000.0)


def caltech_peer_scenario(root, days: int = 30) -> Scenario:
    """The Caltech ACN (examples/caltech_acn.toml) at 5-min steps with ideal chargers, its
    generated workplace sessions on the 54 station ids (connector ``<stationID>-1``)."""
    from evflex.io.scenario import read_scenario

    return peer_sessions(ideal(read_scenario(root / "examples" / "caltech_acn.toml", days=days)))
