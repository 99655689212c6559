"""Steady stretches: many steps under unchanged set-points, computed at once.

What belongs here: the closed-form trajectory of EVs charging under constant set-points with
settled chargers, step by step, including the CC-CV taper. Under a constant pilot ``P`` an EV
draws ``min(P, cap(soc)) - offset`` with ``cap = max_a * min(1, (1 - soc) / (1 - taper_soc))``
evaluated at each step's start, exactly as the step-by-step simulator does; in the taper the
state of charge then follows an affine recursion, ``u' = (1 - a c) u + offset c`` for
``u = 1 - soc``, ``a = max_a / (1 - taper_soc)`` and ``c`` the state of charge one ampere
adds in a step, solved in closed form. (Within a step the step-by-step simulator ramps the
current to its new, slightly lower, target at the charger's ramp rate; here it is taken to
be there at once: a difference of the order of 1e-4 A at 60 s steps.)
"""

from __future__ import annotations

import numpy as np

from evflex.sim.physics import TAPER_MARGIN


def tapering_currents(
    soc0: np.ndarray,
    battery_kwh: np.ndarray,
    efficiency: np.ndarray,
    max_a: np.ndarray,
    pilot_a: np.ndarray,
    offset_a: np.ndarray,
    kwh_per_a: np.ndarray,
    taper_soc: float,
    steps: int,
) -> np.ndarray:
    """(steps, n) current each EV draws in each of the next ``steps`` steps [A].

    Parameters are per connector (n,): state of charge at the start of the first step
    (-inf: no battery model), battery [kWh] (inf: none), grid-to-battery efficiency, the
    EV's own limit [A], the pilot [A] (already known to be at or above the minimum), the
    EV's offset below the pilot [A], and the energy one ampere delivers in one step
    [kWh/A] (conductors x voltage x step).
    """
    n = len(soc0)
    need = np.minimum(pilot_a, max_a)
    flat = np.maximum(need - offset_a, 0.0)
    out = np.empty((steps, n))
    out[:] = flat
    model = np.isfinite(battery_kwh) & np.isfinite(soc0) & (flat > 0)
    if not np.count_nonzero(model):
        return out
    c = np.where(model, kwh_per_a * efficiency / np.where(model, battery_kwh, 1.0), 0.0)  # soc per A per step
    s0 = np.where(model, soc0, 0.0)
    delta = flat * c  # soc gained per step while flat
    if float((s0 + steps * delta).max()) < taper_soc - TAPER_MARGIN:  # below the taper throughout
        return out
    a = max_a / (1.0 - taper_soc)
    soc_star = 1.0 - need / np.where(a > 0, a, np.inf)  # cap falls below the need above this (>= taper_soc)
    # finite over positive or infinite: no division by zero, no inf / inf
    n_flat = np.where(s0 > soc_star, 0.0, np.floor((soc_star - s0) / np.where(delta > 0, delta, np.inf)) + 1.0)
    n_flat = np.where(model, np.minimum(n_flat, steps), steps)
    if n_flat.min() >= steps:  # nobody reaches the taper in these steps
        return out
    j = np.arange(steps, dtype=np.float64)[:, None]
    u_start = 1.0 - (s0 + n_flat * delta)  # 1 - soc when the taper starts
    r = 1.0 - a * c
    u_fix = np.where(a > 0, offset_a / np.where(a > 0, a, 1.0), 0.0)
    k = np.maximum(j - n_flat, 0.0)
    u = u_fix + (u_start - u_fix) * np.power(np.where(r > 0, r, 0.0), k)
    taper_a = np.maximum(a * u - offset_a, 0.0)
    return np.where(model & (j >= n_flat), np.minimum(taper_a, flat), out)
