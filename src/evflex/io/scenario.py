"""The scenario TOML file: a site, its chargers and limits, its sessions, how to simulate.

See the README ("Scenario file") for every key. Unknown keys are errors (a typo must not
silently fall back to a default). Arrays of tables are numbered from 1 in messages, in
the order they appear in the file: ``chargers[2].max_current_a`` is the second
``[[chargers]]`` table. Relative file paths are relative to the scenario file.
"""

from __future__ import annotations

import functools
import math
import tomllib
import typing
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from evflex.control.allocation.controller import ControllerParams
from evflex.control.interface import Strategy
from evflex.errors import Problem, ValidationError, problem
from evflex.io.series import read_series
from evflex.io.sessions import parse_sessions, read_sessions, sessions_as_text
from evflex.markets.tariff import Tariff, TouPeriod
from evflex.model.series import StepSeries
from evflex.model.site import Charger, ChargerResponse, Feeder, Site
from evflex.model.topology import compile_topology
from evflex.sim import profiles
from evflex.sim.scenario import Scenario, SimulationConfig
from evflex.units import PHASE_NAMES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value, info: ValidationInfo):
        """A TOML true/false or a quoted "28" where a number belongs is a mistake to name, not
        a 1 or a 28 to read."""
        if isinstance(value, (bool, str)) and info.field_name in _numeric_fields(cls):
            raise ValueError("input should be a number (not true/false or a quoted string)")
        return value


