"""The ``[tariff]`` table of a scenario and the cost KPIs of a run, against hand calculations."""

import textwrap

import numpy as np
import pytest

from evflex.errors import ValidationError
from evflex.io.scenario import read_scenario
from evflex.sim.engine import simulate

SESSIONS = (
    "session_id,connector_id,arrival,departure,energy_kwh\n"
    "a,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,12\n"
    "b,C1-2,2026-03-02T20:00:00+01:00,2026-03-02T23:59:00+01:00,6\n"
)

SCENARIO = """
[site]
name = "tariffs"
connection_limit_a = 32.0

[[chargers]]
count = 1
connectors = 2

[sessions]
file = "sessions.csv"

[simulation]
start = "2026-03-02T00:00:00+01:00"
days = 1
period_s = 60
"""


def read(tmp_path, tariff: str, files: dict[str, str] | None = None):
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    p = tmp_path / "scenario.toml"
    p.write_text(textwrap.dedent(SCENARIO) + textwrap.dedent(tariff))
    return read_scenario(p)


def problems(tmp_path, tariff: str, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        read(tmp_path, tariff, files)
    return [str(p) for p in exc.value.problems]


def test_flat_tariff_costs_the_energy_delivered(tmp_path):
    sc = read(tmp_path, "[tariff]\nenergy_eur_per_kwh = 0.25\ndemand_charge_eur_per_kw = 10.0\n")
    k = simulate(sc, "llf").kpis
    assert k["energy_delivered_kwh"] == pytest.approx(18.0, abs=1e-5)  # no base load: the site is the EVs
    assert k["energy_cost_eur"] == pytest.approx(18.0 * 0.25, rel=1e-6)
    assert k["demand_charge_eur"] == pytest.approx(10.0 * k["peak_site_kw"], rel=1e-9)
    assert k["capacity_excess_eur"] == 0.0  # no subscribed capacity
    assert k["total_cost_eur"] == pytest.approx(k["energy_cost_eur"] + k["demand_charge_eur"])
    sub = read(tmp_path, "[tariff]\nenergy_eur_per_kwh = 0.25\nsubscribed_kw = 5.0\nexcess_eur_per_kw = 30.0\n")
    k2 = simulate(sub, "llf").kpis
    assert k2["capacity_excess_eur"] == pytest.approx(30.0 * (k2["peak_site_kw"] - 5.0), rel=1e-9)
    assert k2["total_cost_eur"] == pytest.approx(k2["energy_cost_eur"] + k2["capacity_excess_eur"])
    assert "energy_cost_eur" not in simulate(read(tmp_path, ""), "llf").kpis  # no tariff, no costs


def test_time_of_use_prices_the_evening_session_at_night(tmp_path):
    tariff = """
    [tariff]
    energy_eur_per_kwh = 0.30
    tou = [ { start = "19:00", end = "07:00", eur_per_kwh = 0.10 } ]
    """
    k = simulate(read(tmp_path, tariff), "llf").kpis
    # session a (12 kWh) charges from 08:00 at the day price, b (6 kWh) from 20:00 at night
    assert k["energy_cost_eur"] == pytest.approx(12 * 0.30 + 6 * 0.10, rel=1e-6)


def test_day_ahead_prices_from_a_file_in_eur_per_mwh(tmp_path):
    hours = [f"2026-03-02T{h:02d}:00:00+01:00" for h in range(24)]
    csv = "timestamp,eur_per_mwh\n" + "".join(f"{t},{50 + 10 * i}\n" for i, t in enumerate(hours))
    sc = read(tmp_path, '[tariff]\nprices = { file = "da.csv" }\n', {"da.csv": csv})
    assert sc.tariff is not None
    t = sc.simulation.start_s + 3600.0 * np.array([0.5, 8.5])
    assert sc.tariff.energy_price(t, sc.simulation.tz).tolist() == pytest.approx([0.05, 0.13])


def test_tariff_problems_are_named(tmp_path):
    assert problems(tmp_path, "[tariff]\ndemand_charge_eur_per_kw = 5.0\n") == [
        "scenario.toml: tariff: give energy_eur_per_kwh, tou or prices (or several: prices first, then tou, then flat)"
    ]
    bad_tou = '[tariff]\ntou = [ { start = "25:00", end = "07:00", eur_per_kwh = 0.1, days = ["funday"] } ]\n'
    got = problems(tmp_path, bad_tou)
    assert got[0].startswith("scenario.toml: tariff.tou[1].start='25:00': string should match pattern")
    # a time of use that leaves hours without a price, and no flat price for them
    gap = '[tariff]\ntou = [ { start = "19:00", end = "07:00", eur_per_kwh = 0.1 } ]\n'
    assert problems(tmp_path, gap) == [
        "scenario.toml: tariff: no price at 2026-03-02T07:00:00+01:00 (give energy_eur_per_kwh as the rest)"
    ]
    short = "timestamp,eur_per_kwh\n2026-03-02T00:00:00+01:00,0.1\n2026-03-02T01:00:00+01:00,0.2\n"
    assert problems(tmp_path, '[tariff]\nprices = { file = "da.csv" }\n', {"da.csv": short}) == [
        "da.csv: tariff: no price at 2026-03-02T02:00:00+01:00 (give energy_eur_per_kwh as the rest)"
    ]
    both = "timestamp,eur_per_kwh,eur_per_mwh\n2026-03-02T00:00:00+01:00,0.1,100\n"
    assert problems(tmp_path, '[tariff]\nprices = { file = "da.csv" }\n', {"da.csv": both}) == [
        "da.csv: both of the price columns 'eur_per_kwh', 'eur_per_mwh': give one"
    ]


def test_the_packaged_day_ahead_year(tmp_path):
    """The Dutch day-ahead prices of 2022 (datasets/prices, with provenance) price a run in
    2022, hour by hour, converted to EUR/kWh."""
    text = SCENARIO.replace("2026-03-02", "2022-03-07")
    (tmp_path / "sessions.csv").write_text(SESSIONS.replace("2026-03-02", "2022-03-07"))
    p = tmp_path / "scenario.toml"
    p.write_text(textwrap.dedent(text) + '[tariff]\nprices = { dataset = "nl-day-ahead-2022" }\n')
    sc = read_scenario(p)
    assert sc.tariff is not None and sc.tariff.prices is not None
    prices = sc.tariff.prices
    assert len(prices.times_s) == 8760 and np.all(np.diff(prices.times_s) == 3600.0)
    assert prices.values.min() < 0 < prices.values.max() < 1.0  # EUR/kWh: negative hours, under 1 EUR
    k = simulate(sc, "llf").kpis
    assert 0 < k["energy_cost_eur"] < 18.0 * prices.values.max()
    # a run outside 2022 has no price, and says so
    p.write_text(textwrap.dedent(SCENARIO) + '[tariff]\nprices = { dataset = "nl-day-ahead-2022" }\n')
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    with pytest.raises(ValidationError, match="nl_day_ahead_2022.csv: tariff: no price at 2026-03-02T00:00:00"):
        read_scenario(p)


def test_co2_of_the_imports_at_the_grid_intensity(tmp_path):
    # 200 g/kWh by day, 100 g/kWh from 19:00: a (12 kWh) by day, b (6 kWh) in the evening
    csv = "timestamp,g_per_kwh\n2026-03-02T00:00:00+01:00,200\n2026-03-02T19:00:00+01:00,100\n"
    tariff = '[tariff]\nenergy_eur_per_kwh = 0.2\ncarbon = { file = "co2.csv" }\ncarbon_g_per_kwh = 300\n'
    k = simulate(read(tmp_path, tariff, {"co2.csv": csv}), "llf").kpis
    # the file's last interval (19:00 + 19 h, its median step) covers the rest of the day
    assert k["co2_kg"] == pytest.approx((12 * 200 + 6 * 100) / 1000.0, rel=1e-6)
    assert "co2_kg" not in simulate(read(tmp_path, "[tariff]\nenergy_eur_per_kwh = 0.2\n"), "llf").kpis
    late = "timestamp,g_per_kwh\n2026-03-02T06:00:00+01:00,200\n2026-03-02T07:00:00+01:00,100\n"
    assert problems(
        tmp_path, '[tariff]\nenergy_eur_per_kwh = 0.2\ncarbon = { file = "co2.csv" }\n', {"co2.csv": late}
    ) == ["co2.csv: tariff: no carbon intensity for some times (give carbon_g_per_kwh as the rest)"]


def test_critical_peak_events_are_read_and_checked(tmp_path):
    event = "{ start = 2026-03-02T09:00:00+01:00, end = 2026-03-02T10:00:00+01:00, eur_per_kwh = 1.2 }"
    sc = read(tmp_path, f"[tariff]\nenergy_eur_per_kwh = 0.25\ncritical_peaks = [ {event} ]\n")
    assert sc.tariff is not None
    t = sc.simulation.start_s + 3600.0 * np.array([8.5, 9.5, 10.5])
    assert sc.tariff.energy_price(t, sc.simulation.tz).tolist() == [0.25, 1.2, 0.25]
    k = simulate(sc, "llf").kpis  # session a charges from 08:00 for about an hour and five minutes
    assert 18 * 0.25 < k["energy_cost_eur"] < 18 * 0.25 + 2 * (1.2 - 0.25)
    backwards = "{ start = 2026-03-02T10:00:00+01:00, end = 2026-03-02T09:00:00+01:00, eur_per_kwh = 1.2 }"
    (got,) = problems(tmp_path, f"[tariff]\nenergy_eur_per_kwh = 0.25\ncritical_peaks = [ {backwards} ]\n")
    want = "tariff.critical_peaks[1]: end 2026-03-02T09:00:00+01:00 is not after start 2026-03-02T10:00:00+01:00"
    assert got == f"scenario.toml: {want}"


def test_inclining_blocks_in_the_scenario(tmp_path):
    tariff = "[tariff]\nblocks = [ { up_to_kwh = 10.0, eur_per_kwh = 0.2 }, { eur_per_kwh = 0.4 } ]\n"
    k = simulate(read(tmp_path, tariff), "llf").kpis
    assert k["energy_cost_eur"] == pytest.approx(10 * 0.2 + 8 * 0.4, rel=1e-6)  # 18 kWh in the day
    mixed = "[tariff]\nenergy_eur_per_kwh = 0.3\nblocks = [ { eur_per_kwh = 0.4 } ]\n"
    assert problems(tmp_path, mixed) == [
        "scenario.toml: tariff: blocks replace energy_eur_per_kwh, tou, prices and critical_peaks: give one kind"
    ]
    open_first = "[tariff]\nblocks = [ { eur_per_kwh = 0.2 }, { up_to_kwh = 5.0, eur_per_kwh = 0.4 } ]\n"
    assert problems(tmp_path, open_first) == [
        "scenario.toml: tariff: blocks: every block but the last needs up_to_kwh, the last none (it is open)"
    ]
