"""Tariffs: what the site pays for its energy and its peak, as array functions.

What belongs here: a tariff as data (:class:`Tariff`: a flat energy price, time-of-use
periods by time of day, weekday and month, or a dynamic price series such as the day-ahead
market; an export price; a demand charge on the peak of each billing period) and the pure
computations on it: the price at given times (:meth:`Tariff.energy_price`), the energy cost of
a site's metered energy per step (:func:`energy_cost_eur`), the demand charge on its power
(:func:`demand_charge_eur`), the penalty of a subscribed capacity (:func:`capacity_excess_eur`)
and the carbon of its imports at the grid's intensity
(:meth:`Tariff.carbon_intensity`, :func:`co2_kg`). Reading tariffs from files and scenarios lives in ``io``; the
planners and the KPIs call these.

Sign convention: site energy and power are positive when the site imports from the grid;
exported energy (PV, V2G) is paid at ``export_eur_per_kwh``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import numpy as np

from evflex.model.series import StepSeries

#: Minutes in a day: a time-of-use period ending at midnight ends at this minute.
DAY_MIN = 24 * 60
ALL_DAYS = frozenset(range(7))  # Monday = 0
ALL_MONTHS = frozenset(range(1, 13))


@dataclass(frozen=True)
class TouPeriod:
    """A time-of-use price holding from ``start_min`` to ``end_min`` (minutes after local
    midnight; ``end_min`` <= ``start_min`` runs over midnight) on ``days`` (0 = Monday) of
    ``months`` (1-12)."""

    start_min: int
    end_min: int
    eur_per_kwh: float
    days: frozenset[int] = ALL_DAYS
    months: frozenset[int] = ALL_MONTHS

    def covers(self, minute: np.ndarray, weekday: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Whether the period holds at local times given as minute of the day, weekday and
        month (arrays of one shape)."""
        if self.start_min < self.end_min:
            in_day = (minute >= self.start_min) & (minute < self.end_min)
        else:  # over midnight (or the whole day when start == end)
            in_day = (minute >= self.start_min) | (minute < self.end_min)
        return in_day & np.isin(weekday, list(self.days)) & np.isin(month, list(self.months))


@dataclass(frozen=True)
class Tariff:
    """What the site pays (see the module docstring).

    The energy price at a time is the first of: a critical-peak event's price
    (``critical_peaks``), the ``prices`` series (values in EUR/kWh), the first time-of-use
    period that covers the time, the flat ``energy_eur_per_kwh``. A time
    none of them prices is an error (:meth:`energy_price` raises ``ValueError``). With
    inclining ``blocks`` instead, a kWh costs the price of the block the billing period's
    imports have reached (:func:`block_cost_eur`); the last block is open (up to inf).
    """

    energy_eur_per_kwh: float | None = None
    tou: tuple[TouPeriod, ...] = ()
    prices: StepSeries | None = None
    export_eur_per_kwh: float = 0.0
    demand_charge_eur_per_kw: float = 0.0
    billing: str = "run"  # the demand charge's billing period: the whole "run" or each "month"
    critical_peaks: tuple[tuple[float, float, float], ...] = ()  # (start_s, end_s, EUR/kWh) events
    blocks: tuple[tuple[float, float], ...] = ()  # inclining blocks: (up to kWh per billing period, EUR/kWh)
    subscribed_kw: float | None = None  # a subscribed capacity: import above it is charged ...
    excess_eur_per_kw: float = 0.0  # ... per kW of the billing period's peak beyond it
    carbon_g_per_kwh: float | None = None  # the grid's carbon intensity, flat ...
    carbon: StepSeries | None = None  # ... or as a series [gCO2/kWh]
    name: str = field(default="", compare=False)

    @property
    def has_carbon(self) -> bool:
        return self.carbon is not None or self.carbon_g_per_kwh is not None

    def carbon_intensity(self, times_s: np.ndarray) -> np.ndarray:
        """The grid's carbon intensity at each of ``times_s`` [gCO2/kWh]: the series where it
        has a value, else the flat figure; ``ValueError`` where neither (or none is given)."""
        t = np.asarray(times_s, dtype=np.float64)
        out = np.full(t.shape, np.nan if self.carbon_g_per_kwh is None else self.carbon_g_per_kwh)
        if self.carbon is not None:
            inside = (t >= self.carbon.start_s) & (t < self.carbon.end_s)
            out[inside] = np.asarray(self.carbon.sample(t[inside]), dtype=np.float64).reshape(-1)
        if np.isnan(out).any():
            raise ValueError("no carbon intensity for some times (give carbon_g_per_kwh as the rest)")
        return out

    def energy_price(self, times_s: np.ndarray, tz: tzinfo) -> np.ndarray:
        """The import price at each of ``times_s`` (POSIX s) [EUR/kWh]; local time in ``tz``
        decides the time-of-use periods."""
        t = np.asarray(times_s, dtype=np.float64)
        out = np.full(t.shape, np.nan)
        for start_s, end_s, eur in self.critical_peaks:  # announced events override the rest
            out[np.isnan(out) & (t >= start_s) & (t < end_s)] = eur
        if self.prices is not None:
            inside = np.isnan(out) & (t >= self.prices.start_s) & (t < self.prices.end_s)
            out[inside] = np.asarray(self.prices.sample(t[inside]), dtype=np.float64).reshape(-1)
        if self.tou and np.isnan(out).any():
            minute, weekday, month = local_calendar(t, tz)
            for p in self.tou:
                take = np.isnan(out) & p.covers(minute, weekday, month)
                out[take] = p.eur_per_kwh
        if self.energy_eur_per_kwh is not None:
            out[np.isnan(out)] = self.energy_eur_per_kwh
        if np.isnan(out).any():
            first = datetime.fromtimestamp(float(t[np.isnan(out)][0]), tz).isoformat()
            raise ValueError(f"tariff{' ' + self.name if self.name else ''}: no price at {first}")
        return out


