"""A charging plan as a linear programme, built as sparse matrices and solved on HiGHS.

What belongs here: the LP of one plan over a horizon, from arrays (sessions, steps, linear
site rows), built without a Python loop over constraints (scipy.sparse), and its solution
through highspy's own API. Nothing here reads files or knows the simulator or the
controller: the planning strategies call it.

Variables: ``x[s, t] >= 0``, the current of session s at step t [A], only while it is
plugged in (``arrival_step[s] <= t < departure_step[s]``) and at most
``max_current_a[s]``; and ``u[s]`` in ``[0, energy_kwh[s]]``, the energy session s is not
given [kWh].

Rows:
- the site rows: ``sum_s coef_a[r, s] * x[s, t] <= cap_a[r, t]`` for every row r and step t
  (``coef_a`` as the real-time layer's linear rows see the session's EV: A of row per A of
  set-point; ``cap_a`` the limit less the base load, negative values taken as 0);
- energy: ``sum_t kw_per_a[s] * period_h * x[s, t] + u[s] == energy_kwh[s]``: never more
  than asked, the rest reported as shortfall. A request under ``ENERGY_TOL_KWH`` is none
  (below HiGHS's tolerances such a row can be taken for infeasible).

Objective [EUR]: the energy bought at ``price_eur_per_kwh[t]``, the shortfall at
``shortfall_eur_per_kwh`` (large: serve first, then save), a tie-break of
``early_eur_per_kwh`` per kWh and step of delay (charge earlier when it costs the same), and
with ``demand_eur_per_kw`` a demand charge on the plan's peak: one more variable
``peak_kw >= max(sunk_peak_kw, base)`` above the site power ``sum_s kw_per_a[s] x[s, t] +
base_kw[t]`` of every step (what the billing period's peak already is costs nothing more).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from evflex.units import ENERGY_TOL_KWH

#: Default penalty on energy not served [EUR/kWh]: above any price, so serving comes first.
SHORTFALL_EUR_PER_KWH = 1000.0
#: Default tie-break for charging earlier [EUR/kWh per step of delay].
EARLY_EUR_PER_KWH = 1e-6


@dataclass(frozen=True)
class ChargingLP:
    """The inputs of one plan (S sessions, T steps, R site rows), as arrays."""

    period_h: float
    arrival_step: np.ndarray  # (S,) int, first step plugged in
    departure_step: np.ndarray  # (S,) int, first step gone (exclusive)
    energy_kwh: np.ndarray  # (S,) energy asked
    max_current_a: np.ndarray  # (S,) per-phase ceiling
    kw_per_a: np.ndarray  # (S,) power per ampere of set-point [kW/A] (phases x voltage / 1000)
    coef_a: np.ndarray  # (R, S) row current per ampere of set-point
    cap_a: np.ndarray  # (R, T) row limit less base load [A]
    price_eur_per_kwh: np.ndarray  # (T,)
    shortfall_eur_per_kwh: float = SHORTFALL_EUR_PER_KWH
    early_eur_per_kwh: float = EARLY_EUR_PER_KWH
    demand_eur_per_kw: float = 0.0  # a demand charge on the plan's peak site power
    sunk_peak_kw: float = 0.0  # the billing period's peak so far: paid anyway
    base_kw: np.ndarray | None = None  # (T,) site power besides the EVs (building less PV) [kW]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(sessions, steps, rows)."""
        return len(self.energy_kwh), self.cap_a.shape[1], self.cap_a.shape[0]

    def problems(self) -> list[str]:
        """What is wrong with the inputs, one line each (empty: fine)."""
        S, T, R = self.shape
        out = []
        for name, a, shape in (
            ("arrival_step", self.arrival_step, (S,)),
            ("departure_step", self.departure_step, (S,)),
            ("max_current_a", self.max_current_a, (S,)),
            ("kw_per_a", self.kw_per_a, (S,)),
            ("coef_a", self.coef_a, (R, S)),
            ("price_eur_per_kwh", self.price_eur_per_kwh, (T,)),
        ):
            if np.shape(a) != shape:
                out.append(f"{name}: shape {np.shape(a)}, expected {shape}")
        if out:
            return out
        if not self.period_h > 0:
            out.append(f"period_h: {self.period_h} is not positive")
        for name, a in (("energy_kwh", self.energy_kwh), ("max_current_a", self.max_current_a)):
            if np.any(~np.isfinite(a)) or np.any(a < 0):
                out.append(f"{name}: values must be finite and >= 0")
        if np.any(self.kw_per_a <= 0):
            out.append("kw_per_a: values must be > 0")
        if np.any(self.arrival_step > self.departure_step):
            out.append("arrival_step: after departure_step for some sessions")
        if self.base_kw is not None and np.shape(self.base_kw) != (T,):
            out.append(f"base_kw: shape {np.shape(self.base_kw)}, expected ({T},)")
        if not (np.isfinite(self.demand_eur_per_kw) and self.demand_eur_per_kw >= 0):
            out.append("demand_eur_per_kw: must be finite and >= 0")
        return out


@dataclass(frozen=True)
class Plan:
    """A solved plan: set-points per session and step, what is not served, how it went."""

    current_a: np.ndarray  # (S, T)
    shortfall_kwh: np.ndarray  # (S,)
    status: str  # HiGHS model status, e.g. "Optimal"
    objective_eur: float
    energy_cost_eur: float
    solve_s: float
    peak_kw: float = float("nan")  # the plan's peak site power, where a demand charge is modelled

    @property
    def ok(self) -> bool:
        return self.status == "Optimal"


