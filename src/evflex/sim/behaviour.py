r"""Behaviour generators: synthetic charging sessions for a site's connectors.

What belongs here: the statistical models of *who* plugs in *when*, for *how long*, needing
*how much* energy, with *which* car, and the packaged data behind them. The output is a
sessions table (a :class:`pandas.DataFrame` with the columns :data:`SESSION_COLUMNS`),
the same table :mod:`evflex.io.acn` returns for real sessions.

Profiles
--------
``workplace``, ``home``, ``public`` (from ElaadNL statistics) and ``fleet`` (a company-fleet
schedule). Their parameters are in :data:`PROFILES`; every number there is either read
from the packaged data (``evflex/datasets/elaadnl``, see its README for provenance) or is
a modelling *assumption*, said so, with its reasoning.

The ElaadNL model (workplace, home, public)
-------------------------------------------
Arrivals
    Per connector, a non-homogeneous Poisson process: on each local calendar day the
    number of arrivals is Poisson with mean ``rate_per_day_weekday`` (Mon-Fri) or
    ``rate_per_day_weekend`` (Sat, Sun), and each arrival falls in a 15-min slot drawn
    from the ElaadNL arrival shares of the profile's segment (weekday or weekend table),
    uniformly within the slot. Times of day are local wall-clock times in the zone of
    ``start``, so the shape follows the clock across daylight-saving changes (a time in
    the spring-forward gap moves one hour later; an ambiguous autumn time takes the
    summer-time instant). An arrival that finds its connector occupied is lost: the driver
    goes elsewhere.
Stay
    Draw a connection time :math:`X` from the segment's exceedance table by inverse
    transform (linear interpolation between published percentiles) and rescale it by the
    time of day of arrival. The target is the ratio :math:`r(t) = m(t) / \bar m`, where
    :math:`m(t)` is the ElaadNL mean connection time of sessions arriving in half-hour
    :math:`t` and :math:`\bar m` its mean *weighted by the weekday arrival shares* (so the
    overall mean of the distribution is kept: the weighted table mean is within 10 % of
    the distribution's mean, while the plain column mean would be 25 % off for
    workplace). Half-hours without a published mean use :math:`r = 1`. The stay is
    ``clip(s(t) * X, MIN_STAY_H, max_stay_h)`` with :math:`s(t)` from :func:`stay_scale`:
    :math:`s = r` unless the cap bites, and then slightly more, so that the mean stay of
    arrivals at :math:`t` is still :math:`r(t) E[X]` (workplace arrivals at 07:00-08:00:
    ~8.6 h, not the 7.2 h a plain ``r * X`` capped at 14 h would give).
Energy
    Draw from the energy-demand exceedance table, multiply by :math:`r(t)` built the same
    way from the per-arrival mean energy, floor at :data:`MIN_ENERGY_KWH`, then cap (see
    *Vehicle* below).
Vehicle
    A model from ``ev_specs.json`` drawn with probability proportional to its Dutch
    registrations. Its onboard charger (phases, current) follows from its AC power by
    :data:`ONBOARD_CHARGERS`. The arrival state of charge is
    ``clip(1 - demand * efficiency / battery - U(0, SOC_SLACK_MAX), SOC_ARRIVAL_MIN,
    SOC_ARRIVAL_MAX)``: the car arrives with room for its demand plus some slack, except
    when the demand exceeds the battery, in which case it arrives nearly empty. The
    energy is then capped at what the battery takes, ``(1 - soc) * battery / efficiency``,
    and at what the car can take charging flat out at ``min(EV power, charger power on the
    EV's phases)`` with the CC-CV taper (:func:`evflex.sim.physics.deliverable_energy_kwh`)
    during :data:`FEASIBLE_SHARE` of its stay less :data:`RESPONSE_ALLOWANCE_S`.

The fleet model
---------------
One dedicated vehicle per connector (a model drawn once per connector). On each local
day the vehicle is used with probability ``rate_per_day_weekday`` /
``rate_per_day_weekend``; on a day of use it leaves the depot in the morning
(normal, ``leave_h_mean`` +- ``leave_h_sd``) and returns in the evening (normal,
``return_h_mean`` +- ``return_h_sd``). A session runs from a return to the next morning
departure of a day of use (so over a weekend when the car is idle), never overlapping
the next return. Energy is the distance driven that day (lognormal, mean
``distance_km_mean``) times ``consumption_kwh_per_km``, then capped like above. The
numbers are assumptions, not measurements.

Sessions whose departure would fall after ``start + days`` are dropped (their connector
stays occupied until then). Everything is drawn from one
:func:`numpy.random.default_rng` seeded by ``seed``, in a fixed order, so a seed always
gives the same table.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

from evflex.errors import Problem, ValidationError, problem
from evflex.model.sessions import DEFAULT_EFFICIENCY, DEFAULT_TAPER_SOC, SESSION_COLUMNS
from evflex.sim.physics import deliverable_energy_kwh
from evflex.units import IEC61851_MIN_CURRENT_A, SECONDS_PER_DAY, SECONDS_PER_HOUR, W_PER_KW

SLOT_MIN = 15
SLOTS_PER_DAY = 96
HALF_HOURS_PER_DAY = 48
MINUTES_PER_HOUR = 60.0

#: Shortest and longest stay of an ElaadNL-profile session [h]; 72 h is the longest
#: connection time in the ElaadNL tables.
MIN_STAY_H = 0.25
MAX_STAY_H = 72.0
#: Smallest energy demand drawn [kWh] (the tables' lowest percentiles are 0 kWh).
MIN_ENERGY_KWH = 0.5
#: Grid-to-battery efficiency used to relate energy at the meter to battery energy [0-1].
EFFICIENCY = DEFAULT_EFFICIENCY
#: Arrival state-of-charge model: extra room above the demand, drawn U(0, this) [0-1],
#: and the bounds of the arrival SoC [0-1].
SOC_SLACK_MAX = 0.2
SOC_ARRIVAL_MIN = 0.05
SOC_ARRIVAL_MAX = 0.95
#: A request is capped at what the car can take charging flat out (CC-CV taper included)
#: during this share of its stay, less a fixed allowance for the charger's response and the
#: alignment of arrival and departure to the simulation's steps: a demand the car could
#: not meet even uncontrolled is not a fair test of a controller.
FEASIBLE_SHARE = 0.9
RESPONSE_ALLOWANCE_S = 120.0
#: Charger assumed when the caller gives none: 3 phases, 32 A, i.e. never the binding
#: limit for the cars of ``ev_specs.json`` (at most 22 kW = 3 x 32 A).
DEFAULT_CONNECTOR_PHASES = 3
DEFAULT_CONNECTOR_MAX_CURRENT_A = 32.0
#: Voltage at which the onboard chargers of :data:`ONBOARD_CHARGERS` are rated [V].
NOMINAL_VOLTAGE_LN_V = 230.0

#: Onboard AC charger of a car by its ``max_ac_charge_power`` [kW] -> (phases, current [A]).
#: 7.2 kW is the VW e-Golf, which charges on two phases at 16 A; 7.4 kW cars (Peugeot
#: 208) charge on one phase at 32 A; 3.6-3.7 kW (Nissan Leaf) one phase at 16 A.
#: Other powers: one phase up to 7.4 kW, else three, current = power / (phases x 230 V).
ONBOARD_CHARGERS: Mapping[float, tuple[int, float]] = {
    3.6: (1, 16.0),
    3.7: (1, 16.0),
    7.2: (2, 16.0),
    7.4: (1, 32.0),
    11.0: (3, 16.0),
    22.0: (3, 32.0),
}
SINGLE_PHASE_MAX_KW = 7.4

_SOURCE = "generate_sessions"
_DATA_PACKAGE = "evflex.datasets"
_ELAADNL_DIR = "elaadnl"
_SEGMENTS = ("private", "public", "workplace")
#: Column names of the per-arrival mean tables -> segment names of the distributions.
_MEAN_TABLE_SEGMENTS = {"home": "private", "public": "public", "work": "workplace"}


class Profile(str, enum.Enum):
    """Behaviour profile of a site's users."""

    WORKPLACE = "workplace"
    HOME = "home"
    PUBLIC = "public"
    FLEET = "fleet"