@functools.cache
def _numeric_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that hold a number (int or float, optional or not)."""

    def numeric(t) -> bool:
        return t in (int, float) or any(numeric(a) for a in typing.get_args(t) if a is not type(None))

    return frozenset(name for name, f in model.model_fields.items() if numeric(f.annotation))


class _FileOrProfile(_Strict):
    """A series read from a file or made by an embedded profile: exactly one of the two."""

    file: str | None = None
    seed: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.file is None) == (getattr(self, "profile", None) is None):
            raise ValueError("give exactly one of 'file' or 'profile'")
        return self


class BaseLoadSpec(_FileOrProfile):
    profile: Literal["office"] | None = None
    peak_kw: float = Field(15.0, gt=0)
    base_kw: float = Field(3.0, ge=0)


class PvSpec(_FileOrProfile):
    profile: Literal["clear-sky"] | None = None
    peak_kw: float = Field(10.0, gt=0)
    latitude_deg: float = Field(55.69, ge=-90, le=90)
    longitude_deg: float = Field(12.10, ge=-180, le=180)


class FileSpec(_Strict):
    file: str


class SiteSpec(_Strict):
    name: str = Field(min_length=1)
    voltage_ln_v: float = Field(230.0, ge=50, le=1000)
    connection_limit_a: float | None = Field(None, ge=0, le=1e6)
    transformer_kw: float | None = Field(None, gt=0, le=1e6)
    transformer_primary_ll_v: float | None = Field(None, gt=0, le=1e6)
    max_unbalance_a: float | None = Field(None, gt=0, le=1e6)
    base_load: BaseLoadSpec | None = None
    pv: PvSpec | None = None
    connection_limit_series: FileSpec | None = None

    @model_validator(mode="after")
    def _limit(self):
        if self.connection_limit_a is None and self.transformer_kw is None:
            raise ValueError(
                "give connection_limit_a, transformer_kw or both (a connection_limit_series varies the "
                "limit over time and needs the connection's rating too)"
            )
        if self.transformer_primary_ll_v is not None and self.transformer_kw is None:
            raise ValueError("transformer_primary_ll_v needs transformer_kw")
        return self


class ChargerSpec(_Strict):
    id: str | None = Field(None, min_length=1)
    ids: list[str] | None = Field(None, min_length=1)
    count: int = Field(1, ge=1, le=100_000)
    id_prefix: str = Field("C", min_length=1)
    connectors: int = Field(1, ge=1, le=64)
    max_current_a: float = Field(16.0, gt=0, le=1000)
    min_current_a: float = Field(6.0, gt=0)
    phases: Literal[1, 2, 3] | None = None  # default: 3 phase-to-neutral, 1 line-to-line
    connection: Literal["LN", "L1-L2", "L2-L3", "L3-L1"] = "LN"
    phase_rotation: str | list[str] | None = None  # default: L1, L1L2 or L1L2L3
    modulation: bool = True
    phase_switching: bool = False
    v2g: bool = False
    max_total_current_a: float | None = Field(None, gt=0)
    setpoint_resolution_a: float = Field(0.1, gt=0)
    activation_delay_s: float = Field(2.0, ge=0)
    ramp_a_per_s: float = Field(5.0, gt=0)
    precision_a: float = Field(0.5, ge=0)
    phase_switch_s: float = Field(30.0, ge=0, le=3600)

    @property
    def n_phases(self) -> int:
        return self.phases if self.phases is not None else (3 if self.connection == "LN" else 1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.connection != "LN":
            for key, bad in (
                ("phases", self.phases not in (None, 1)),
                ("phase_rotation", self.phase_rotation),
                ("phase_switching", self.phase_switching),
            ):
                if bad:
                    raise ValueError(f"a line-to-line charger ({self.connection}) has one conductor pair: remove {key}")
        if self.min_current_a > self.max_current_a:
            raise ValueError(f"min_current_a ({self.min_current_a:g}) is above max_current_a ({self.max_current_a:g})")
        if sum([self.id is not None, self.ids is not None, self.count > 1]) > 1:
            raise ValueError(
                "give 'id' for one charger, 'ids' for several named ones, or 'count' (with 'id_prefix'): one of them"
            )
        if self.ids is not None and (len(set(self.ids)) != len(self.ids) or any(not i.strip() for i in self.ids)):
            raise ValueError("'ids' must be distinct, non-empty names")
        if self.setpoint_resolution_a > self.min_current_a:
            raise ValueError(
                f"setpoint_resolution_a ({self.setpoint_resolution_a:g}) is above min_current_a "
                f"({self.min_current_a:g})"
            )
        if self.precision_a >= self.min_current_a:
            raise ValueError(f"precision_a ({self.precision_a:g}) must be below min_current_a ({self.min_current_a:g})")
        if self.phase_rotation is None:
            return self
        rotations = self.phase_rotation if isinstance(self.phase_rotation, list) else [self.phase_rotation]
        if isinstance(self.phase_rotation, list) and len(rotations) != self.connectors:
            raise ValueError(f"phase_rotation lists {len(rotations)} rotation(s) for {self.connectors} connector(s)")
        for text in rotations:
            if text == "cyclic" and not isinstance(self.phase_rotation, list):
                continue
            rot = parse_rotation(text)
            if rot is None or len(rot) != self.n_phases:
                raise ValueError(
                    f"phase_rotation {text!r} must name {self.n_phases} distinct "
                    f"phase(s) of L1, L2, L3 (e.g. {'L2L3L1'[: 2 * self.n_phases]!r}) or be 'cyclic'"
                )
        return self


class FeederSpec(_Strict):
    id: str = Field(min_length=1)
    limit_a: float = Field(gt=0)
    chargers: list[str] = Field(min_length=1)
    phases: str = "L1L2L3"
    includes_base_load: bool = False

    @model_validator(mode="after")
    def _phases(self):
        if parse_rotation(self.phases) is None:
            raise ValueError(f"phases {self.phases!r} must name distinct phases of L1, L2, L3")
        return self


class GenerateSpec(_Strict):
    profile: Literal["workplace", "home", "public", "fleet"]
    days: float | None = Field(None, gt=0)  # default: the simulated window
    seed: int = Field(1, ge=0)


class SessionsSpec(_Strict):
    file: str | None = None
    generate: GenerateSpec | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.file is None) == (self.generate is None):
            raise ValueError("give exactly one of 'file' or 'generate'")
        return self


class SimulationSpec(_Strict):
    start: str
    timezone: str | None = None
    days: float = Field(28.0, gt=0, le=3660)
    period_s: float = Field(60.0, ge=1, le=3600)
    strategy: Strategy = Strategy.LLF
    seed: int = Field(1, ge=0)
    ev_limits_known: bool = False
    taper_soc: float = Field(0.8, gt=0, lt=1)
    metering_delay_s: float = Field(0.0, ge=0, le=3600)


class ControllerSpec(_Strict):
    learn_ev_limits: bool = ControllerParams.learn_ev_limits
    min_on_s: float = Field(ControllerParams.min_on_s, ge=0)
    starvation_s: float = Field(ControllerParams.starvation_s, gt=0)
    margin_a: float = Field(ControllerParams.margin_a, ge=0)
    learn_threshold_a: float = Field(ControllerParams.learn_threshold_a, gt=0)
    reprobe_s: float = Field(ControllerParams.reprobe_s, gt=0)
    default_stay_s: float = Field(ControllerParams.default_stay_s, gt=0)
    default_energy_kwh: float = Field(ControllerParams.default_energy_kwh, gt=0)
    phase_switch_dwell_s: float = Field(ControllerParams.phase_switch_dwell_s, ge=0)
    max_phase_switches: int = Field(ControllerParams.max_phase_switches, ge=0)
    order_period_s: float = Field(ControllerParams.order_period_s, ge=0)


#: Day names a time-of-use period may list (or "weekdays", "weekend").
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {"weekdays": range(5), "weekend": range(5, 7)}


class TouSpec(_Strict):
    """A time-of-use period: ``start``-``end`` local time ("HH:MM", "24:00" allowed as an
    end; an end before the start runs over midnight), on ``days``, in ``months``."""

    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
    eur_per_kwh: float = Field(ge=-10, le=10)
    days: list[str] = Field(["weekdays", "weekend"], min_length=1)
    months: list[int] = Field(list(range(1, 13)), min_length=1)

    @model_validator(mode="after")
    def _known_days_and_months(self) -> TouSpec:
        bad = [d for d in self.days if d.lower() not in DAY_NAMES and d.lower() not in DAY_GROUPS]
        if bad:
            raise ValueError(f"days {bad}: use {', '.join(DAY_NAMES)}, weekdays or weekend")
        if any(not 1 <= m <= 12 for m in self.months):
            raise ValueError(f"months {self.months}: 1 to 12")
        return self

    def period(self) -> TouPeriod:
        def minutes(hhmm: str) -> int:
            h, m = hhmm.split(":")
            return int(h) * 60 + int(m)

        days: set[int] = set()
        for d in self.days:
            d = d.lower()
            days.update(DAY_GROUPS[d] if d in DAY_GROUPS else [DAY_NAMES.index(d)])
        end = minutes(self.end) % (24 * 60)
        return TouPeriod(minutes(self.start), end, self.eur_per_kwh, frozenset(days), frozenset(self.months))


#: Price series packaged with evflex (``prices = { dataset = ... }``), in ``datasets/prices``.
PRICE_DATASETS = {"nl-day-ahead-2022": "nl_day_ahead_2022.csv"}


class PricesSpec(_Strict):
    """A tariff's price series: a CSV ``file``, or a packaged ``dataset``."""

    file: str | None = None
    dataset: Literal["nl-day-ahead-2022"] | None = None

    @model_validator(mode="after")
    def _one(self) -> PricesSpec:
        if (self.file is None) == (self.dataset is None):
            raise ValueError("give file or dataset (one of the two)")
        return self


