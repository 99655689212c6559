"""Tariffs against hand calculations: prices at given local times, energy cost with export,
demand charges per billing period."""

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from evflex.markets.tariff import (
    Tariff,
    TouPeriod,
    block_cost_eur,
    capacity_excess_eur,
    demand_charge_eur,
    energy_cost_eur,
)
from evflex.model import StepSeries

CPH = ZoneInfo("Europe/Copenhagen")


def at(*args) -> float:
    return datetime(*args, tzinfo=CPH).timestamp()


def test_flat_price_everywhere():
    t = np.array([at(2026, 3, 2, 0, 0), at(2026, 7, 4, 13, 30)])
    assert Tariff(energy_eur_per_kwh=0.25).energy_price(t, CPH).tolist() == [0.25, 0.25]


def test_time_of_use_by_hour_weekday_and_season():
    tou = (
        TouPeriod(17 * 60, 21 * 60, 0.40, days=frozenset(range(5)), months=frozenset({10, 11, 12, 1, 2, 3})),
        TouPeriod(22 * 60, 6 * 60, 0.12),  # night, over midnight
    )
    tariff = Tariff(energy_eur_per_kwh=0.25, tou=tou)
    t = np.array(
        [
            at(2026, 3, 2, 18, 0),  # a Monday in winter, 18:00: peak
            at(2026, 3, 7, 18, 0),  # a Saturday: no peak, the flat price
            at(2026, 7, 6, 18, 0),  # a Monday in summer: no peak
            at(2026, 3, 2, 23, 30),  # night
            at(2026, 3, 3, 5, 59),  # night, after midnight
            at(2026, 3, 3, 6, 0),  # day again
        ]
    )
    assert tariff.energy_price(t, CPH).tolist() == [0.40, 0.25, 0.25, 0.12, 0.12, 0.25]


def test_local_time_follows_daylight_saving():
    # 29 March 2026: clocks go from 02:00 to 03:00 in Copenhagen; 06:00 local is 04:00 UTC
    tariff = Tariff(tou=(TouPeriod(6 * 60, 22 * 60, 0.30), TouPeriod(22 * 60, 6 * 60, 0.10)))
    t = np.array([datetime(2026, 3, 29, 4, 0, tzinfo=ZoneInfo("UTC")).timestamp() - 1, at(2026, 3, 29, 6, 0)])
    assert tariff.energy_price(t, CPH).tolist() == [0.10, 0.30]


def test_a_price_series_comes_first_and_a_gap_is_an_error():
    hours = at(2026, 3, 2, 0, 0) + 3600.0 * np.arange(3)
    series = StepSeries(hours, np.array([0.05, 0.50, 0.20]))
    t = hours + 1800.0
    assert Tariff(prices=series).energy_price(t, CPH).tolist() == [0.05, 0.50, 0.20]
    later = np.array([hours[-1] + 2 * 3600.0])  # past the series' last hour
    assert Tariff(prices=series, energy_eur_per_kwh=0.3).energy_price(later, CPH).tolist() == [0.3]
    with pytest.raises(ValueError, match=r"tariff day-ahead: no price at 2026-03-02T04:00:00\+01:00"):
        Tariff(prices=series, name="day-ahead").energy_price(later, CPH)


def test_energy_cost_pays_imports_and_credits_exports():
    kwh = np.array([2.0, 1.0, -3.0, 0.5])
    price = np.array([0.10, 0.30, 0.30, 0.20])
    # 2 x 0.10 + 1 x 0.30 + 0.5 x 0.20 = 0.60, less 3 kWh exported at 0.05 = 0.15
    assert energy_cost_eur(kwh, price, export_eur_per_kwh=0.05) == pytest.approx(0.45)


def test_demand_charge_on_the_peak_of_each_billing_period():
    t = np.array([at(2026, 1, 31, 12, 0), at(2026, 1, 31, 13, 0), at(2026, 2, 1, 9, 0), at(2026, 2, 2, 9, 0)])
    kw = np.array([30.0, 42.0, 20.0, 25.0])
    assert demand_charge_eur(kw, t, CPH, 10.0, "run") == pytest.approx(420.0)
    assert demand_charge_eur(kw, t, CPH, 10.0, "month") == pytest.approx(420.0 + 250.0)
    assert demand_charge_eur(-kw, t, CPH, 10.0) == 0.0  # export sets no peak
    with pytest.raises(ValueError, match="billing 'week'"):
        demand_charge_eur(kw, t, CPH, 10.0, "week")


def test_a_subscribed_capacity_charges_each_kw_of_peak_beyond_it():
    t = np.array([at(2026, 1, 31, 12, 0), at(2026, 1, 31, 13, 0), at(2026, 2, 1, 9, 0), at(2026, 2, 2, 9, 0)])
    kw = np.array([30.0, 42.0, 20.0, 25.0])
    # January peaks at 42 kW, 12 kW over 30; February at 25 kW, within
    assert capacity_excess_eur(kw, t, CPH, 30.0, 20.0, "month") == pytest.approx(12 * 20.0)
    assert capacity_excess_eur(kw, t, CPH, 50.0, 20.0, "run") == 0.0


def test_a_critical_peak_event_overrides_every_other_price():
    series = StepSeries(np.array([at(2026, 3, 2, 0, 0), at(2026, 3, 3, 0, 0)]), np.array([0.10, 0.10]))
    event = (at(2026, 3, 2, 17, 0), at(2026, 3, 2, 19, 0), 1.50)
    tariff = Tariff(prices=series, critical_peaks=(event,), tou=(TouPeriod(0, 0, 0.2),))
    t = np.array([at(2026, 3, 2, 16, 59), at(2026, 3, 2, 17, 0), at(2026, 3, 2, 18, 59), at(2026, 3, 2, 19, 0)])
    assert tariff.energy_price(t, CPH).tolist() == [0.10, 1.50, 1.50, 0.10]


def test_an_inclining_block_rate_prices_each_kwh_by_the_block_the_period_has_reached():
    blocks = ((100.0, 0.20), (300.0, 0.30), (np.inf, 0.50))
    t = np.array([at(2026, 1, 30, 12, 0), at(2026, 1, 31, 12, 0), at(2026, 2, 1, 12, 0), at(2026, 2, 2, 12, 0)])
    kwh = np.array([80.0, 250.0, 50.0, -10.0])
    # one run: 380 kWh = 100 x 0.20 + 200 x 0.30 + 80 x 0.50 = 120; 10 kWh exported at 0.05
    assert block_cost_eur(kwh, t, CPH, blocks, "run", 0.05) == pytest.approx(120.0 - 0.5)
    # by month: January 330 kWh = 20 + 60 + 30 x 0.50 = 95; February 50 kWh = 10
    assert block_cost_eur(kwh, t, CPH, blocks, "month") == pytest.approx(105.0)