@dataclass(frozen=True)
class ElaadProfileParams:
    """Parameters of a profile built on the ElaadNL statistics.

    Attributes
    ----------
    segment : str
        ElaadNL segment whose connection-time and energy tables are used
        (``private``, ``public`` or ``workplace``).
    arrival_weekday, arrival_weekend : str
        Column of the weekday / weekend arrival-share table giving the shape of arrivals
        over the day.
    rate_per_day_weekday, rate_per_day_weekend : float
        Expected arrivals per connector per local day, Monday-Friday / Saturday-Sunday
        [1/d]. Arrivals that find the connector occupied are lost, so fewer sessions
        result.
    max_stay_h : float
        Longest stay [h].
    rationale : str
        Where the numbers come from.
    """

    segment: str
    arrival_weekday: str
    arrival_weekend: str
    rate_per_day_weekday: float
    rate_per_day_weekend: float
    max_stay_h: float
    rationale: str


@dataclass(frozen=True)
class FleetProfileParams:
    """Parameters of the company-fleet schedule (all assumptions, see ``rationale``).

    Attributes
    ----------
    rate_per_day_weekday, rate_per_day_weekend : float
        Probability that the vehicle is used on a Monday-Friday / Saturday-Sunday [0-1]
        (at most one use, hence one return, per day).
    leave_h_mean, leave_h_sd : float
        Local time of the morning departure: mean and standard deviation [h].
    leave_h_min, leave_h_max : float
        Bounds of the morning departure [h].
    return_h_mean, return_h_sd : float
        Local time of the evening return: mean and standard deviation [h].
    return_h_min, return_h_max : float
        Bounds of the evening return [h]; ``return_h_min > leave_h_max`` keeps a day's
        trip after its departure.
    distance_km_mean : float
        Mean distance driven on a day of use [km].
    distance_log_sd : float
        Standard deviation of the log of the distance (lognormal spread) [-].
    consumption_kwh_per_km : float
        Energy at the meter per km driven [kWh/km].
    rationale : str
    """

    rate_per_day_weekday: float
    rate_per_day_weekend: float
    leave_h_mean: float
    leave_h_sd: float
    leave_h_min: float
    leave_h_max: float
    return_h_mean: float
    return_h_sd: float
    return_h_min: float
    return_h_max: float
    distance_km_mean: float
    distance_log_sd: float
    consumption_kwh_per_km: float
    rationale: str