def local_calendar(times_s: np.ndarray, tz: tzinfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minute of the day, weekday (0 = Monday) and month (1-12) of each POSIX time in ``tz``
    (daylight saving time as the zone has it)."""
    import pandas as pd

    idx = pd.to_datetime(np.asarray(times_s, dtype=np.float64), unit="s", utc=True).tz_convert(tz)
    minute = np.asarray(idx.hour * 60 + idx.minute, dtype=np.int64)
    return minute, np.asarray(idx.day_of_week, dtype=np.int64), np.asarray(idx.month, dtype=np.int64)


def energy_cost_eur(site_kwh: np.ndarray, price_eur_per_kwh: np.ndarray, export_eur_per_kwh: float = 0.0) -> float:
    """What the site pays for its energy: each step's import at that step's price, less its
    export at the export price [EUR]."""
    e = np.asarray(site_kwh, dtype=np.float64)
    imported, exported = np.maximum(e, 0.0), np.maximum(-e, 0.0)
    return float(imported @ np.asarray(price_eur_per_kwh, dtype=np.float64) - export_eur_per_kwh * exported.sum())


def block_cost_eur(
    site_kwh: np.ndarray,
    times_s: np.ndarray,
    tz: tzinfo,
    blocks: tuple[tuple[float, float], ...],
    billing: str = "run",
    export_eur_per_kwh: float = 0.0,
) -> float:
    """The energy cost under an inclining block rate: within each billing period, the
    imports up to the first block's ``up to`` kWh at its price, the next ones at the next
    block's, and so on (the last block open); export at the export price [EUR]."""
    e = np.asarray(site_kwh, dtype=np.float64)
    imported = np.maximum(e, 0.0)
    bounds = np.array([0.0] + [b for b, _ in blocks[:-1]])
    prices = np.array([p for _, p in blocks])
    # the cost of the first x kWh of a period: piecewise linear through the block bounds
    at_bounds = np.concatenate([[0.0], np.cumsum(np.diff(bounds) * prices[:-1])])

    def cost_of(x: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, len(prices) - 1)
        return at_bounds[k] + (x - bounds[k]) * prices[k]

    key = _billing_keys(times_s, tz, billing, len(e))
    total = 0.0
    for period in np.unique(key):
        total += float(cost_of(np.array([imported[key == period].sum()]))[0])
    return total - export_eur_per_kwh * float(np.maximum(-e, 0.0).sum())


def _billing_keys(times_s: np.ndarray, tz: tzinfo, billing: str, n: int) -> np.ndarray:
    """The billing period of each time: 0 for a ``run``, year x 12 + month for a ``month``."""
    if billing not in ("run", "month"):
        raise ValueError(f"billing {billing!r}: must be 'run' or 'month'")
    if billing == "run" or not n:
        return np.zeros(n, dtype=np.int64)
    import pandas as pd

    idx = pd.to_datetime(np.asarray(times_s, dtype=np.float64), unit="s", utc=True).tz_convert(tz)
    return np.asarray(idx.year * 12 + idx.month, dtype=np.int64)


def co2_kg(site_kwh: np.ndarray, g_per_kwh: np.ndarray) -> float:
    """The carbon emitted for the site's imports at the grid's intensity [kg]; exports are not
    credited (they displace an unknown mix)."""
    return float(np.maximum(np.asarray(site_kwh, dtype=np.float64), 0.0) @ np.asarray(g_per_kwh) / 1000.0)


def billing_peaks_kw(site_kw: np.ndarray, times_s: np.ndarray, tz: tzinfo, billing: str = "run") -> np.ndarray:
    """The highest import power of each billing period (``run``: the whole series; ``month``:
    each calendar month in ``tz``), in time order [kW]."""
    p = np.maximum(np.asarray(site_kw, dtype=np.float64), 0.0)
    key = _billing_keys(times_s, tz, billing, len(p))
    return np.array([p[key == k].max() for k in np.unique(key)])


def demand_charge_eur(
    site_kw: np.ndarray, times_s: np.ndarray, tz: tzinfo, eur_per_kw: float, billing: str = "run"
) -> float:
    """The demand charge: ``eur_per_kw`` on the highest import power of each billing period
    (:func:`billing_peaks_kw`) [EUR]."""
    return float(eur_per_kw * billing_peaks_kw(site_kw, times_s, tz, billing).sum())


def capacity_excess_eur(
    site_kw: np.ndarray, times_s: np.ndarray, tz: tzinfo, subscribed_kw: float, eur_per_kw: float, billing: str = "run"
) -> float:
    """The penalty of a subscribed capacity: ``eur_per_kw`` per kW by which each billing
    period's peak import exceeds ``subscribed_kw`` [EUR]."""
    peaks = billing_peaks_kw(site_kw, times_s, tz, billing)
    return float(eur_per_kw * np.maximum(peaks - subscribed_kw, 0.0).sum())
