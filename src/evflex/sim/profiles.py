"""Embedded site profiles for when a scenario gives no measured series.

Both are *stylised* and labelled so in every output; use measured series (``{ file = ...}``)
for studies.

Office building load: the weekday shape of a commercial standard load profile (working
hours 08:00-18:00, as in the BDEW G1 "commerce, weekdays 8-18" profile): night base, a
morning ramp from 06:00 to 09:00, a plateau with a lunch bump, an afternoon decline to
19:00; weekends and nights at the base. Small autocorrelated noise (seeded) and a fixed
phase split with L1 heavier (single-phase office loads are seldom balanced).

PV: clear-sky output from the sun's elevation (declination after Cooper 1969, equation of
time after Spencer 1971, hour angle from longitude), scaled by a daily clearness drawn
from a seeded beta distribution.
"""

from __future__ import annotations

from datetime import tzinfo

import numpy as np
import pandas as pd

from evflex.units import N_PHASES

#: Share of the building load on L1, L2, L3.
OFFICE_PHASE_SHARE = np.array([0.36, 0.33, 0.31])
#: Resolution of the generated series [s] (the usual metering interval).
PROFILE_PERIOD_S = 900.0


def _local_hours(times_s: np.ndarray, tz: tzinfo) -> tuple[np.ndarray, np.ndarray]:
    idx = pd.to_datetime(times_s, unit="s", utc=True).tz_convert(tz)
    hours = (idx.hour + idx.minute / 60.0 + idx.second / 3600.0).to_numpy(dtype=float)
    return hours, idx.day_of_week.to_numpy()


def office_shape(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Fraction (0-1) of the span between base and peak load at local ``hour`` [h]."""
    ramp_up = np.clip((hour - 6.0) / 3.0, 0.0, 1.0)
    ramp_down = np.clip((19.0 - hour) / 3.0, 0.0, 1.0)
    day = np.minimum(ramp_up, ramp_down)
    lunch = 0.12 * np.exp(-0.5 * ((hour - 12.5) / 0.75) ** 2)
    afternoon = np.where(hour > 13.5, 0.1 * np.clip((hour - 13.5) / 2.5, 0.0, 1.0), 0.0)
    shape = np.clip(day * (0.9 + lunch - afternoon), 0.0, 1.0)
    return np.where(weekday >= 5, 0.0, shape)


def office_load_a(
    start_s: float, end_s: float, tz: tzinfo, voltage_ln_v: float, peak_kw: float, base_kw: float, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Office building load on each phase, every 15 min from ``start_s`` to ``end_s``.

    Returns ``(times_s, current_a)`` with ``current_a`` of shape (k, 3) [A].
    """
    times = np.arange(start_s, end_s + PROFILE_PERIOD_S, PROFILE_PERIOD_S)
    hour, wd = _local_hours(times, tz)
    power = base_kw + (peak_kw - base_kw) * office_shape(hour, wd)
    rng = np.random.default_rng(seed)
    noise = np.zeros(len(times))
    eps = rng.normal(0.0, 0.03, len(times))
    for k in range(1, len(times)):  # AR(1): slow wander of a few percent
        noise[k] = 0.8 * noise[k - 1] + eps[k]
    power = np.clip(power * (1.0 + noise), 0.0, None)
    current = power[:, None] * 1000.0 * OFFICE_PHASE_SHARE[None, :] / voltage_ln_v
    return times, current


def solar_elevation_sin(times_s: np.ndarray, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Sine of the sun's elevation at POSIX ``times_s`` (negative at night)."""
    t = pd.to_datetime(times_s, unit="s", utc=True)
    doy = t.dayofyear.to_numpy(dtype=float)
    hour_utc = (t.hour + t.minute / 60.0 + t.second / 3600.0).to_numpy(dtype=float)
    g = 2.0 * np.pi / 365.0 * (doy - 1.0 + (hour_utc - 12.0) / 24.0)
    eot_min = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )
    decl = np.deg2rad(23.45) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)
    solar_time_h = hour_utc + longitude_deg / 15.0 + eot_min / 60.0
    hour_angle = np.deg2rad(15.0 * (solar_time_h - 12.0))
    lat = np.deg2rad(latitude_deg)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def pv_power_kw(
    start_s: float, end_s: float, peak_kw: float, latitude_deg: float, longitude_deg: float, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """PV output every 15 min from ``start_s`` to ``end_s``: ``(times_s, power_kw)``."""
    times = np.arange(start_s, end_s + PROFILE_PERIOD_S, PROFILE_PERIOD_S)
    # evaluate at the middle of each interval
    s = np.clip(solar_elevation_sin(times + PROFILE_PERIOD_S / 2, latitude_deg, longitude_deg), 0.0, None)
    days = np.floor((times - times[0]) / 86400.0).astype(int)
    rng = np.random.default_rng(seed)
    clearness = rng.beta(2.5, 1.2, days.max() + 1)
    return times, peak_kw * s**1.2 * clearness[days]


def phase_split(power_kw: np.ndarray, voltage_ln_v: float) -> np.ndarray:
    """Per-phase current of a balanced three-phase load of ``power_kw`` (k, 3) [A]."""
    return np.repeat((np.asarray(power_kw) * 1000.0 / (N_PHASES * voltage_ln_v))[:, None], N_PHASES, axis=1)