#: Parameters of every profile.
PROFILES: Mapping[Profile, ElaadProfileParams | FleetProfileParams] = {
    Profile.WORKPLACE: ElaadProfileParams(
        segment="workplace",
        arrival_weekday="workplace",
        arrival_weekend="public",
        rate_per_day_weekday=1.5,
        rate_per_day_weekend=0.1,
        max_stay_h=14.0,
        rationale=(
            "Shapes, stays and energies: ElaadNL workplace tables. Weekend shape: ElaadNL "
            "has no weekend workplace table, the weekend public shape stands in. Rates "
            "(assumption): more commuters with EVs than plugs, the usual case at a "
            "workplace: 1.5 arrivals a connector a working day, of which the first takes "
            "the plug (a morning arrival stays ~8.4 h, the ElaadNL mean for 07:00-08:00 "
            "arrivals) and later ones mostly find it taken: about 0.8 sessions a connector "
            "a working day, about 78 % of plugs used (1 - exp(-1.5)). Weekend 0.1: offices "
            "closed, occasional use. Stays capped at 14 h so cars leave the same day."
        ),
    ),
    Profile.HOME: ElaadProfileParams(
        segment="private",
        arrival_weekday="private",
        arrival_weekend="private",
        rate_per_day_weekday=0.8,
        rate_per_day_weekend=0.8,
        max_stay_h=MAX_STAY_H,
        rationale=(
            "Shapes, stays and energies: ElaadNL private (home) tables. Rate "
            "(assumption): one car per home connector that does not plug in every day "
            "(seed 003 section 6: most studies wrongly assume daily plug-in; cars with "
            "big batteries plug in fewer times a week); 0.8 attempts a day, fewer "
            "sessions once stays of ~12 h (ElaadNL mean) block the connector."
        ),
    ),
    Profile.PUBLIC: ElaadProfileParams(
        segment="public",
        arrival_weekday="public",
        arrival_weekend="public",
        rate_per_day_weekday=2.0,
        rate_per_day_weekend=1.5,
        max_stay_h=MAX_STAY_H,
        rationale=(
            "Shapes, stays and energies: ElaadNL public tables. Rates (assumption): a "
            "well-used urban curbside connector shared by residents (evening arrivals "
            "stay overnight, ~12 h ElaadNL mean) and visitors (daytime stays of ~3 h); "
            "fewer visitors at weekends. Lower them for quiet sites."
        ),
    ),
    Profile.FLEET: FleetProfileParams(
        rate_per_day_weekday=0.9,
        rate_per_day_weekend=0.1,
        leave_h_mean=7.5,
        leave_h_sd=0.5,
        leave_h_min=5.0,
        leave_h_max=10.0,
        return_h_mean=17.5,
        return_h_sd=0.75,
        return_h_min=14.0,
        return_h_max=22.0,
        distance_km_mean=60.0,
        distance_log_sd=0.5,
        consumption_kwh_per_km=0.18,
        rationale=(
            "All assumptions, not ElaadNL: an office/company fleet parked at the depot "
            "overnight (seed 003 section 6: company fleets are the most predictable "
            "users). Used on 9 of 10 working days (leave, illness, spare cars) and "
            "rarely at weekends; leaves around 07:30 +- 30 min, returns around 17:30 "
            "+- 45 min. Daily distance lognormal with mean 60 km (a regional service "
            "round); 0.18 kWh/km at the meter, a mid-size BEV in mixed driving including "
            "charging losses."
        ),
    ),
}


# --------------------------------------------------------------------------- packaged data


@dataclass(frozen=True)
class ElaadNLTables:
    """The ElaadNL statistics, parsed. Segments are ``private``, ``public``, ``workplace``.

    Attributes
    ----------
    arrival_share_weekday, arrival_share_weekend : dict of str to ndarray
        Share of a day's arrivals per 15-min slot from 00:00 local, 96 values summing
        to 1 [-], by column of the arrival tables (weekend: ``private``, ``public``).
    exceedance_pct : ndarray
        Percent of charging events exceeding the value of the tables below, 0 ... 100 [%].
    connection_h, energy_kwh : dict of str to ndarray
        Connection time [h] and energy [kWh] exceeded by ``exceedance_pct`` of events.
    mean_stay_h_by_half_hour, mean_energy_kwh_by_half_hour : dict of str to ndarray
        Mean connection time [h] and energy [kWh] of sessions arriving in each half-hour
        from 00:00 local (48 values; NaN where not published).
    """

    arrival_share_weekday: Mapping[str, np.ndarray]
    arrival_share_weekend: Mapping[str, np.ndarray]
    exceedance_pct: np.ndarray
    connection_h: Mapping[str, np.ndarray]
    energy_kwh: Mapping[str, np.ndarray]
    mean_stay_h_by_half_hour: Mapping[str, np.ndarray]
    mean_energy_kwh_by_half_hour: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class EvModel:
    """A car model of the packaged fleet mix.

    Attributes
    ----------
    name : str
    registrations : int
        Registrations in the Netherlands (the sampling weight).
    battery_kwh : float
        Battery capacity [kWh].
    max_power_kw : float
        Maximum AC charging power [kW].
    phases : int
        Phases the onboard charger uses (1, 2 or 3).
    max_current_a : float
        Maximum AC current per phase [A].
    v2g : bool
        Whether the car can discharge on AC.
    """

    name: str
    registrations: int
    battery_kwh: float
    max_power_kw: float
    phases: int
    max_current_a: float
    v2g: bool


