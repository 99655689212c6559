"""What a run produced: the raw record (arrays), and the tables and KPIs built from it.

Time series columns (one row per step, timestamps in the scenario's zone):

- ``l1_a, l2_a, l3_a``: current at the grid connection on each phase, EVs settled at the
  end of the step plus the base load [A]: the quantity held under ``limit_a``;
- ``ev_l1_a`` .. : the EVs' share of it; ``base_l1_a`` ..: building minus PV;
- ``limit_a``: the connection limit per phase [A];
- ``site_power_kw``, ``ev_power_kw``, ``building_power_kw``, ``pv_power_kw``: averages
  over the step [kW];
- ``plugged``, ``charging``: counts of connectors;
- ``<connector>_current_a``: each connector's average per-phase current over the step [A].
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
from evflex.model.topology import Topology
from evflex.units import CURRENT_TOL_A, J_PER_KWH, N_PHASES, PHASE_NAMES

if TYPE_CHECKING:
    from evflex.sim.scenario import Scenario

#: A session counts as fully served when less than this is left unmet [kWh].
FULLY_SERVED_TOL_KWH = 0.01
#: Tolerance of checks on recorded currents, which are stored as float32 [A].
RECORD_TOL_A = 1e-3
#: Relative tolerance of the energy balance checks.
ENERGY_BALANCE_RTOL = 1e-4


@dataclass
class RunRecord:
    """Arrays written by the simulation loop (N steps, n connectors)."""

    times_s: np.ndarray
    base_a: np.ndarray  # (N, 3) building minus PV
    building_a: np.ndarray  # (N, 3)
    pv_kw: np.ndarray  # (N,)
    limit_a: np.ndarray  # (N,) connection limit
    setpoint_a: np.ndarray  # (N, n) float32
    current_a: np.ndarray  # (N, n) float32, average over the step
    end_a: np.ndarray  # (N, n) float32, settled at the end of the step
    drawn: np.ndarray  # (N, n) int8, phases drawn
    active: np.ndarray  # (N,) bool: the controller ran
    wall_s: float = 0.0
    sessions: dict = field(default_factory=dict)

    @classmethod
    def allocate(cls, N, n, times, base, building, pv_kw, limit) -> RunRecord:
        f32 = lambda: np.zeros((N, n), dtype=np.float32)  # noqa: E731
        return cls(
            times_s=times,
            base_a=base,
            building_a=building,
            pv_kw=pv_kw,
            limit_a=limit,
            setpoint_a=f32(),
            current_a=f32(),
            end_a=f32(),
            drawn=np.zeros((N, n), dtype=np.int8),
            active=np.zeros(N, dtype=bool),
        )


@dataclass
class Derived:
    """Bulk quantities computed from a :class:`RunRecord` after the run."""

    session_at: np.ndarray  # (N, n) int32: session on each connector, -1 none
    row_end_a: np.ndarray  # (N, m) EV current through each row, settled at the end of the step
    row_start_a: np.ndarray  # (N, m) ... at the start of the step (before the response)
    row_cmd_a: np.ndarray  # (N, m) set-points through the physical incidence
    ev_phase_avg_a: np.ndarray  # (N, 3) average EV current per phase
    starts: np.ndarray  # (sessions,) switch-ons per session
    phase_switches: np.ndarray  # (sessions,) changes of the number of phases used
    first_s: np.ndarray  # (sessions,) first step with current [POSIX s]
    bad_setpoints: int
    bad_setpoint_example: str


def _phase_masks(drawn: np.ndarray, topo: Topology) -> list[np.ndarray]:
    """For each grid phase, the (N, n) mask of connectors loading it."""
    masks = []
    for p in range(N_PHASES):
        mk = np.zeros(drawn.shape, dtype=bool)
        for j in range(N_PHASES):
            on_p = topo.phase_map[:, j] == p
            if on_p.any():
                mk |= (drawn > j) & on_p
        masks.append(mk)
    return masks


def derive(rec: RunRecord, topo: Topology) -> Derived:
    """Row loads, per-phase currents, switch-ons and set-point checks, in bulk."""
    s = rec.sessions
    S = s["table"]
    N, n = rec.setpoint_a.shape
    session_at = np.full((N, n), -1, dtype=np.int32)
    for j in range(len(S)):
        a, b = s["arr_step"][j], s["dep_step"][j]
        if b > a:
            session_at[a:b, S.connector[j]] = j
    same = np.zeros((N, n), dtype=bool)
    same[1:] = (session_at[1:] == session_at[:-1]) & (session_at[1:] >= 0)
    start = np.zeros((N, n), dtype=np.float64)
    start[1:] = rec.end_a[:-1]
    start *= same
    start[1:] *= rec.drawn[1:] == rec.drawn[:-1]  # a phase switch pauses the charge
    masks = _phase_masks(rec.drawn, topo)
    m = topo.m
    rows = {"end": np.zeros((N, m)), "start": np.zeros((N, m)), "cmd": np.zeros((N, m))}
    ev_phase_avg = np.zeros((N, N_PHASES))
    srcs = {"end": rec.end_a, "start": start, "cmd": rec.setpoint_a}
    for p in range(N_PHASES):
        rp = topo.row_phase == p
        mem = topo.row_members[rp].T.astype(np.float64)
        for name, x in srcs.items():
            if rp.any():
                rows[name][:, rp] = (x * masks[p]) @ mem
        ev_phase_avg[:, p] = (rec.current_a * masks[p]).sum(axis=1, dtype=np.float64)
    sp = rec.setpoint_a
    plugged = session_at >= 0
    known = (
        np.where(plugged, s["known_max_a"][np.maximum(session_at, 0)], np.nan) if len(S) else np.full((N, n), np.nan)
    )
    hi = np.maximum(topo.min_current_a, np.fmin(topo.max_current_a, known))
    bad = (sp > 0) & (~plugged | (sp < topo.min_current_a - RECORD_TOL_A) | (sp > hi + RECORD_TOL_A))
    example = ""
    if bad.any():
        kk, c = np.argwhere(bad)[0]
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
        row_end_a=rows["end"],
        row_start_a=rows["start"],
        row_cmd_a=rows["cmd"],
        ev_phase_avg_a=ev_phase_avg,
        starts=starts,
        phase_switches=phase_switches,
        first_s=first_s,
        bad_setpoints=int(bad.any(axis=1).sum()),
        bad_setpoint_example=example,
    )


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

    # ------------------------------------------------------------ derived arrays
    @property
    def derived(self) -> Derived:
        if self._derived is None:
            self._derived = derive(self.record, self.topology)
        return self._derived

    @property
    def period_s(self) -> float:
        return float(self.scenario.simulation.period_s)

    def row_totals(self, which: str = "end") -> np.ndarray:
        """(N, m) current through every row including the base load where it flows [A]."""
        r, d = self.record, self.derived
        ev = {"end": d.row_end_a, "start": d.row_start_a, "cmd": d.row_cmd_a}[which]
        return ev + np.where(self.topology.row_base, r.base_a[:, self.topology.row_phase], 0.0)

    def row_limits(self) -> np.ndarray:
        """(N, m) limit of every row at every step [A]."""
        lim = np.broadcast_to(self.topology.row_limit_a, (len(self.record.times_s), self.topology.m)).copy()
        lim[:, self.topology.connection_rows] = self.record.limit_a[:, None]
        return lim

    def violations(self, which: str = "end") -> np.ndarray:
        """(N, m) bool: the row was over its limit while EVs loaded it."""
        ev = {"end": self.derived.row_end_a, "cmd": self.derived.row_cmd_a}[which]
        return (self.row_totals(which) > self.row_limits() + RECORD_TOL_A) & (ev > RECORD_TOL_A)

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
        ev_end = d.row_end_a[:, conn]
        cols: dict[str, np.ndarray] = {}
        for p, name in enumerate(PHASE_NAMES):
            cols[f"{name.lower()}_a"] = ev_end[:, p] + r.base_a[:, p]
        for p, name in enumerate(PHASE_NAMES):
            cols[f"ev_{name.lower()}_a"] = ev_end[:, p]
        for p, name in enumerate(PHASE_NAMES):
            cols[f"base_{name.lower()}_a"] = r.base_a[:, p]
        cols["limit_a"] = r.limit_a
        ev_kw = d.ev_phase_avg_a.sum(axis=1) * V / 1000.0
        building_kw = r.building_a.sum(axis=1) * V / 1000.0
        cols["site_power_kw"] = ev_kw + building_kw - r.pv_kw
        cols["ev_power_kw"] = ev_kw
        cols["building_power_kw"] = building_kw
        cols["pv_power_kw"] = r.pv_kw
        cols["plugged"] = (d.session_at >= 0).sum(axis=1)
        cols["charging"] = (r.current_a > 0).sum(axis=1)
        df = pd.DataFrame(cols, index=idx)
        cur = pd.DataFrame(r.current_a, index=idx, columns=[f"{c}_current_a" for c in topo.connector_ids])
        return pd.concat([df, cur], axis=1)

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
        phase_tot = self.row_totals("end")[:, conn]
        lim = r.limit_a
        viol = self.violations("end").any(axis=1)
        base_over = np.any(r.base_a > lim[:, None] + CURRENT_TOL_A, axis=1)
        start_tot = self.row_totals("start")
        over_t = np.maximum(np.maximum(start_tot, self.row_totals("end")) - self.row_limits(), 0.0)
        over_t = np.where(np.maximum(d.row_start_a, d.row_end_a) > CURRENT_TOL_A, over_t, 0.0)
        ev_kw = d.ev_phase_avg_a.sum(axis=1) * V / 1000.0
        site_kw = ev_kw + r.building_a.sum(axis=1) * V / 1000.0 - r.pv_kw
        total_req = float(req.sum())
        sessions_df = self.sessions[whole]
        first_wait = sessions_df["wait_min"].to_numpy(dtype=float)
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
            "grid_limit_a": float(lim.min()) if len(lim) else float(topo.row_limit_a[0]),
            "limit_violation_steps": int(viol.sum()),
            "max_overload_a": float(
                np.max(
                    np.maximum(self.row_totals("end") - self.row_limits(), 0.0) * (d.row_end_a > CURRENT_TOL_A),
                    initial=0.0,
                )
            ),
            "transient_overshoot_max_a": float(over_t.max(initial=0.0)),
            "transient_overshoot_steps": int(np.any(over_t > CURRENT_TOL_A, axis=1).sum()),
            "base_load_over_limit_steps": int(base_over.sum()),
            "phase_unbalance_max_a": float((phase_tot.max(axis=1) - phase_tot.min(axis=1)).max())
            if len(phase_tot)
            else 0.0,
            "ev_energy_by_phase_kwh": [float(x) for x in d.ev_phase_avg_a.sum(axis=0) * V * dt / J_PER_KWH],
            "switch_ons_per_session_mean": float(d.starts[whole].mean()) if ns else 0.0,
            "switch_ons_per_session_max": int(d.starts[whole].max()) if ns else 0,
            "phase_switches": int(d.phase_switches.sum()),
            "wait_to_first_charge_max_min": float(np.nanmax(first_wait)) if np.isfinite(first_wait).any() else 0.0,
            "sessions_never_charged": int(np.sum((got <= 0) & (req > 0))),
            "active_steps": int(r.active.sum()),
            "sim_wall_s": float(r.wall_s),
        }
        return k

    # ------------------------------------------------------------ checks
    def check_invariants(self, raise_on_error: bool = False) -> list[str]:
        """Physics and safety checks; returns the problems found (empty when all hold).

        Always: energy equals the integral of power per session and for the site; no session
        gets more than its request (or battery room); set-points are 0 or within
        [min, min(charger, EV) max]. For controlled strategies also: the set-points keep
        every constraint row within its limit. (Physical currents lag set-points while
        chargers respond; that lag is measured by the ``limit_violation_steps`` and
        ``transient_*`` KPIs, not raised: with chargers that settle within a step, the
        settled currents are within the limits whenever the set-points are.)
        """
        r, topo, s, d = self.record, self.topology, self.record.sessions, self.derived
        V, dt = topo.voltage_ln_v, self.period_s
        problems = []
        S = s["table"]
        delivered, request = s["delivered"], s["request"]
        # energy = integral of power, per session
        integ = np.zeros(len(S))
        cur, drawn = r.current_a.astype(np.float64), r.drawn.astype(np.float64)
        for j in range(len(S)):
            a, b, c = s["arr_step"][j], s["dep_step"][j], S.connector[j]
            if b > a:
                integ[j] = float(np.dot(cur[a:b, c], drawn[a:b, c])) * V * dt / J_PER_KWH
        bad = np.abs(integ - delivered) > ENERGY_BALANCE_RTOL * np.maximum(delivered, 1.0)
        if bad.any():
            j = int(np.argmax(bad))
            problems.append(
                f"energy balance: session {S.session_id[j]} delivered {delivered[j]:.6f} kWh, "
                f"integral of its current {integ[j]:.6f} kWh"
            )
        site_e = float(d.ev_phase_avg_a.sum()) * V * dt / J_PER_KWH
        if abs(site_e - delivered.sum()) > ENERGY_BALANCE_RTOL * max(delivered.sum(), 1.0):
            problems.append(f"energy balance: site EV energy {site_e:.6f} kWh != sessions {delivered.sum():.6f} kWh")
        over = delivered > request + 1e-6
        if over.any():
            j = int(np.argmax(over))
            problems.append(f"session {S.session_id[j]} got {delivered[j]:.6f} kWh > requested {request[j]:.6f} kWh")
        if d.bad_setpoints:
            problems.append(f"set-point out of range at {d.bad_setpoints} step(s), first {d.bad_setpoint_example}")
        if self.strategy is not Strategy.UNCONTROLLED:
            v = self.violations("cmd")
            if v.any():
                kk, rr = np.argwhere(v)[0]
                problems.append(
                    f"limit: set-points put row {topo.row_ids[rr]} at {self.row_totals('cmd')[kk, rr]:.3f} A > "
                    f"{self.row_limits()[kk, rr]:.3f} A at step {kk}, {int(v.any(axis=1).sum())} step(s)"
                )
        if problems and raise_on_error:
            raise InvariantError("; ".join(problems))
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
