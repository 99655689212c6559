"""Plug-in and plug-out: which EV is on which connector, and what it still needs.

What belongs here: the sessions of a run aligned to the step grid (arrivals rounded up,
departures down, so an EV is present for whole steps), the per-connector state of the EV
plugged in (its energy still to take, its battery, its own limits, what it declared), and
the bookkeeping of energy delivered and finish times. Charger response lives in
:mod:`evflex.sim.physics`, what a controller sees in :mod:`evflex.sim.sensing`.

What the EV really does and what it declared are kept apart: the physics use the actual
departure and energy need; the controller sees the declared departure and energy where the
sessions give them (else the actual ones), and sees an EV that is full as needing nothing
(a charger reports "suspended by the EV").
"""

from __future__ import annotations

import numpy as np

from evflex.model.sessions import SessionTable
from evflex.model.topology import Topology
from evflex.units import ENERGY_TOL_KWH

#: The step of an event when none is left (beyond any run).
NO_EVENT = 1 << 62


class Plugs:
    """The sessions of a run on the step grid, and the state of every connector's EV."""

    def __init__(
        self,
        S: SessionTable,
        topo: Topology,
        start_s: float,
        period_s: float,
        n_steps: int,
        ev_limits_known: bool,
        rng: np.random.Generator,
    ):
        self.S = S
        self.topo = topo
        ns, n = len(S), topo.n
        dt = period_s
        self.arr_step = np.maximum(np.ceil((S.arrival_s - start_s) / dt - 1e-9).astype(np.int64), 0)
        self.dep_step = np.minimum(np.floor((S.departure_s - start_s) / dt + 1e-9).astype(np.int64), n_steps)
        self.short = self.dep_step <= self.arr_step
        cph = topo.charger_phases[S.connector]
        self.phases = np.where(S.phases > 0, np.minimum(S.phases, cph), cph)  # conductors the EV draws on
        with np.errstate(invalid="ignore"):
            per_phase_v = topo.voltage_v[S.connector] * np.where(S.phases > 0, S.phases, self.phases)
            ev_max_a = np.fmin(S.max_power_kw * 1000.0 / per_phase_v, S.max_current_a)
        self.ev_max_a = ev_max_a
        self.ev_max_phys = np.fmin(ev_max_a, topo.max_current_a[S.connector])
        room = np.where(
            np.isnan(S.battery_kwh) | np.isnan(S.soc_arrival),
            np.inf,
            (1.0 - S.soc_arrival) * S.battery_kwh / S.efficiency,
        )
        self.request = np.minimum(S.energy_kwh, room)
        declared_e = getattr(S, "declared_energy_kwh", None)
        self.declared = np.full(ns, np.nan) if declared_e is None else np.minimum(declared_e, room)
        declared_dep = getattr(S, "declared_departure_s", None)
        self.seen_departure = (
            S.departure_s.copy()
            if declared_dep is None
            else np.where(np.isnan(declared_dep), S.departure_s, declared_dep)
        )
        self.offset = rng.uniform(0.0, 1.0, ns) * topo.precision_a[S.connector]  # each EV's draw below the pilot
        self.known_max = ev_max_a if ev_limits_known else np.full(ns, np.nan)
        self.known_ph = S.phases.copy() if ev_limits_known else np.zeros(ns, dtype=np.int64)
        has_batt = ~(np.isnan(S.battery_kwh) | np.isnan(S.soc_arrival))
        self.soc0 = np.where(has_batt, S.soc_arrival, -np.inf)  # unknown battery: never tapered
        self.battery0 = np.where(has_batt, S.battery_kwh, np.inf)
        self.delivered = np.zeros(ns)
        self.finish_s = np.full(ns, np.nan)
        self.a_order = np.argsort(self.arr_step, kind="stable")
        self.d_order = np.argsort(self.dep_step, kind="stable")
        self.ia = self.idp = 0
        self._next_arrival = self._next_departure = 0  # steps of the next ones (NO_EVENT: none left)
        self._next_events()
        # per connector: the EV plugged in now
        self.sess = np.full(n, -1, dtype=np.int64)
        self.plugged = np.zeros(n, dtype=bool)
        self.remaining = np.zeros(n)  # energy still to take [kWh] (physics)
        self.seen_left = np.zeros(n)  # energy still asked for, as the controller sees it [kWh]
        self.soc = np.full(n, -np.inf)
        self.battery = np.full(n, np.inf)
        self.eff = np.ones(n)
        self.evmax = np.zeros(n)
        self.ev_offset = np.zeros(n)
        self.ph = np.zeros(n, dtype=np.int64)
        self.arrival = np.full(n, np.nan)
        self.departure = np.full(n, np.nan)
        self.ev_known_max = np.full(n, np.nan)
        self.ev_known_ph = np.zeros(n, dtype=np.int64)
        self.has_battery = False
        self.idle_seen_kwh = np.full(n, np.nan)  # what the controller sees asked for where no EV takes energy

    def advance(self, k: int) -> np.ndarray:
        """Apply the departures and arrivals at step ``k``: the connectors whose EV changed."""
        changed = np.zeros(self.topo.n, dtype=bool)
        S = self.S
        while self.idp < len(S) and self.dep_step[self.d_order[self.idp]] <= k:
            j = self.d_order[self.idp]
            self.idp += 1
            c = S.connector[j]
            if self.sess[c] == j:
                self.delivered[j] = self.request[j] - self.remaining[c]
                self.sess[c], self.plugged[c], self.remaining[c], self.seen_left[c] = -1, False, 0.0, 0.0
                changed[c] = True
        while self.ia < len(S) and self.arr_step[self.a_order[self.ia]] <= k:
            j = self.a_order[self.ia]
            self.ia += 1
            if self.short[j]:
                continue  # present for less than one step
            c = S.connector[j]
            self.sess[c], self.plugged[c], self.remaining[c] = j, True, self.request[j]
            self.seen_left[c] = self.declared[j] if not np.isnan(self.declared[j]) else self.request[j]
            self.soc[c], self.battery[c], self.eff[c] = self.soc0[j], self.battery0[j], S.efficiency[j]
            self.has_battery = self.has_battery or self.battery0[j] < np.inf
            self.evmax[c], self.ph[c], self.ev_offset[c] = self.ev_max_phys[j], self.phases[j], self.offset[j]
            self.arrival[c], self.departure[c] = S.arrival_s[j], self.seen_departure[j]
            self.ev_known_max[c], self.ev_known_ph[c] = self.known_max[j], self.known_ph[j]
            changed[c] = True
        self._next_events()
        self.idle_seen_kwh = np.where(self.plugged, 0.0, np.nan)
        return changed

    def _next_events(self) -> None:
        ns = len(self.S)
        self._next_arrival = int(self.arr_step[self.a_order[self.ia]]) if self.ia < ns else NO_EVENT
        self._next_departure = int(self.dep_step[self.d_order[self.idp]]) if self.idp < ns else NO_EVENT

    def busy(self) -> np.ndarray:
        """Connectors whose EV still takes energy."""
        return self.plugged & (self.remaining > ENERGY_TOL_KWH)

    def next_event_step(self) -> int:
        """The next step with an arrival or a departure (:data:`NO_EVENT` when none is left)."""
        return min(self._next_arrival, self._next_departure)

    def next_arrival_step(self) -> int | None:
        return self._next_arrival if self._next_arrival < NO_EVENT else None

    def energy_seen_kwh(self, busy: np.ndarray) -> np.ndarray:
        """Energy still asked for as the controller sees it (NaN where nothing is plugged);
        ``busy`` is :meth:`busy` now."""
        return np.where(busy, self.seen_left, self.idle_seen_kwh)

    def deliver(self, energy_kwh: np.ndarray, busy: np.ndarray, t0_s: float, period_s: float) -> np.ndarray | float:
        """Book the energy taken in a step; returns the fraction of the step each EV charged
        (below 1 where its need was met inside the step; the number 1.0 when every EV charged
        the whole step)."""
        e = energy_kwh
        frac: np.ndarray | float = 1.0
        over = e > self.remaining
        if np.count_nonzero(over):
            frac = np.where(over, self.remaining / np.where(e > 0, e, 1.0), 1.0)
            e = np.where(over, self.remaining, e)
        self.remaining -= e
        self.seen_left = np.maximum(self.seen_left - e, 0.0)
        done = busy & (self.remaining <= ENERGY_TOL_KWH)
        if np.count_nonzero(done):
            self.finish_s[self.sess[done]] = t0_s + period_s * (frac[done] if isinstance(frac, np.ndarray) else frac)
            self.remaining[done] = 0.0
        if self.has_battery:
            self.soc += e * self.eff / self.battery
        return frac

    def finish(self) -> None:
        """Book the sessions still plugged in at the end of the window."""
        still = self.sess >= 0
        self.delivered[self.sess[still]] = self.request[self.sess[still]] - self.remaining[still]
