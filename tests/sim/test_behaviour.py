"""Behaviour generators: the sessions table contract, determinism, physical consistency
(no overlaps, caps), and the shapes the packaged ElaadNL statistics imply."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evflex.errors import ValidationError
from evflex.io import acn
from evflex.sim import behaviour
from evflex.sim.behaviour import (
    EFFICIENCY,
    PROFILES,
    SESSION_COLUMNS,
    ElaadProfileParams,
    FleetProfileParams,
    Profile,
    elaadnl_tables,
    ev_models,
    exceedance_mean,
    generate_sessions,
    onboard_charger,
    sessions_per_profile_summary,
    stay_scale,
    time_of_day_ratio,
)

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 3, 2, tzinfo=AMS)  # a Monday
IDS = [f"C{k // 2 + 1}-{k % 2 + 1}" for k in range(16)]
TOL = 1e-9


def many(profile, connectors=120, days=28, seed=7, start=START, **kw):
    return generate_sessions(profile, [f"K{k}" for k in range(connectors)], start, days, seed, **kw)


def local_hour(times: pd.Series) -> np.ndarray:
    return (times.dt.hour + times.dt.minute / 60.0).to_numpy()


def stay_h(df: pd.DataFrame) -> pd.Series:
    return (df["departure"] - df["arrival"]).dt.total_seconds() / 3600.0


# ----------------------------------------------------------------- packaged data


def test_packaged_tables_are_parsed_and_sorted():
    t = elaadnl_tables()
    for table in (t.arrival_share_weekday, t.arrival_share_weekend):
        for share in table.values():
            assert share.shape == (96,)
            assert share.sum() == pytest.approx(1.0)
    assert set(t.arrival_share_weekday) == {"private", "public", "workplace"}
    assert set(t.arrival_share_weekend) == {"private", "public"}
    assert t.exceedance_pct[0] == 0 and t.exceedance_pct[-1] == 100
    # Exceedance tables: value falls as the exceeding share grows.
    for seg in ("private", "public", "workplace"):
        assert np.all(np.diff(t.connection_h[seg]) <= 0)
        assert np.all(np.diff(t.energy_kwh[seg]) <= 0)
    # Rows of the mean tables are unsorted in the file; "07:00" is half-hour 14.
    assert t.mean_stay_h_by_half_hour["workplace"][14] == pytest.approx(8.4)
    assert t.mean_stay_h_by_half_hour["private"][0] == pytest.approx(9.3)
    assert np.isnan(t.mean_stay_h_by_half_hour["workplace"][0])  # empty cell
    assert t.mean_energy_kwh_by_half_hour["public"][10] == pytest.approx(20.2595417709451)


def test_fleet_mix_and_onboard_chargers():
    models = {m.name: m for m in ev_models()}
    assert len(models) == 13
    assert (models["Volkswagen Golf"].phases, models["Volkswagen Golf"].max_current_a) == (2, 16.0)
    assert (models["Peugeot 208"].phases, models["Peugeot 208"].max_current_a) == (1, 32.0)
    assert (models["Nissan Leaf"].phases, models["Nissan Leaf"].max_current_a) == (1, 16.0)
    assert (models["Renault Zoe"].phases, models["Renault Zoe"].max_current_a) == (3, 32.0)
    assert (models["Tesla Model 3"].phases, models["Tesla Model 3"].max_power_kw) == (3, 11.0)
    assert onboard_charger(5.0, 230.0) == pytest.approx((1, 5000.0 / 230.0))
    assert onboard_charger(16.5, 230.0) == pytest.approx((3, 16500.0 / 690.0))


def test_exceedance_mean_and_ratio():
    assert exceedance_mean(np.array([0.0, 100.0]), np.array([10.0, 0.0])) == pytest.approx(5.0)
    share = np.full(96, 1 / 96)
    mean = np.full(48, np.nan)
    mean[:24], mean[24:47] = 2.0, 4.0
    ratio = time_of_day_ratio(mean, share)
    weighted = (24 * 2.0 + 23 * 4.0) / 47
    assert ratio[0] == pytest.approx(2.0 / weighted) and ratio[30] == pytest.approx(4.0 / weighted)
    assert ratio[47] == 1.0


def test_stay_scale_keeps_the_conditional_mean_under_the_cap():
    params = PROFILES[Profile.WORKPLACE]
    t = elaadnl_tables()
    scale = stay_scale(params)
    ratio = time_of_day_ratio(t.mean_stay_h_by_half_hour["workplace"], t.arrival_share_weekday["workplace"])
    u = (np.arange(20000) + 0.5) / 20000
    x = np.interp(u * 100, t.exceedance_pct, t.connection_h["workplace"])
    for half_hour in (14, 16, 26):  # 07:00, 08:00, 13:00
        capped = np.clip(scale[half_hour] * x, behaviour.MIN_STAY_H, params.max_stay_h).mean()
        assert capped == pytest.approx(ratio[half_hour] * x.mean(), rel=1e-3)
    assert scale[14] > ratio[14]  # the 14 h cap bites for morning arrivals


def test_profiles_are_documented():
    assert set(PROFILES) == set(Profile)
    for params in PROFILES.values():
        assert params.rationale
        assert params.rate_per_day_weekday >= 0 and params.rate_per_day_weekend >= 0
    assert isinstance(PROFILES[Profile.FLEET], FleetProfileParams)
    assert isinstance(PROFILES[Profile.HOME], ElaadProfileParams)


# ----------------------------------------------------------------- the contract


def test_table_contract():
    df = generate_sessions("workplace", IDS, START, 14, 1)
    assert tuple(df.columns) == SESSION_COLUMNS == acn.SESSION_COLUMNS
    assert len(df) > 0
    assert df["session_id"].is_unique
    assert df["arrival"].is_monotonic_increasing
    assert str(df["arrival"].dt.tz) == "Europe/Amsterdam" and str(df["departure"].dt.tz) == "Europe/Amsterdam"
    assert set(df["connector_id"]) <= set(IDS)
    assert set(df["phases"]) <= {1, 2, 3}
    assert df["phases"].dtype == np.int64 and df["v2g"].dtype == bool
    for col in ("energy_kwh", "max_power_kw", "battery_kwh", "soc_arrival"):
        assert df[col].dtype == np.float64 and df[col].notna().all()
    assert df["soc_arrival"].between(0, 1).all()
    assert not df["v2g"].any()  # no model of ev_specs.json has ac_v2g == "yes"


def test_iso_output_carries_the_offset():
    df = generate_sessions("home", IDS[:2], START, 3, 1)
    text = df["arrival"].map(lambda t: t.isoformat()).iloc[0]
    assert text.endswith("+01:00") and datetime.fromisoformat(text) == df["arrival"].iloc[0]


@pytest.mark.parametrize("profile", list(Profile))
def test_deterministic_per_seed(profile):
    a = generate_sessions(profile, IDS, START, 14, 42)
    b = generate_sessions(profile.value, IDS, START, 14, 42)
    pd.testing.assert_frame_equal(a, b)
    c = generate_sessions(profile, IDS, START, 14, 43)
    assert not (len(a) == len(c) and a["arrival"].equals(c["arrival"]))


def test_empty_table_keeps_the_columns():
    # Fleet cars return in the evening and leave next morning: nothing ends in 6 hours.
    df = generate_sessions("fleet", IDS, START, 0.25, 1)
    assert len(df) == 0
    assert tuple(df.columns) == SESSION_COLUMNS


def test_bad_arguments_are_all_reported():
    with pytest.raises(ValidationError) as exc:
        generate_sessions(
            "home", ["a", "a"], datetime(2026, 3, 2), 0, 1, connector_phases=[3], connector_max_current_a=[16.0, 4.0]
        )
    assert [str(p) for p in exc.value.problems] == [
        "generate_sessions: connector_ids: connector ids must be unique",
        "generate_sessions: start=2026-03-02 00:00:00: must be a timezone-aware datetime",
        "generate_sessions: days=0: must be > 0",
        "generate_sessions: connector_phases=1: must have one value per connector (2)",
        "generate_sessions: connector_max_current_a[1]=4.0: must be >= 6 A (IEC 61851)",
    ]
    with pytest.raises(ValueError):
        generate_sessions("office", IDS, START, 1, 1)


# ----------------------------------------------------------------- physical consistency


@given(
    profile=st.sampled_from(list(Profile)),
    n=st.integers(1, 6),
    days=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    start_hour=st.integers(0, 23),
    wiring=st.lists(
        st.tuples(st.sampled_from([1, 3]), st.sampled_from([6.0, 10.0, 16.0, 32.0])), min_size=6, max_size=6
    ),
)
def test_sessions_are_consistent(profile, n, days, seed, start_hour, wiring):
    start = datetime(2026, 3, 20, start_hour, tzinfo=AMS)  # spans the DST change of Mar 29 for long runs
    phases = [w[0] for w in wiring[:n]]
    current_a = [w[1] for w in wiring[:n]]
    ids = [f"c{k}" for k in range(n)]
    df = generate_sessions(
        profile, ids, start, days, seed, connector_phases=phases, connector_max_current_a=current_a, voltage_ln_v=230.0
    )
    end = pd.Timestamp(start) + pd.Timedelta(days=days)
    assert (df["arrival"] >= pd.Timestamp(start)).all() and (df["departure"] <= end).all()
    assert (df["departure"] > df["arrival"]).all()
    assert df["session_id"].is_unique and df["arrival"].is_monotonic_increasing
    for _, one in df.groupby("connector_id"):
        one = one.sort_values("arrival")
        assert (one["arrival"].iloc[1:].to_numpy() >= one["departure"].iloc[:-1].to_numpy()).all()
    assert (df["energy_kwh"] > 0).all()
    room_kwh = (1 - df["soc_arrival"]) * df["battery_kwh"] / EFFICIENCY
    assert (df["energy_kwh"] <= room_kwh + TOL).all()
    k = df["connector_id"].map({c: i for i, c in enumerate(ids)}).to_numpy()
    drawn_phases = np.minimum(df["phases"].to_numpy(), np.asarray(phases)[k])
    drawn_a = np.minimum([onboard_charger(p)[1] for p in df["max_power_kw"]], np.asarray(current_a)[k])
    power_kw = np.minimum(df["max_power_kw"].to_numpy(), drawn_phases * drawn_a * 0.23)
    assert (df["energy_kwh"].to_numpy() <= power_kw * stay_h(df).to_numpy() + TOL).all()
    if profile != Profile.FLEET:
        assert (stay_h(df) >= behaviour.MIN_STAY_H - TOL).all()
        assert (stay_h(df) <= PROFILES[Profile(profile)].max_stay_h + TOL).all()


def test_vehicle_mix_has_one_two_and_three_phase_cars():
    df = many("public", connectors=40, days=14)
    assert {1, 2, 3} <= set(df["phases"])
    share_3ph = (df["phases"] == 3).mean()
    registrations = {m.phases: 0 for m in ev_models()}
    for m in ev_models():
        registrations[m.phases] += m.registrations
    expected = registrations[3] / sum(registrations.values())
    assert share_3ph == pytest.approx(expected, abs=0.05)


def test_fleet_vehicles_are_dedicated_to_a_connector():
    df = many("fleet", connectors=20, days=21)
    assert (df.groupby("connector_id")["battery_kwh"].nunique() == 1).all()


# ----------------------------------------------------------------- shapes from the data


def test_workplace_arrivals_peak_in_the_morning_and_home_in_the_evening():
    work = many("workplace")
    weekday = work[work["arrival"].dt.day_of_week < 5]
    hist = np.bincount(weekday["arrival"].dt.hour, minlength=24)
    assert 7 <= hist.argmax() <= 10
    assert hist[7:11].sum() > 0.5 * hist.sum()
    home = many("home")
    hist = np.bincount(home["arrival"].dt.hour, minlength=24)
    assert 16 <= hist.argmax() <= 20
    assert hist[16:22].sum() > hist[6:12].sum() * 2


def test_workplace_means_match_the_elaadnl_tables():
    t = elaadnl_tables()
    expected_energy_kwh = exceedance_mean(t.exceedance_pct, t.energy_kwh["workplace"])
    expected_stay_h = exceedance_mean(t.exceedance_pct, t.connection_h["workplace"])
    df = many("workplace", connectors=150)
    summary = sessions_per_profile_summary(df, connector_count=150, days=28)
    # Caps (battery room, power x stay, the 14 h stay limit) only lower the means a little.
    assert 0.8 * expected_energy_kwh <= summary["mean_energy_kwh"] <= 1.1 * expected_energy_kwh
    assert 0.85 * expected_stay_h <= summary["mean_stay_h"] <= 1.15 * expected_stay_h
    # Morning arrivals stay about as long as ElaadNL's mean for 07:00-09:00 arrivals.
    morning = df[df["arrival"].dt.hour.isin([7, 8])]
    table_h = np.nanmean(t.mean_stay_h_by_half_hour["workplace"][14:18])
    assert stay_h(morning).mean() == pytest.approx(table_h, rel=0.1)
    afternoon = df[df["arrival"].dt.hour.isin([14, 15])]
    assert stay_h(afternoon).mean() < 0.5 * stay_h(morning).mean()


def test_session_rate_follows_the_profile_rate():
    days, n = 28, 100
    for profile in (Profile.WORKPLACE, Profile.PUBLIC, Profile.HOME):
        p = PROFILES[profile]
        attempts = (20 * p.rate_per_day_weekday + 8 * p.rate_per_day_weekend) / days
        rate = sessions_per_profile_summary(many(profile, connectors=n), connector_count=n, days=days)[
            "sessions_per_connector_day"
        ]
        # Some arrivals are lost to an occupied connector, never more are made.
        assert 0.4 * attempts < rate <= attempts


def test_fleet_returns_in_the_evening_and_leaves_in_the_morning():
    df = many("fleet", connectors=60, days=21)
    p = PROFILES[Profile.FLEET]
    back = local_hour(df["arrival"])
    leave = local_hour(df["departure"])
    assert ((back >= p.return_h_min) & (back <= p.return_h_max + 1 / 60)).all()
    assert ((leave >= p.leave_h_min) & (leave <= p.leave_h_max + 1 / 60)).all()
    assert np.mean(back) == pytest.approx(p.return_h_mean, abs=0.2)
    assert (df["arrival"].dt.day_of_week < 5).mean() > 0.9
    expected_kwh = p.distance_km_mean * p.consumption_kwh_per_km
    assert df["energy_kwh"].mean() == pytest.approx(expected_kwh, rel=0.15)


def test_dst_week_keeps_local_times_of_day():
    start = datetime(2026, 3, 23, tzinfo=AMS)  # DST starts Sunday 2026-03-29
    change = pd.Timestamp(datetime(2026, 3, 29, 12, tzinfo=AMS))
    work = many("workplace", connectors=150, days=14, start=start)
    weekday = work[work["arrival"].dt.day_of_week < 5]
    before, after = weekday[weekday["arrival"] < change], weekday[weekday["arrival"] >= change]
    assert {str(t.utcoffset()) for t in before["arrival"]} == {"1:00:00"}
    assert {str(t.utcoffset()) for t in after["arrival"]} == {"2:00:00"}
    for part in (before, after):
        hist = np.bincount(part["arrival"].dt.hour, minlength=24)
        assert 7 <= hist.argmax() <= 10
    # The same wall-clock shape on both sides of the change (a UTC-fixed model would move
    # the summer week one hour later).
    assert np.median(local_hour(before["arrival"])) == pytest.approx(np.median(local_hour(after["arrival"])), abs=0.25)
    fleet = many("fleet", connectors=150, days=14, start=start)
    back = local_hour(fleet["arrival"])
    summer = (fleet["arrival"] >= change).to_numpy()
    assert np.mean(back[summer]) == pytest.approx(np.mean(back[~summer]), abs=0.15)


def test_other_zones_and_fixed_offsets():
    for tz in (UTC, timezone(timedelta(hours=-5)), ZoneInfo("America/Los_Angeles")):
        df = generate_sessions("workplace", IDS, datetime(2026, 3, 2, 6, 30, tzinfo=tz), 10, 3)
        weekday = df[df["arrival"].dt.day_of_week < 5]
        assert 7 <= np.bincount(weekday["arrival"].dt.hour, minlength=24).argmax() <= 10


def test_summary():
    df = generate_sessions("public", IDS, START, 7, 5)
    s = sessions_per_profile_summary(df, connector_count=16, days=7)
    assert s["sessions"] == len(df)
    assert s["sessions_per_connector_day"] == pytest.approx(len(df) / 112)
    assert s["mean_energy_kwh"] == pytest.approx(df["energy_kwh"].mean())
    assert s["total_energy_kwh"] == pytest.approx(df["energy_kwh"].sum())
    assert s["mean_stay_h"] == pytest.approx(stay_h(df).mean())
    empty = sessions_per_profile_summary(df.iloc[:0], connector_count=16, days=7)
    assert empty["sessions"] == 0 and np.isnan(empty["mean_energy_kwh"])