def _packaged_text(name: str) -> str:
    return (files(_DATA_PACKAGE) / _ELAADNL_DIR / name).read_text(encoding="utf-8-sig")


def _read_packaged_csv(name: str) -> pd.DataFrame:
    with (files(_DATA_PACKAGE) / _ELAADNL_DIR / name).open("r", encoding="utf-8-sig") as fh:
        return pd.read_csv(fh)


def _minute_of_day(clock: pd.Series) -> np.ndarray:
    """``"HH:MM"`` strings -> minutes after midnight."""
    parts = clock.astype(str).str.split(":", expand=True).astype(int)
    return (parts[0] * 60 + parts[1]).to_numpy()


def _by_time(table: pd.DataFrame, slot_min: int, n_slots: int) -> pd.DataFrame:
    """Index a table whose first column is ``"HH:MM"`` by slot number, all slots present."""
    slot = _minute_of_day(table.iloc[:, 0]) // slot_min
    out = table.iloc[:, 1:].set_axis(slot, axis=0).sort_index()
    return out.reindex(range(n_slots)).astype(float)


def _frozen(values) -> np.ndarray:
    array = np.array(values, dtype=float)
    array.flags.writeable = False
    return array


@cache
def elaadnl_tables() -> ElaadNLTables:
    """Load the packaged ElaadNL statistics (cached)."""
    weekday = _by_time(_read_packaged_csv("distribution-of-arrival.csv"), SLOT_MIN, SLOTS_PER_DAY)
    weekend = _by_time(_read_packaged_csv("distribution-of-arrival-weekend.csv"), SLOT_MIN, SLOTS_PER_DAY)
    connection = _read_packaged_csv("distribution-of-connection-time.csv")
    energy = _read_packaged_csv("distribution-of-energy-demand.csv")
    half_hour_min = SLOT_MIN * 2
    stay = _by_time(_read_packaged_csv("mean-session-length-per.csv"), half_hour_min, HALF_HOURS_PER_DAY)
    demand = _by_time(_read_packaged_csv("mean-demand-per-arrival.csv"), half_hour_min, HALF_HOURS_PER_DAY)
    return ElaadNLTables(
        arrival_share_weekday={c: _frozen(weekday[c] / weekday[c].sum()) for c in weekday.columns},
        arrival_share_weekend={c: _frozen(weekend[c] / weekend[c].sum()) for c in weekend.columns},
        exceedance_pct=_frozen(connection.iloc[:, 0]),
        connection_h={s: _frozen(connection[s]) for s in _SEGMENTS},
        energy_kwh={s: _frozen(energy[s]) for s in _SEGMENTS},
        mean_stay_h_by_half_hour={_MEAN_TABLE_SEGMENTS[c]: _frozen(stay[c]) for c in stay.columns},
        mean_energy_kwh_by_half_hour={_MEAN_TABLE_SEGMENTS[c]: _frozen(demand[c]) for c in demand.columns},
    )


def onboard_charger(max_ac_power_kw: float, voltage_ln_v: float = NOMINAL_VOLTAGE_LN_V) -> tuple[int, float]:
    """Phases and per-phase current of a car's onboard AC charger.

    Parameters
    ----------
    max_ac_power_kw : float
        The car's maximum AC charging power [kW].
    voltage_ln_v : float
        Phase-to-neutral voltage for powers not in :data:`ONBOARD_CHARGERS` [V].

    Returns
    -------
    phases : int
    max_current_a : float
        [A]
    """
    known = ONBOARD_CHARGERS.get(round(float(max_ac_power_kw), 1))
    if known is not None:
        return known
    phases = 1 if max_ac_power_kw <= SINGLE_PHASE_MAX_KW else 3
    return phases, max_ac_power_kw * W_PER_KW / (phases * voltage_ln_v)


@cache
def ev_models() -> tuple[EvModel, ...]:
    """The packaged fleet mix, ``ev_specs.json`` (cached)."""
    specs = json.loads(_packaged_text("ev_specs.json"))
    models = []
    for name, spec in specs.items():
        power_kw = float(spec["max_ac_charge_power"])
        phases, current_a = onboard_charger(power_kw)
        models.append(
            EvModel(
                name=name,
                registrations=int(spec["number_of_registrations"]),
                battery_kwh=float(spec["battery_capacity"]),
                max_power_kw=power_kw,
                phases=phases,
                max_current_a=current_a,
                v2g=str(spec.get("ac_v2g", "no")).lower() == "yes",
            )
        )
    return tuple(models)


def exceedance_mean(exceedance_pct: np.ndarray, values: np.ndarray) -> float:
    """Mean of a distribution given as an exceedance table, linear between points.

    Parameters
    ----------
    exceedance_pct : ndarray
        Percent of events exceeding each value, increasing [%].
    values : ndarray
        The values (connection time [h], energy [kWh], ...).
    """
    p = np.asarray(exceedance_pct, dtype=float)
    v = np.asarray(values, dtype=float)
    return float(np.sum((v[1:] + v[:-1]) * np.diff(p)) / 2.0 / (p[-1] - p[0]))


