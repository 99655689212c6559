"""Physics of the charger response and the EV battery, as array kernels.

Charger response (practical attributes of seed 000 / 002): a new set-point takes effect
after an *activation delay* (until then the previous one applies); the drawn current moves
toward whatever applies at a *ramp rate*, over as many steps as that takes; each EV draws a
fixed offset below the set-point, at most the charger's *precision* (IEC 61851-1: an EV
never draws more than the pilot signal allows). Decreases go first: a connector given a
higher set-point starts rising only once every connector on its way down has settled.

Battery: a two-stage constant-current / constant-voltage model. Up to ``taper_soc`` the EV
takes its full current; above it the acceptable current falls linearly to zero at full
charge (the usual CC-CV approximation of EV charging curves).
"""

from __future__ import annotations

import numpy as np

#: A difference between current and target below this is settled, not a ramp [A].
SETTLED_A = 1e-6


def ramp_toward(
    start_a: np.ndarray, target_a: np.ndarray, ramp_a_per_s: np.ndarray, duration_s
) -> tuple[np.ndarray, np.ndarray]:
    """Move from ``start_a`` toward ``target_a`` at ``ramp_a_per_s`` for ``duration_s``.

    Returns ``(area, end)``: the integral of the current [A s] and where it ends [A]. The
    trajectory is a straight ramp for ``tau = |end - start| / ramp`` then flat, so its area
    is ``end * duration - (end - start) * tau / 2`` whether or not the target is reached.
    """
    reach = ramp_a_per_s * duration_s
    move = np.minimum(np.maximum(target_a - start_a, -reach), reach)
    end = start_a + move
    return end * duration_s - 0.5 * move * (np.abs(move) / ramp_a_per_s), end


def response(
    i0_a: np.ndarray,
    old_target_a: np.ndarray,
    new_target_a: np.ndarray,
    changed: np.ndarray,
    gate_s: np.ndarray,
    delay_s: np.ndarray,
    ramp_a_per_s: np.ndarray,
    period_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average and end current of connectors over one period, and their carried gates.

    Parameters
    ----------
    i0_a : current at the start of the period [A].
    old_target_a, new_target_a : what the previous and the new set-point let the EV draw [A].
    changed : the set-point changed at the start of this period: the old target applies for
        ``delay_s`` (which must be shorter than the period), then the new one.
    gate_s : time into this period before which a connector may not start ramping (a rise
        still waiting for decreases elsewhere to settle) [s].
    ramp_a_per_s : must be positive.

    Returns ``(average_a, end_a, gate_s)`` with the gates carried into the next period.
    """
    gated = bool(np.count_nonzero(gate_s))
    d: np.ndarray | float
    area_a: np.ndarray | float
    if np.count_nonzero(changed):
        d = np.where(changed, delay_s, 0.0)
        # during the activation delay: hold until the gate, then move toward the old target
        if gated:
            area_a, i_a = ramp_toward(i0_a, old_target_a, ramp_a_per_s, np.maximum(d - gate_s, 0.0))
            area_a += i0_a * np.minimum(gate_s, d)
            start = np.where(changed, d, gate_s)
        else:
            area_a, i_a = ramp_toward(i0_a, old_target_a, ramp_a_per_s, d)
            start = d
        # after it: toward the new target; new rises wait for every decrease to settle
        down = new_target_a < i_a - SETTLED_A
        if np.count_nonzero(down):
            hold = np.maximum.reduce((start + (i_a - new_target_a) / ramp_a_per_s)[down])
            start = np.where(changed & (new_target_a > i_a + SETTLED_A), np.maximum(start, hold), start)
    elif gated:
        d, area_a, i_a, start = 0.0, 0.0, i0_a, gate_s
    else:  # nothing new, nothing waiting: every connector just moves toward its target
        area, end = ramp_toward(i0_a, new_target_a, ramp_a_per_s, period_s)
        return area / period_s, end, gate_s
    begin = np.minimum(start, period_s)
    area_b, end = ramp_toward(i_a, new_target_a, ramp_a_per_s, period_s - begin)
    area_b += i_a * (begin - d)
    return (area_a + area_b) / period_s, end, np.maximum(start - period_s, 0.0)


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