class CriticalPeakSpec(_Strict):
    """A critical-peak-price event: ``eur_per_kwh`` from ``start`` to ``end`` (ISO-8601 with
    offset)."""

    start: datetime
    end: datetime
    eur_per_kwh: float = Field(ge=-10, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> CriticalPeakSpec:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need an offset (e.g. '+01:00')")
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


class BlockSpec(_Strict):
    """A block of an inclining block rate: ``eur_per_kwh`` for the billing period's imports up
    to ``up_to_kwh`` (none on the last, open block)."""

    up_to_kwh: float | None = Field(None, gt=0, le=1e9)
    eur_per_kwh: float = Field(ge=-10, le=10)


class TariffSpec(_Strict):
    """The ``[tariff]`` table: see the README (Tariffs)."""

    energy_eur_per_kwh: float | None = Field(None, ge=-10, le=10)
    tou: list[TouSpec] | None = Field(None, min_length=1)
    prices: PricesSpec | None = None
    export_eur_per_kwh: float = Field(0.0, ge=-10, le=10)
    demand_charge_eur_per_kw: float = Field(0.0, ge=0, le=1e4)
    billing: Literal["run", "month"] = "run"
    blocks: list[BlockSpec] | None = Field(None, min_length=1)
    critical_peaks: list[CriticalPeakSpec] = []
    subscribed_kw: float | None = Field(None, gt=0, le=1e6)
    excess_eur_per_kw: float = Field(0.0, ge=0, le=1e4)
    carbon_g_per_kwh: float | None = Field(None, ge=0, le=5000)
    carbon: FileSpec | None = None

    @model_validator(mode="after")
    def _some_price(self) -> TariffSpec:
        priced = self.energy_eur_per_kwh is not None or self.tou is not None or self.prices is not None
        if self.blocks is not None:
            if priced or self.critical_peaks:
                raise ValueError("blocks replace energy_eur_per_kwh, tou, prices and critical_peaks: give one kind")
            ups = [b.up_to_kwh for b in self.blocks]
            if ups[-1] is not None or any(u is None for u in ups[:-1]):
                raise ValueError("blocks: every block but the last needs up_to_kwh, the last none (it is open)")
            bounds = [u for u in ups if u is not None]
            if any(b <= a for a, b in zip(bounds, bounds[1:])):
                raise ValueError(f"blocks: up_to_kwh must increase ({bounds})")
        elif not priced:
            raise ValueError("give energy_eur_per_kwh, tou or prices (or several: prices first, then tou, then flat)")
        return self


class ScenarioSpec(_Strict):
    site: SiteSpec
    chargers: list[ChargerSpec] = Field(min_length=1)
    feeders: list[FeederSpec] = []
    sessions: SessionsSpec
    simulation: SimulationSpec
    controller: ControllerSpec = ControllerSpec()
    tariff: TariffSpec | None = None


def parse_rotation(text: str) -> tuple[int, ...] | None:
    """'L2L3L1' -> (1, 2, 0); None when malformed or repeated."""
    t = text.strip().upper().replace(" ", "").replace(",", "")
    if not t or len(t) % 2 or len(t) > 6:
        return None
    parts = [t[i : i + 2] for i in range(0, len(t), 2)]
    if any(p not in PHASE_NAMES for p in parts) or len(set(parts)) != len(parts):
        return None
    return tuple(PHASE_NAMES.index(p) for p in parts)


def _rotation(text: str) -> tuple[int, ...]:
    """A rotation the spec has already validated."""
    rot = parse_rotation(text)
    assert rot is not None, text
    return rot


# ------------------------------------------------------------------------ reading
def read_scenario(
    path: str | Path,
    *,
    sessions: str | Path | None = None,
    strategy: str | None = None,
    days: float | None = None,
    seed: int | None = None,
    start: str | None = None,
) -> Scenario:
    """Read, validate and load a scenario with everything it references.

    Keyword arguments override the file: ``sessions`` a sessions CSV used instead of the
    file's ``[sessions]``, ``strategy``/``days``/``seed``/``start`` the ``[simulation]`` keys
    (``seed`` also seeds generated sessions and profiles).
    Raises :class:`~evflex.errors.ValidationError` with every problem found.
    """
    path = Path(path)
    src = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError([problem(src, "file not found")]) from None
    except UnicodeDecodeError:
        raise ValidationError([problem(src, "not a UTF-8 text file")]) from None
    except OSError as exc:
        raise ValidationError([problem(src, f"cannot read: {exc.strerror or exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError([problem(src, f"invalid TOML: {exc}")]) from None
    sim_raw = raw.get("simulation")
    if isinstance(sim_raw, dict):
        for key, val in (("strategy", strategy), ("days", days), ("seed", seed), ("start", start)):
            if val is not None:
                sim_raw[key] = val
    if sessions is not None:
        raw["sessions"] = {"file": str(Path(sessions).resolve())}
    sc = parse_scenario(raw, base_dir=path.parent, source=src, seed_override=seed)
    return sc.with_source(path)


def parse_scenario(
    raw: dict, *, base_dir: Path = Path("."), source: str = "scenario.toml", seed_override: int | None = None
) -> Scenario:
    """Build a :class:`Scenario` from a parsed TOML document."""
    try:
        spec = ScenarioSpec.model_validate(raw)
    except PydanticError as exc:
        raise ValidationError(_pydantic_problems(exc, source)) from None
    probs: list[Problem] = []
    site = _build_site(spec, source, probs)
    sim_cfg = _build_simulation(spec.simulation, source, probs)
    if probs:
        raise ValidationError(probs)
    topo = compile_topology(site)
    ctrl = ControllerParams(**spec.controller.model_dump())

    def resolve(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else base_dir / q

    table, sess_src = None, ""
    try:
        if spec.sessions.file is not None:
            f = resolve(spec.sessions.file)
            table, sess_src = read_sessions(f, topo, source=f.name), str(f)
        else:
            g = spec.sessions.generate
            assert g is not None  # the spec holds exactly one of file and generate
            gseed = g.seed if seed_override is None else seed_override
            gdays = sim_cfg.days if g.days is None else min(g.days, sim_cfg.days)
            table = generated_sessions(g.profile, topo, sim_cfg, gseed, gdays)
            sess_src = f"generated: {g.profile}, seed {gseed}"
    except ValidationError as exc:
        probs += exc.problems
    if table is not None and len(table):
        probs += _window_problems(table, sim_cfg, Path(sess_src).name if spec.sessions.file else sess_src)

    series: dict[str, StepSeries | None] = {"base_load": None, "pv": None, "limit": None}
    s = spec.site
    for kind, sp in (("base_load", s.base_load), ("pv", s.pv), ("limit", s.connection_limit_series)):
        if sp is None:
            continue
        if sp.file is not None:
            f = resolve(sp.file)
            try:
                ser = read_series(f, kind, site.voltage_ln_v, source=f.name)
            except ValidationError as exc:
                probs += exc.problems
                continue
            probs += _coverage(ser, sim_cfg, f.name, schedule=kind == "limit")
            series[kind] = ser  # base load and PV as current per phase (k, 3) [A]
        elif isinstance(sp, BaseLoadSpec):
            sseed = sp.seed if seed_override is None else seed_override
            t, v = profiles.office_load_a(
                sim_cfg.start_s, sim_cfg.end_s, sim_cfg.tz, site.voltage_ln_v, sp.peak_kw, sp.base_kw, sseed
            )
            series[kind] = StepSeries(t, v, name=f"office profile, peak {sp.peak_kw:g} kW")
        elif isinstance(sp, PvSpec):
            sseed = sp.seed if seed_override is None else seed_override
            t, v = profiles.pv_power_kw(
                sim_cfg.start_s, sim_cfg.end_s, sp.peak_kw, sp.latitude_deg, sp.longitude_deg, sseed
            )
            series[kind] = StepSeries(
                t, profiles.phase_split(v, site.voltage_ln_v), name=f"clear-sky PV, peak {sp.peak_kw:g} kW"
            )
    tariff = None
    if spec.tariff is not None:
        tariff, p = _tariff(spec.tariff, sim_cfg, resolve, source)
        probs += p
    if probs or table is None:
        raise ValidationError(probs)
    return Scenario(
        site=site,
        sessions=table,
        simulation=sim_cfg,
        controller=ctrl,
        base_load=series["base_load"],
        pv=series["pv"],
        connection_limit=series["limit"],
        sessions_source=sess_src,
        tariff=tariff,
    )


def _tariff(spec: TariffSpec, cfg: SimulationConfig, resolve, source: str) -> tuple[Tariff | None, list[Problem]]:
    """The tariff of a ``[tariff]`` table, with its price file read; every step of the run
    must have a price."""
    prices = None
    if spec.prices is not None:
        if spec.prices.file is not None:
            f = resolve(spec.prices.file)
        else:
            from importlib.resources import files

            f = Path(str(files("evflex.datasets") / "prices" / PRICE_DATASETS[str(spec.prices.dataset)]))
        try:
            prices = read_series(f, "price", 1.0, source=f.name)
        except ValidationError as exc:
            return None, exc.problems
    carbon = None
    if spec.carbon is not None:
        f = resolve(spec.carbon.file)
        try:
            carbon = read_series(f, "carbon", 1.0, source=f.name)
        except ValidationError as exc:
            return None, exc.problems
    tariff = Tariff(
        blocks=tuple((float(b.up_to_kwh or np.inf), b.eur_per_kwh) for b in spec.blocks or ()),
        critical_peaks=tuple((e.start.timestamp(), e.end.timestamp(), e.eur_per_kwh) for e in spec.critical_peaks),
        subscribed_kw=spec.subscribed_kw,
        excess_eur_per_kw=spec.excess_eur_per_kw,
        carbon_g_per_kwh=spec.carbon_g_per_kwh,
        carbon=carbon,
        energy_eur_per_kwh=spec.energy_eur_per_kwh,
        tou=tuple(t.period() for t in spec.tou or ()),
        prices=prices,
        export_eur_per_kwh=spec.export_eur_per_kwh,
        demand_charge_eur_per_kw=spec.demand_charge_eur_per_kw,
        billing=spec.billing,
    )
    steps = cfg.start_s + cfg.period_s * np.arange(int(round((cfg.end_s - cfg.start_s) / cfg.period_s)))
    try:
        if not tariff.blocks:
            tariff.energy_price(steps, cfg.tz)
    except ValueError as exc:
        where = prices.name if prices is not None else "tariff"
        return None, [problem(source if prices is None else where, f"{exc} (give energy_eur_per_kwh as the rest)")]
    if carbon is not None:
        try:
            tariff.carbon_intensity(steps)
        except ValueError as exc:
            return None, [problem(carbon.name, f"tariff: {exc}")]
    return tariff, []


def generated_sessions(profile: str, topo, cfg: SimulationConfig, seed: int, days: float):
    """Sessions from a behaviour model for every connector of the site, over ``days`` from
    the start of the simulated window."""
    from evflex.sim.behaviour import generate_sessions

    start = cfg.start.astimezone(cfg.tz) if cfg.timezone is not None else cfg.start
    df = generate_sessions(
        profile,
        list(topo.connector_ids),
        start,
        days,
        seed,
        connector_phases=topo.charger_phases.tolist(),
        connector_max_current_a=topo.max_current_a.tolist(),
        voltage_ln_v=topo.voltage_ln_v,
        connector_voltage_v=topo.voltage_v.tolist(),
    )
    return parse_sessions(sessions_as_text(df), topo, f"generated {profile} sessions")


def _build_site(spec: ScenarioSpec, source: str, probs: list[Problem]) -> Site:
    chargers: list[Charger] = []
    counters: dict[str, int] = {}
    for c in spec.chargers:
        if c.id is not None:
            ids = [c.id]
        elif c.ids is not None:
            ids = list(c.ids)
        else:
            first = counters.get(c.id_prefix, 0)
            ids = [f"{c.id_prefix}{first + k + 1}" for k in range(c.count)]
            counters[c.id_prefix] = first + c.count
        for cid in ids:
            per_connector: tuple[tuple[int, ...], ...] = ()
            if isinstance(c.phase_rotation, list):
                per_connector = tuple(_rotation(r) for r in c.phase_rotation)
                rot = per_connector[0]
            elif c.phase_rotation is None:
                rot = (0, 1, 2)[: c.n_phases]
            elif c.phase_rotation == "cyclic":
                shift = (len(chargers)) % 3
                rot = tuple((p + shift) % 3 for p in range(3))[: c.n_phases]
            else:
                rot = _rotation(c.phase_rotation)
            chargers.append(
                Charger(
                    id=cid,
                    connectors=c.connectors,
                    max_current_a=c.max_current_a,
                    min_current_a=c.min_current_a,
                    phases=c.n_phases,
                    phase_rotation=rot,
                    connection=c.connection,
                    modulation=c.modulation,
                    phase_switching=c.phase_switching,
                    v2g=c.v2g,
                    max_total_current_a=c.max_total_current_a,
                    setpoint_resolution_a=c.setpoint_resolution_a,
                    response=ChargerResponse(c.activation_delay_s, c.ramp_a_per_s, c.precision_a, c.phase_switch_s),
                    connector_rotations=per_connector,
                )
            )
    seen: dict[str, int] = {}
    for ch in chargers:
        if ch.id in seen:
            probs.append(problem(source, "duplicate charger id", field="chargers.id", value=ch.id))
        seen[ch.id] = 1
    feeders = []
    feeder_ids: set[str] = set()
    for fi, f in enumerate(spec.feeders, start=1):
        if f.id in feeder_ids:
            probs.append(problem(source, "duplicate feeder id", field=f"feeders[{fi}].id", value=f.id))
        feeder_ids.add(f.id)
        for name in f.chargers:
            if name not in seen:
                probs.append(problem(source, "unknown charger", field=f"feeders[{fi}].chargers", value=name))
        feeders.append(
            Feeder(
                id=f.id,
                limit_a=f.limit_a,
                chargers=tuple(f.chargers),
                phases=tuple(sorted(_rotation(f.phases))),
                includes_base_load=f.includes_base_load,
            )
        )
    return Site(
        name=spec.site.name,
        voltage_ln_v=spec.site.voltage_ln_v,
        connection_limit_a=math.inf if spec.site.connection_limit_a is None else spec.site.connection_limit_a,
        chargers=tuple(chargers),
        feeders=tuple(feeders),
        transformer_kw=spec.site.transformer_kw,
        transformer_primary_ll_v=spec.site.transformer_primary_ll_v,
        max_unbalance_a=spec.site.max_unbalance_a,
    )


def _build_simulation(s: SimulationSpec, source: str, probs: list[Problem]) -> SimulationConfig:
    tz = None
    if s.timezone is not None:
        try:
            tz = ZoneInfo(s.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            probs.append(
                problem(
                    source,
                    "unknown time zone (use an IANA name such as 'Europe/Copenhagen')",
                    field="simulation.timezone",
                    value=s.timezone,
                )
            )
    try:
        start = datetime.fromisoformat(s.start)
    except ValueError:
        probs.append(problem(source, "not an ISO-8601 timestamp", field="simulation.start", value=s.start))
        start = datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))
    if start.tzinfo is None:
        if tz is None:
            probs.append(
                problem(
                    source,
                    "needs an offset (e.g. '+01:00') or [simulation].timezone",
                    field="simulation.start",
                    value=s.start,
                )
            )
            start = start.replace(tzinfo=ZoneInfo("UTC"))
        else:
            start = start.replace(tzinfo=tz)
    steps = s.days * 86400.0 / s.period_s
    if abs(steps - round(steps)) > 1e-6:
        probs.append(
            problem(
                source,
                f"the window of {s.days:g} days is not a whole number of {s.period_s:g} s steps",
                field="simulation.period_s",
                value=s.period_s,
            )
        )
    return SimulationConfig(
        start=start,
        days=s.days,
        period_s=s.period_s,
        strategy=s.strategy,
        seed=s.seed,
        ev_limits_known=s.ev_limits_known,
        taper_soc=s.taper_soc,
        timezone=tz,
        metering_delay_s=s.metering_delay_s,
    )


def _window_problems(table, cfg: SimulationConfig, source: str) -> list[Problem]:
    """No session inside the window is a mistake (a wrong start, another year's data)."""
    inside = (table.arrival_s >= cfg.start_s) & (table.departure_s <= cfg.end_s)
    if inside.any():
        return []

    def iso(t):
        return pd.Timestamp(t, unit="s", tz="UTC").tz_convert(cfg.tz).isoformat()

    return [
        problem(
            source,
            f"none of the {len(table)} sessions lies inside the simulated window {iso(cfg.start_s)} "
            f"to {iso(cfg.end_s)}; they run {iso(table.arrival_s.min())} to "
            f"{iso(table.departure_s.max())} (set [simulation].start, or pass --start)",
        )
    ]


def _coverage(ser: StepSeries, cfg: SimulationConfig, source: str, schedule: bool = False) -> list[Problem]:
    """A series must cover the simulated window; a ``schedule`` (a limit: change points,
    each value holding until the next) only needs to start by the window's start, its last
    value holding to the end."""
    if ser.start_s <= cfg.start_s and (schedule or ser.end_s >= cfg.end_s):
        return []

    def iso(t):
        return pd.Timestamp(t, unit="s", tz="UTC").tz_convert(cfg.tz).isoformat()

    return [
        problem(
            source,
            f"starts at {iso(ser.start_s)} but the simulation starts at {iso(cfg.start_s)} (a limit holds "
            "from its first timestamp)"
            if schedule
            else f"covers {iso(ser.start_s)} to {iso(ser.end_s)} but the simulation runs "
            f"{iso(cfg.start_s)} to {iso(cfg.end_s)}",
        )
    ]


_MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
}


def _pydantic_problems(exc: PydanticError, source: str) -> list[Problem]:
    probs = []
    for e in exc.errors(include_url=False):
        loc = _loc(e["loc"])
        msg = _MESSAGES.get(e["type"], e["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msg = msg[:1].lower() + msg[1:]
        if e["type"] == "missing":
            probs.append(problem(source, msg, field=loc))
        elif isinstance(e.get("input"), dict) and e["type"] == "value_error":
            probs.append(problem(source, msg, field=loc))
        else:
            probs.append(problem(source, msg, field=loc, value=e.get("input")))
    return probs


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"