def time_of_day_ratio(mean_by_half_hour: np.ndarray, arrival_share: np.ndarray) -> np.ndarray:
    """Per-half-hour ratio of a conditional mean to its arrival-weighted overall mean.

    Parameters
    ----------
    mean_by_half_hour : ndarray
        Mean (stay [h] or energy [kWh]) of sessions arriving in each of the 48 half-hours;
        NaN where unknown.
    arrival_share : ndarray
        Share of arrivals per 15-min slot (96 values).

    Returns
    -------
    ndarray
        48 ratios; 1 where the mean is unknown.
    """
    weight = np.asarray(arrival_share, dtype=float).reshape(HALF_HOURS_PER_DAY, 2).sum(axis=1)
    mean = np.asarray(mean_by_half_hour, dtype=float)
    known = ~np.isnan(mean)
    overall = np.sum(weight[known] * mean[known]) / np.sum(weight[known])
    return np.where(known, mean / overall, 1.0)


def _sample_exceedance(exceedance_pct: np.ndarray, values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-transform sampling: ``u`` uniform in [0, 1) -> values."""
    return np.interp(u * 100.0, exceedance_pct, values)


#: Quantile points of the connection-time distribution used by :func:`stay_scale`, and
#: bisection steps (60 halvings leave an error far below a second).
_CALIBRATION_POINTS = 4001
_CALIBRATION_STEPS = 60


def _clipped_mean(quantiles: np.ndarray, scale: float, low: float, high: float) -> float:
    return float(np.mean(np.clip(scale * quantiles, low, high)))


def _scale_for_clipped_mean(quantiles: np.ndarray, target: float, low: float, high: float) -> float:
    """The ``s`` with ``mean(clip(s * X, low, high)) == target``, by bisection.

    The clipped mean grows with ``s`` from ``low`` towards ``high``; targets outside that
    range get the nearest end.
    """
    lo, hi = 0.0, 1.0
    while _clipped_mean(quantiles, hi, low, high) < target and hi < 1e6:
        hi *= 2.0
    for _ in range(_CALIBRATION_STEPS):
        mid = (lo + hi) / 2.0
        if _clipped_mean(quantiles, mid, low, high) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


@cache
def stay_scale(params: ElaadProfileParams) -> np.ndarray:
    r"""Factor applied to a drawn connection time, per half-hour of arrival.

    For half-hour :math:`t` the factor :math:`s(t)` solves
    :math:`E[\mathrm{clip}(s X, \text{MIN\_STAY\_H}, \text{max\_stay\_h})] = r(t) E[X]`,
    with :math:`X` the segment's connection time and :math:`r` from
    :func:`time_of_day_ratio`: sessions arriving at :math:`t` keep the ElaadNL mean for
    that time (as a ratio to the overall mean) even where the cap cuts the tail. Where the
    clip does not bite, :math:`s(t) = r(t)`.

    Returns
    -------
    ndarray
        48 factors [-].
    """
    tables = elaadnl_tables()
    u = (np.arange(_CALIBRATION_POINTS) + 0.5) / _CALIBRATION_POINTS
    quantiles = _sample_exceedance(tables.exceedance_pct, tables.connection_h[params.segment], u)
    ratio = time_of_day_ratio(
        tables.mean_stay_h_by_half_hour[params.segment], tables.arrival_share_weekday[params.segment]
    )
    mean_h = float(np.mean(quantiles))
    return _frozen([_scale_for_clipped_mean(quantiles, r * mean_h, MIN_STAY_H, params.max_stay_h) for r in ratio])


# --------------------------------------------------------------------------- sampling kernels


def _sample_slot(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _local_dates(start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Local calendar days touched by ``[start, end)``, as ``datetime64[D]``."""
    first = np.datetime64(start.date(), "D")
    last = np.datetime64((end - pd.Timedelta(microseconds=1)).date(), "D")
    return np.arange(first, last + np.timedelta64(1, "D"))


def _is_weekend(dates: np.ndarray) -> np.ndarray:
    # 1970-01-01 was a Thursday: day number + 3 counts from a Monday.
    weekday = (dates.astype(np.int64) + 3) % 7
    return weekday >= 5


def _local_to_posix_s(dates: np.ndarray, minute_of_day: np.ndarray, tz) -> np.ndarray:
    """Local wall-clock times (day, minute after midnight) -> POSIX seconds (whole)."""
    seconds = np.floor(np.asarray(minute_of_day, dtype=float) * 60.0).astype(np.int64)
    naive = dates.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    index = pd.DatetimeIndex(naive)
    summer = np.ones(len(index), dtype=bool)
    try:
        aware = index.tz_localize(tz, ambiguous=summer, nonexistent=pd.Timedelta(hours=1))
    except ValueError:  # a gap longer than one hour: move to its end instead
        aware = index.tz_localize(tz, ambiguous=summer, nonexistent="shift_forward")
    return aware.as_unit("s").asi8


@dataclass(frozen=True)
class _Candidates:
    """Sessions drawn before the occupancy rule: one entry per attempted arrival."""

    connector: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
    demand_kwh: np.ndarray
    vehicle: np.ndarray
    soc_slack: np.ndarray


def _vehicle_weights(models: tuple[EvModel, ...]) -> np.ndarray:
    registrations = np.array([m.registrations for m in models], dtype=float)
    return registrations / registrations.sum()


def _elaad_candidates(
    params: ElaadProfileParams, n_connectors: int, dates: np.ndarray, tz, rng: np.random.Generator
) -> _Candidates:
    tables = elaadnl_tables()
    weekend = _is_weekend(dates)
    rate = np.where(weekend, params.rate_per_day_weekend, params.rate_per_day_weekday)
    counts = rng.poisson(np.broadcast_to(rate, (n_connectors, len(dates)))).ravel()
    connector = np.repeat(np.repeat(np.arange(n_connectors), len(dates)), counts)
    day = np.repeat(np.tile(np.arange(len(dates)), n_connectors), counts)
    n = len(day)
    u_slot, u_within, u_stay, u_energy = rng.random((4, n))
    vehicle = rng.choice(len(ev_models()), size=n, p=_vehicle_weights(ev_models()))
    soc_slack = rng.uniform(0.0, SOC_SLACK_MAX, size=n)

    cdf_weekday = np.cumsum(tables.arrival_share_weekday[params.arrival_weekday])
    cdf_weekend = np.cumsum(tables.arrival_share_weekend[params.arrival_weekend])
    slot = np.where(weekend[day], _sample_slot(cdf_weekend, u_slot), _sample_slot(cdf_weekday, u_slot))
    minute = (slot + u_within) * SLOT_MIN
    half_hour = np.minimum((minute // (2 * SLOT_MIN)).astype(np.int64), HALF_HOURS_PER_DAY - 1)

    share = tables.arrival_share_weekday[params.segment]
    energy_ratio = time_of_day_ratio(tables.mean_energy_kwh_by_half_hour[params.segment], share)
    pct = tables.exceedance_pct
    stay_h = _sample_exceedance(pct, tables.connection_h[params.segment], u_stay) * stay_scale(params)[half_hour]
    stay_h = np.clip(stay_h, MIN_STAY_H, params.max_stay_h)
    demand_kwh = _sample_exceedance(pct, tables.energy_kwh[params.segment], u_energy) * energy_ratio[half_hour]

    arrival_s = _local_to_posix_s(dates[day], minute, tz)
    departure_s = arrival_s + np.round(stay_h * SECONDS_PER_HOUR).astype(np.int64)
    return _Candidates(connector, arrival_s, departure_s, np.maximum(demand_kwh, MIN_ENERGY_KWH), vehicle, soc_slack)


def _next_use(used: np.ndarray) -> np.ndarray:
    """For each day, the index of the next later day of use in its row (-1 if none)."""
    n_rows, n_days = used.shape
    nxt = np.full((n_rows, n_days), -1, dtype=np.int64)
    upcoming = np.full(n_rows, -1, dtype=np.int64)
    for d in range(n_days - 1, -1, -1):
        nxt[:, d] = upcoming
        upcoming = np.where(used[:, d], d, upcoming)
    return nxt


def _fleet_candidates(
    params: FleetProfileParams, n_connectors: int, dates: np.ndarray, tz, rng: np.random.Generator
) -> _Candidates:
    shape = (n_connectors, len(dates))
    use_prob = np.where(_is_weekend(dates), params.rate_per_day_weekend, params.rate_per_day_weekday)
    used = rng.random(shape) < use_prob
    leave_h = np.clip(rng.normal(params.leave_h_mean, params.leave_h_sd, shape), params.leave_h_min, params.leave_h_max)
    return_h = np.clip(
        rng.normal(params.return_h_mean, params.return_h_sd, shape), params.return_h_min, params.return_h_max
    )
    log_mean = math.log(params.distance_km_mean) - params.distance_log_sd**2 / 2.0
    distance_km = rng.lognormal(log_mean, params.distance_log_sd, shape)
    soc_slack = rng.uniform(0.0, SOC_SLACK_MAX, shape)
    fleet_vehicle = rng.choice(len(ev_models()), size=n_connectors, p=_vehicle_weights(ev_models()))

    nxt = _next_use(used)
    connector, day = np.nonzero(used)
    next_day = nxt[connector, day]
    has_next = next_day >= 0
    arrival_s = _local_to_posix_s(dates[day], return_h[connector, day] * MINUTES_PER_HOUR, tz)
    safe_next = np.where(has_next, next_day, day)
    departure_s = _local_to_posix_s(dates[safe_next], leave_h[connector, safe_next] * MINUTES_PER_HOUR, tz)
    departure_s = np.where(has_next, departure_s, np.iinfo(np.int64).max)
    demand_kwh = np.maximum(distance_km[connector, day] * params.consumption_kwh_per_km, MIN_ENERGY_KWH)
    return _Candidates(
        connector, arrival_s, departure_s, demand_kwh, fleet_vehicle[connector], soc_slack[connector, day]
    )


def _accept(c: _Candidates, start_s: float, end_s: float) -> np.ndarray:
    """Indices of the candidates that become sessions, by the occupancy rule.

    Per connector in arrival order: an arrival before ``start_s`` or while the connector
    is occupied is lost; an accepted car occupies the connector until it leaves; a car
    leaving after ``end_s`` occupies it but is not reported.
    """
    order = np.lexsort((c.arrival_s, c.connector))
    kept = []
    busy_until: dict[int, int] = {}
    for i, connector, arrival, departure in zip(
        order.tolist(), c.connector[order].tolist(), c.arrival_s[order].tolist(), c.departure_s[order].tolist()
    ):
        if arrival < start_s or arrival < busy_until.get(connector, arrival):
            continue
        busy_until[connector] = departure
        if departure <= end_s:
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


# --------------------------------------------------------------------------- public API


def _check_arguments(
    connector_ids, start, days, connector_phases, connector_max_current_a, voltage_ln_v
) -> list[Problem]:
    problems: list[Problem] = []
    if len(connector_ids) == 0:
        problems.append(problem(_SOURCE, "must name at least one connector", field="connector_ids"))
    if len(set(connector_ids)) != len(connector_ids):
        problems.append(problem(_SOURCE, "connector ids must be unique", field="connector_ids"))
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        problems.append(problem(_SOURCE, "must be a timezone-aware datetime", field="start", value=start))
    if not days > 0:
        problems.append(problem(_SOURCE, "must be > 0", field="days", value=days))
    if not voltage_ln_v > 0:
        problems.append(problem(_SOURCE, "must be > 0", field="voltage_ln_v", value=voltage_ln_v))
    for name, values in (("connector_phases", connector_phases), ("connector_max_current_a", connector_max_current_a)):
        if values is not None and len(values) != len(connector_ids):
            problems.append(
                problem(
                    _SOURCE, f"must have one value per connector ({len(connector_ids)})", field=name, value=len(values)
                )
            )
    for k, phases in enumerate(connector_phases or []):
        if phases not in (1, 2, 3):
            problems.append(problem(_SOURCE, "must be 1, 2 or 3", field=f"connector_phases[{k}]", value=phases))
    for k, current in enumerate(connector_max_current_a or []):
        if not current >= IEC61851_MIN_CURRENT_A:
            problems.append(
                problem(
                    _SOURCE,
                    f"must be >= {IEC61851_MIN_CURRENT_A:g} A (IEC 61851)",
                    field=f"connector_max_current_a[{k}]",
                    value=current,
                )
            )
    return problems


def _sessions_frame(
    profile: Profile,
    connector_ids: list[str],
    c: _Candidates,
    kept: np.ndarray,
    connector_phases: np.ndarray,
    connector_current_a: np.ndarray,
    connector_voltage_v: np.ndarray,
    tz,
) -> pd.DataFrame:
    models = ev_models()
    order = kept[np.lexsort((c.connector[kept], c.arrival_s[kept]))]
    connector = c.connector[order]
    arrival_s, departure_s = c.arrival_s[order], c.departure_s[order]
    vehicle = c.vehicle[order]
    battery_kwh = np.array([models[v].battery_kwh for v in vehicle], dtype=float)
    ev_power_kw = np.array([models[v].max_power_kw for v in vehicle], dtype=float)
    ev_phases = np.array([models[v].phases for v in vehicle], dtype=np.int64)
    ev_current_a = np.array([models[v].max_current_a for v in vehicle], dtype=float)
    v2g = np.array([models[v].v2g for v in vehicle], dtype=bool)

    demand_kwh = c.demand_kwh[order]
    soc_arrival = np.clip(
        1.0 - demand_kwh * EFFICIENCY / battery_kwh - c.soc_slack[order], SOC_ARRIVAL_MIN, SOC_ARRIVAL_MAX
    )
    drawn_phases = np.minimum(ev_phases, connector_phases[connector])
    drawn_current_a = np.minimum(ev_current_a, connector_current_a[connector])
    volts = connector_voltage_v[connector]  # across each conductor: line-to-line for an LL charger
    power_kw = np.minimum(ev_power_kw, drawn_phases * drawn_current_a * volts / W_PER_KW)
    stay_h = (departure_s - arrival_s) / SECONDS_PER_HOUR
    battery_room_kwh = (1.0 - soc_arrival) * battery_kwh / EFFICIENCY
    charging_s = np.maximum(FEASIBLE_SHARE * stay_h * SECONDS_PER_HOUR - RESPONSE_ALLOWANCE_S, 0.0)
    feasible_kwh = deliverable_energy_kwh(charging_s, power_kw, battery_kwh, soc_arrival, EFFICIENCY, DEFAULT_TAPER_SOC)
    energy_kwh = np.maximum(np.minimum.reduce([demand_kwh, battery_room_kwh, feasible_kwh]), 0.0)

    return pd.DataFrame(
        {
            "session_id": [f"{profile.value}-{k + 1:06d}" for k in range(len(order))],
            "connector_id": [connector_ids[k] for k in connector.tolist()],
            "arrival": pd.to_datetime(arrival_s, unit="s", utc=True).tz_convert(tz),
            "departure": pd.to_datetime(departure_s, unit="s", utc=True).tz_convert(tz),
            "energy_kwh": energy_kwh,
            "max_power_kw": ev_power_kw,
            "phases": ev_phases,
            "battery_kwh": battery_kwh,
            "soc_arrival": soc_arrival,
            "v2g": v2g,
            "declared_departure": pd.to_datetime(np.full(len(order), np.nan), unit="s", utc=True).tz_convert(tz),
            "declared_energy_kwh": np.full(len(order), np.nan),
        },
        columns=list(SESSION_COLUMNS),
    )


def generate_sessions(
    profile: str | Profile,
    connector_ids: list[str],
    start: datetime,
    days: float,
    seed: int,
    *,
    connector_phases: list[int] | None = None,
    connector_max_current_a: list[float] | None = None,
    voltage_ln_v: float = NOMINAL_VOLTAGE_LN_V,
    connector_voltage_v: list[float] | None = None,
) -> pd.DataFrame:
    """Generate synthetic charging sessions for a site's connectors.

    Parameters
    ----------
    profile : str or Profile
        ``workplace``, ``home``, ``public`` or ``fleet`` (see :data:`PROFILES`).
    connector_ids : list of str
        The site's connectors; each holds one car at a time.
    start : datetime
        Start of the window, timezone-aware; local times of day are taken in its zone.
    days : float
        Length of the window [d]; it ends ``days * 24 h`` after ``start`` (elapsed time,
        as the simulator counts it, so a window over a DST change ends an hour off
        midnight local time).
    seed : int
        Seed of the random generator; the same seed gives the same table.
    connector_phases : list of int, optional
        Phases wired to each connector (1, 2 or 3); default 3.
    connector_max_current_a : list of float, optional
        Current rating of each connector [A]; default 32 A (never binding).
    voltage_ln_v : float
        Phase-to-neutral voltage [V], used for the power a car can draw on its connector.
    connector_voltage_v : list of float, optional
        Voltage across each connector's conductors [V] (:attr:`Topology.voltage_v`):
        phase-to-neutral, or line-to-line for a charger wired between two phases (a 32 A
        single-phase EVSE at 208 V gives 6.66 kW); default ``voltage_ln_v`` everywhere.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SESSION_COLUMNS`, sorted by arrival; ``arrival``/``departure`` are
        timestamps in the zone of ``start``; ``energy_kwh`` [kWh] at the meter,
        ``max_power_kw`` [kW] and ``phases`` the car's own AC limit, ``battery_kwh``
        [kWh], ``soc_arrival`` [0-1]. Sessions on one connector never overlap and all end
        by ``start + days``.

    Raises
    ------
    ValidationError
        Every problem with the arguments at once.
    ValueError
        An unknown profile.
    """
    chosen = Profile(profile)
    connector_ids = [str(c) for c in connector_ids]
    problems = _check_arguments(connector_ids, start, days, connector_phases, connector_max_current_a, voltage_ln_v)
    if connector_voltage_v is not None:
        if len(connector_voltage_v) != len(connector_ids):
            problems.append(
                problem(
                    _SOURCE,
                    f"must have one value per connector ({len(connector_ids)})",
                    field="connector_voltage_v",
                    value=len(connector_voltage_v),
                )
            )
        for k, v in enumerate(connector_voltage_v):
            if not v > 0:
                problems.append(problem(_SOURCE, "must be > 0", field=f"connector_voltage_v[{k}]", value=v))
    if problems:
        raise ValidationError(problems)
    tz = start.tzinfo
    start_ts = pd.Timestamp(start)
    end_ts = start_ts + pd.Timedelta(days=days)
    dates = _local_dates(start_ts, end_ts)
    rng = np.random.default_rng(seed)
    params = PROFILES[chosen]
    if isinstance(params, FleetProfileParams):
        candidates = _fleet_candidates(params, len(connector_ids), dates, tz, rng)
    else:
        candidates = _elaad_candidates(params, len(connector_ids), dates, tz, rng)
    start_s = start_ts.timestamp()
    kept = _accept(candidates, start_s, start_s + days * SECONDS_PER_DAY)
    phases = np.asarray(connector_phases or [DEFAULT_CONNECTOR_PHASES] * len(connector_ids), dtype=np.int64)
    current_a = np.asarray(
        connector_max_current_a or [DEFAULT_CONNECTOR_MAX_CURRENT_A] * len(connector_ids), dtype=float
    )
    volts = np.asarray(connector_voltage_v or [voltage_ln_v] * len(connector_ids), dtype=float)
    return _sessions_frame(chosen, connector_ids, candidates, kept, phases, current_a, volts, tz)


def sessions_per_profile_summary(
    df: pd.DataFrame, *, connector_count: int | None = None, days: float | None = None
) -> dict:
    """Headline statistics of a sessions table.

    Parameters
    ----------
    df : pandas.DataFrame
        A sessions table (columns :data:`SESSION_COLUMNS`).
    connector_count : int, optional
        Connectors of the site; default: those that appear in ``df``.
    days : float, optional
        Length of the window [d]; default: from the first arrival to the last departure.

    Returns
    -------
    dict
        ``sessions``; ``mean_energy_kwh`` [kWh]; ``mean_stay_h`` [h];
        ``sessions_per_connector_day`` [1/d]; ``total_energy_kwh`` [kWh]. Means are NaN
        for an empty table.
    """
    n = len(df)
    stay_h = (df["departure"] - df["arrival"]).dt.total_seconds() / SECONDS_PER_HOUR
    if connector_count is None:
        connector_count = int(df["connector_id"].nunique())
    if days is None:
        days = (df["departure"].max() - df["arrival"].min()).total_seconds() / SECONDS_PER_DAY if n else float("nan")
    exposure = connector_count * days
    return {
        "sessions": n,
        "mean_energy_kwh": float(df["energy_kwh"].mean()) if n else float("nan"),
        "mean_stay_h": float(stay_h.mean()) if n else float("nan"),
        "sessions_per_connector_day": n / exposure if exposure and exposure > 0 else float("nan"),
        "total_energy_kwh": float(df["energy_kwh"].sum()),
    }
