"""Physics of the charger response and the EV battery, as array kernels.

Charger response (practical attributes of seed 000 / 002): a new set-point takes effect
after an *activation delay*; the drawn current then moves toward it at a *ramp rate*; each
EV draws a fixed offset below the set-point, at most the charger's *precision* (IEC
61851-1: an EV never draws more than the pilot signal allows). Decreases are applied first
and increases only once every decrease has settled, so no row's current rises above
max(old, new) in between.

Battery: a two-stage constant-current / constant-voltage model. Up to ``taper_soc`` the EV
takes its full current; above it the acceptable current falls linearly to zero at full
charge (the usual CC-CV approximation of EV charging curves).
"""

from __future__ import annotations

import numpy as np


def response(i0_a: np.ndarray, target_a: np.ndarray, delay_s: np.ndarray, ramp_a_per_s: np.ndarray,
             period_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Average and end-of-period current of connectors moving from ``i0_a`` to ``target_a``.

    ``ramp_a_per_s`` must be positive. Decreasing connectors start after their own delay;
    increasing ones wait for the last decrease to settle (and for their own delay).
    Returns ``(average_a, end_a)``.
    """
    delta = target_a - i0_a
    if not np.count_nonzero(delta):
        return target_a, target_a
    ramp_time = np.abs(delta) / ramp_a_per_s
    down = delta < 0
    if np.count_nonzero(down):
        hold = np.maximum.reduce((delay_s + ramp_time)[down])
        t0 = np.where(down, delay_s, np.maximum(delay_s, hold))
    else:
        t0 = delay_s
    t1 = t0 + ramp_time
    if np.count_nonzero(t1 > period_s):  # some ramps run past the end of the period
        t0 = np.minimum(t0, period_s)
        done = t1 <= period_s
        end = np.where(done, target_a, i0_a + np.sign(delta) * ramp_a_per_s * (period_s - t0))
        t1c = np.minimum(t1, period_s)
        area = i0_a * t0 + 0.5 * (i0_a + end) * (t1c - t0) + target_a * (period_s - t1c)
        return area / period_s, end
    area = i0_a * t0 + 0.5 * (i0_a + target_a) * ramp_time + target_a * (period_s - t1)
    return area / period_s, target_a


def taper_limit_a(soc: np.ndarray, max_a: np.ndarray, taper_soc: float) -> np.ndarray:
    """Current the battery accepts at state of charge ``soc`` (CC-CV) [A]; ``soc`` NaN or
    -inf (no battery model) means no taper."""
    # maximum() keeps NaN and fmin() then drops it: NaN -> 1, and -inf -> inf -> 1
    return max_a * np.fmin(np.maximum((1.0 - soc) * (1.0 / (1.0 - taper_soc)), 0.0), 1.0)


def deliverable_energy_kwh(duration_s, power_kw, battery_kwh, soc_arrival, efficiency, taper_soc: float):
    """Most energy, at the meter, an EV takes in ``duration_s`` charging flat out [kWh].

    Constant power ``power_kw`` until ``taper_soc``, then the linear CC-CV taper of
    :func:`taper_limit_a`, integrated exactly: in the taper the state of charge approaches
    1 exponentially, ``1 - soc(t) = (1 - soc_k) exp(-t P eta / ((1 - taper_soc) B))``.
    Where the battery is unknown (NaN) the answer is ``power_kw * duration``.
    """
    h = np.asarray(duration_s, dtype=float) / 3600.0
    p, b = np.asarray(power_kw, dtype=float), np.asarray(battery_kwh, dtype=float)
    s0, eta = np.asarray(soc_arrival, dtype=float), np.asarray(efficiency, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_cc = np.clip((taper_soc - s0) * b / (p * eta), 0.0, None)
        cc_h = np.minimum(h, t_cc)
        s_k = np.maximum(s0, np.minimum(taper_soc, s0 + cc_h * p * eta / b))
        tau = np.maximum(h - t_cc, 0.0)
        s_end = 1.0 - (1.0 - s_k) * np.exp(-tau * p * eta / ((1.0 - taper_soc) * b))
        e = p * cc_h + np.where(tau > 0, (s_end - s_k) * b / eta, 0.0)
    return np.where(np.isnan(b) | np.isnan(s0), p * h, e)