def _variables(lp: ChargingLP) -> tuple[np.ndarray, np.ndarray]:
    """The (session, step) of every current variable, session-major."""
    S, T, _ = lp.shape
    a = np.clip(lp.arrival_step, 0, T).astype(np.int64)
    d = np.clip(lp.departure_step, 0, T).astype(np.int64)
    n = np.maximum(d - a, 0)
    s = np.repeat(np.arange(S), n)
    start = np.cumsum(n) - n
    t = np.arange(int(n.sum())) - np.repeat(start, n) + np.repeat(a, n)
    return s, t


def build(lp: ChargingLP) -> tuple[highspy.HighsLp, np.ndarray, np.ndarray]:
    """The HiGHS model of ``lp`` and the (session, step) of its current variables (columns
    0..K-1; the shortfalls follow, one per session)."""
    bad = lp.problems()
    if bad:
        raise ValueError("; ".join(bad))
    S, T, R = lp.shape
    s, t = _variables(lp)
    K = s.size
    energy_kwh = np.where(lp.energy_kwh < ENERGY_TOL_KWH, 0.0, lp.energy_kwh).astype(np.float64)
    kwh_per_a = lp.kw_per_a[s] * lp.period_h  # energy of 1 A over one step [kWh]
    # site rows r * T + t
    C = lp.coef_a[:, s]  # (R, K)
    rr, kk = np.nonzero(C)
    site = sp.coo_matrix((C[rr, kk], (rr * T + t[kk], kk)), shape=(R * T, K + S))
    # energy rows, one per session: its currents and its shortfall
    energy = sp.coo_matrix(
        (np.concatenate([kwh_per_a, np.ones(S)]), (np.concatenate([s, np.arange(S)]), np.arange(K + S))),
        shape=(S, K + S),
    )
    cost = lp.price_eur_per_kwh[t] * kwh_per_a + lp.early_eur_per_kwh * kwh_per_a * t
    col_cost = [cost, np.full(S, lp.shortfall_eur_per_kwh)]
    col_lower, col_upper = [np.zeros(K + S)], [lp.max_current_a[s], energy_kwh]
    row_lower = [np.full(R * T, -highspy.kHighsInf), energy_kwh]
    row_upper = [np.maximum(lp.cap_a, 0.0).ravel(), energy_kwh]
    blocks = [site, energy]
    n_col = K + S
    if lp.demand_eur_per_kw > 0:  # the peak: one column, at least what is sunk, above every step's power
        base = np.zeros(T) if lp.base_kw is None else np.asarray(lp.base_kw, dtype=np.float64)
        peak = sp.coo_matrix(
            (
                np.concatenate([lp.kw_per_a[s], -np.ones(T)]),
                (np.concatenate([t, np.arange(T)]), np.concatenate([np.arange(K), np.full(T, K + S)])),
            ),
            shape=(T, K + S + 1),
        )
        blocks = [sp.hstack([b, sp.coo_matrix((b.shape[0], 1))]) for b in blocks] + [peak]
        col_cost.append(np.array([lp.demand_eur_per_kw]))
        col_lower.append(np.array([max(lp.sunk_peak_kw, float(base.max(initial=0.0)), 0.0)]))
        col_upper.append(np.array([highspy.kHighsInf]))
        row_lower.append(np.full(T, -highspy.kHighsInf))
        row_upper.append(-base)
        n_col += 1
    A = sp.vstack(blocks).tocsc()
    model = highspy.HighsLp()
    model.num_col_ = n_col
    model.num_row_ = A.shape[0]
    model.col_cost_ = np.concatenate(col_cost)
    model.col_lower_ = np.concatenate(col_lower)
    model.col_upper_ = np.concatenate(col_upper).astype(np.float64)
    model.row_lower_ = np.concatenate(row_lower)
    model.row_upper_ = np.concatenate(row_upper)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = A.indptr
    model.a_matrix_.index_ = A.indices
    model.a_matrix_.value_ = A.data
    return model, s, t


def solve_plan(lp: ChargingLP, time_limit_s: float = 10.0) -> Plan:
    """Build and solve ``lp`` on HiGHS within ``time_limit_s``. A plan that is not optimal
    (time limit, numerical trouble) comes back with its status and zero currents: the caller
    falls back to the real-time heuristic."""
    t0 = time.perf_counter()
    model, s, t = build(lp)
    S, T, _ = lp.shape
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(model)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    current = np.zeros((S, T))
    shortfall = lp.energy_kwh.astype(np.float64)
    objective = float("nan")
    energy_cost = 0.0
    if status == "Optimal":
        x = np.asarray(h.getSolution().col_value)
        K = s.size
        current[s, t] = np.clip(x[:K], 0.0, lp.max_current_a[s])
        shortfall = np.clip(x[K : K + S], 0.0, None)
        objective = float(h.getInfo().objective_function_value)
        energy_cost = float(np.sum(lp.price_eur_per_kwh[t] * lp.kw_per_a[s] * lp.period_h * current[s, t]))
        peak = float(x[K + S]) if lp.demand_eur_per_kw > 0 else float("nan")
        return Plan(current, shortfall, status, objective, energy_cost, time.perf_counter() - t0, peak)
    return Plan(current, shortfall, status, objective, energy_cost, time.perf_counter() - t0)
