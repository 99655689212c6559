"""evflex benchmarks: `make bench` (or `python bench/run.py [--quick] [--only SECTION,...]`).

Prints each figure on one line with its unit, its target where the issue sets one and the
ratio figure/target (below 1 is within a "<=" target, above 1 within a ">=" one). Where two
tools are compared, both run here side by side (one after the other, same sessions, same
machine) and the line "speed-up" is the peer's time over evflex's: absolute times on a shared
machine drift, such ratios hold. Figures go into the README's Performance section with the
command that produced them.

Sections (default: all but dtu-year and large):
  allocation   one controller step, 1,000 connectors on linear rows (1/3-phase mix)
  mixed        one controller step, 1,000 connectors with line-to-line EVSEs, a delta
               primary (phasor rows) and an unbalance limit
  dtu-peer     DTU Risoe month at 5-min steps, ideal chargers: evflex vs ACN-Sim
  caltech-peer Caltech ACN month at 5-min steps: evflex vs ACN-Sim's caltech_acn()
  congested    congested workplace year on the DTU site, every controlled strategy
  cli          `evflex --help` and `evflex strategies` wall time
  outputs      writing a month's outputs (data files, report) against simulating it
  seconds      a day of the DTU site at 1 s steps (2 s activation delays)
  dtu-year     DTU Risoe year at 60 s steps, generated sessions, every strategy
  large        1,000 connectors x 7 days at 60 s steps

ACN-Sim runs in its own virtual environment (bench/.venv-peer, made on first use from
bench/peer-requirements.txt; see bench/peer.py), as a subprocess (bench/peer_acnsim.py).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evflex  # noqa: E402
import peer  # noqa: E402
from evflex.control.allocation import make_controller  # noqa: E402
from sites import (  # noqa: E402
    allocation_snapshots,
    caltech_peer_scenario,
    congested_year_scenario,
    large_site_scenario,
    mixed_site,
)
from sites import dtu_peer_scenario as dtu_peer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Each evflex figure is the best of this many runs: on a shared machine noise only adds time.
REPEATS = 2
#: Sessions the ACN-Sim comparisons cover [days]; shorter with --quick.
PEER_DAYS = 30
#: Print a cProfile top-20 of the evflex runs named here (--profile).
PROFILE: set[str] = set()
SECTIONS = (
    "allocation",
    "mixed",
    "dtu-peer",
    "caltech-peer",
    "congested",
    "cli",
    "outputs",
    "seconds",
    "plan",
    "dtu-year",
    "large",
)
DEFAULT_SECTIONS = SECTIONS[:-2]
#: DTU Risoe: 16 A on three phases of 230 V, as ACN-Sim sees one such EVSE.
DTU_PEER_VOLTAGE_V = 3 * 230.0
#: Caltech: 120/208 V wye, EVSEs line-to-line.
CALTECH_PEER_VOLTAGE_V = 120.0 * math.sqrt(3.0)


def line(name: str, value: float, unit: str, target: float | None = None, at_least: bool = False) -> None:
    text = f"{name:<62} {value:10.3f} {unit}"
    if target is not None:
        op = ">=" if at_least else "<="
        text += f"   target {op} {target:g} {unit}   ratio {value / target:.2f}"
        if (value < target) if at_least else (value > target):
            text += "   MISSED"
    print(text, flush=True)


def best_of(run, repeats: int | None = None):
    """Run ``repeats`` times; the result and the shortest wall time (noise only adds)."""
    best, out = float("inf"), None
    for _ in range(repeats or REPEATS):
        t0 = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t0)
    return out, best


def profiled(name: str, run) -> None:
    """With --profile NAME: one more run of ``run`` under cProfile, top 20 by own time."""
    if name not in PROFILE:
        return
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(20)
    print(f"--- profile: {name} (cProfile, top 20 by own time)")
    print("\n".join(ln for ln in buf.getvalue().splitlines() if ln.strip()))
    print(f"--- end of profile: {name}")


def simulate(sc, strategy: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evflex.simulate(sc, strategy)


# ------------------------------------------------------------------ allocation steps
def step_times(topo, snaps, strat: str) -> list[float]:
    runs = []
    for _ in range(REPEATS):
        ctrl = make_controller(topo, strat)
        ctrl.step(snaps[0])  # warm the caches as a live controller would be
        times = []
        for s in snaps:
            t0 = time.perf_counter()
            ctrl.step(s)
            times.append(time.perf_counter() - t0)
        runs.append(times)
    return min(runs, key=statistics.median)


def bench_allocation(steps: int) -> None:
    topo, snaps = allocation_snapshots(n_connectors=1000, n_feeders=20, steps=steps, seed=7)
    print(
        f"allocation: {topo.n} connectors (mixed 1/3-phase), {topo.m} linear constraint rows "
        f"(3 connection + {topo.m - 3} sub-feeder rows), {steps} congested snapshots"
    )
    for strat in ("llf", "edf", "equal", "proportional"):
        best = step_times(topo, snaps, strat)
        target = 5.0 if strat in ("llf", "edf") else None
        line(f"  one allocation step, {strat}, median", 1e3 * statistics.median(best), "ms", target)
        line(f"  one allocation step, {strat}, p95", 1e3 * float(np.percentile(best, 95)), "ms")


def bench_mixed(steps: int) -> None:
    site = mixed_site(1000, 20, seed=7)
    topo, snaps = allocation_snapshots(1000, 20, steps=steps, seed=7, site=site)
    n_ll = int(np.count_nonzero(topo.line_to_line))
    n_lin = int(np.count_nonzero(topo.row_linear))
    print(
        f"allocation, every row kind: {topo.n} connectors ({n_ll} line-to-line, the rest 1/3-phase "
        f"phase-to-neutral), {topo.m} rows ({topo.m - n_lin} phasor: connection, sub-feeders with "
        f"line-to-line members, delta primary), max_unbalance_a {site.max_unbalance_a:g}, "
        f"{steps} congested snapshots"
    )
    for strat in ("llf", "edf", "equal", "proportional"):
        best = step_times(topo, snaps, strat)
        target = 5.0 if strat in ("llf", "edf") else None  # the floor is set on llf/edf (issues 2 and 5)
        line(f"  one allocation step, {strat}, median", 1e3 * statistics.median(best), "ms", target)
        line(f"  one allocation step, {strat}, p95", 1e3 * float(np.percentile(best, 95)), "ms")

    def prof_run() -> None:
        for strat in ("llf", "equal"):
            ctrl = make_controller(topo, strat)
            for s in snaps:
                ctrl.step(s)

    profiled("mixed", prof_run)


# ------------------------------------------------------------------ side by side with ACN-Sim
def peer_or_none():
    py = peer.peer_python()
    if isinstance(py, str):
        print(f"  ACN-Sim: not available: {py}")
        return None
    return py


def compare(label: str, sc, prob, pairs, peer_repeats: int, py, timeout_s: float) -> None:
    """evflex strategy vs ACN-Sim algorithm, one pair after the other (side by side); ACN-Sim's
    RoundRobin, by far the slowest, runs once."""
    req = float(np.sum(sc.sessions.energy_kwh))
    for strat, algo, algo_name in pairs:
        res, wall = best_of(lambda strat=strat: simulate(sc, strat))
        k = res.kpis
        e_flex = float(k["energy_delivered_kwh"])
        line(f"  {label}: evflex {strat} (simulate, checks included)", wall, "s")
        line(f"  {label}: evflex {strat} energy served", e_flex, f"kWh ({100 * e_flex / req:.2f} %)")
        if algo is None or py is None:
            continue
        try:
            out = peer.run_peer(py, prob, algo, 1 if algo == "rr" else peer_repeats, timeout_s)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"  {label}: ACN-Sim {algo_name}: failed: {exc}")
            continue
        e_peer = float(out["energy_kwh"])
        line(f"  {label}: ACN-Sim {algo_name} (build + run)", out["seconds"], "s")
        line(f"  {label}: ACN-Sim {algo_name} energy served", e_peer, f"kWh ({100 * e_peer / req:.2f} %)")
        line(f"  {label}: speed-up {strat}, ACN-Sim / evflex", out["seconds"] / wall, "x", 20.0, at_least=True)
        diff = e_flex - e_peer
        print(
            f"  {label}: energy served, evflex {strat} - ACN-Sim {algo_name}: {diff:+.2f} kWh "
            f"({100 * diff / max(e_peer, 1e-9):+.3f} %){'   evflex LOWER' if diff < -0.005 else ''}",
            flush=True,
        )
    profiled(label.split(",")[0], lambda: simulate(sc, "llf"))


#: evflex strategy, ACN-Sim algorithm (bench/peer_acnsim.py), its short name on the lines.
PAIRS = (
    ("llf", "llf", "LLF"),
    ("edf", "edf", "EDF"),
    ("equal", "rr", "RR"),
    ("proportional", None, ""),
)
PEER_NAMES = (
    "ACN-Sim LLF = SortedSchedulingAlgo(least_laxity_first), EDF = SortedSchedulingAlgo("
    "earliest_deadline_first), RR = RoundRobin(first_come_first_served), acnportal defaults"
)


def bench_dtu_peer() -> None:
    sc = dtu_peer(ROOT, days=PEER_DAYS)
    print(
        f"DTU Risoe vs ACN-Sim: 16 plugs (8 x 2, three-phase, 0 or 6-16 A in 1 A steps), 63 A a "
        f"phase, no base load, {PEER_DAYS} days at {sc.simulation.period_s / 60:g}-min steps, ideal "
        f"chargers (no delay, no ramp, exact), {len(sc.sessions)} generated workplace sessions as "
        f"three-phase 11 kW EVs ({np.sum(sc.sessions.energy_kwh):.1f} kWh asked); ACN-Sim: one "
        f"FiniteRatesEVSE with those pilots at {DTU_PEER_VOLTAGE_V:g} V (3 x 230 V) per plug, a 63 A "
        "constraint per phase"
    )
    print(f"  {PEER_NAMES}; ACN-Sim LLF and EDF: best of 2 runs")
    py = peer_or_none()
    prob = peer.problem(sc, "dtu", DTU_PEER_VOLTAGE_V)
    compare(f"DTU, {PEER_DAYS} d", sc, prob, PAIRS, peer_repeats=2, py=py, timeout_s=1800)


def bench_caltech_peer() -> None:
    sc = caltech_peer_scenario(ROOT, days=PEER_DAYS)
    print(
        f"Caltech ACN vs ACN-Sim: 54 line-to-line EVSEs (examples/caltech_acn.toml vs "
        f"acnportal caltech_acn(basic_evse=False)), pods, transformer secondary and delta primary, "
        f"{PEER_DAYS} days at {sc.simulation.period_s / 60:g}-min steps, ideal chargers, "
        f"{len(sc.sessions)} generated workplace sessions on the station ids "
        f"({np.sum(sc.sessions.energy_kwh):.1f} kWh asked)"
    )
    print(f"  {PEER_NAMES}; ACN-Sim: one run each")
    py = peer_or_none()
    prob = peer.problem(sc, "caltech", CALTECH_PEER_VOLTAGE_V)
    compare(f"Caltech, {PEER_DAYS} d", sc, prob, PAIRS, peer_repeats=1, py=py, timeout_s=1800)


# ------------------------------------------------------------------ simulations
def bench_congested(days: int) -> None:
    sc = congested_year_scenario(ROOT, days=days, seed=1)
    print(
        f"congested workplace: DTU Risoe (16 plugs, 63 A, office base load), {days} days at "
        f"{sc.simulation.period_s:g} s steps, {len(sc.sessions)} sessions (bench/sites.py)"
    )
    target = 20.0 if days >= 365 else None
    for strat in ("equal", "edf", "llf", "proportional"):
        res, wall = best_of(lambda strat=strat: simulate(sc, strat))
        k = res.kpis
        line(f"  {strat}: simulate (checks included)", wall, "s", target)
        line(f"  {strat}: energy served", k["energy_served_pct"], "%")
        line(f"  {strat}: contactor switch-ons per session (starts), mean", k["switch_ons_per_session_mean"], "starts")
        line(f"  {strat}: contactor switch-ons per session (starts), max", k["switch_ons_per_session_max"], "starts")
        print(
            f"    {k['active_steps']} active steps, {k['controller_calls']} controller calls, "
            f"{1e6 * k['sim_wall_s'] / max(k['active_steps'], 1):.0f} us per active step, "
            f"violations {k['limit_violation_steps']}, transients {k['transient_overshoot_steps']} steps "
            f"({k['transient_overshoot_s']:.0f} s, up to {k['transient_overshoot_max_a']:.2f} A)",
            flush=True,
        )
    profiled("congested", lambda: simulate(sc, "llf"))


def bench_cli() -> None:
    exe = Path(sys.executable).with_name("evflex")
    print(f"command line: {exe.relative_to(ROOT) if exe.is_relative_to(ROOT) else exe}, best of 5 (subprocess)")
    for args, target in ((["--help"], 0.3), (["strategies"], 0.3)):
        _, wall = best_of(lambda args=args: subprocess.run([str(exe), *args], capture_output=True, check=True), 5)
        line(f"  evflex {' '.join(args)}: wall", wall, "s", target)


def bench_outputs(days: int) -> None:
    sc = evflex.read_scenario(ROOT / "examples" / "dtu_risoe.toml", days=days)
    print(
        f"outputs: DTU Risoe example, {days} days at {sc.simulation.period_s:g} s steps, llf: "
        "evflex.write_outputs (kpis.json, timeseries.parquet, sessions.csv, report.html) vs the simulation"
    )
    res, sim_s = best_of(lambda: simulate(sc, "llf"))
    tmp = Path(tempfile.mkdtemp(prefix="evflex-bench-"))
    try:
        _, first_s = best_of(lambda: evflex.write_outputs(res, tmp / "first"), 1)
        _, data_s = best_of(lambda: evflex.write_outputs(res, tmp / "data", report=False))
        _, all_s = best_of(lambda: evflex.write_outputs(res, tmp / "all"))
        size = sum(f.stat().st_size for f in (tmp / "all").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    line("  simulate (checks included)", sim_s, "s")
    line("  write_outputs, first call in the process (imports pyarrow, report)", first_s, "s")
    line("  write_outputs, data files only (report=False)", data_s, "s")
    line("  write_outputs, data files + report.html", all_s, "s")
    line("  output share of simulate + write_outputs", 100 * all_s / (sim_s + all_s), "%")
    line("  output share, first call", 100 * first_s / (sim_s + first_s), "%")
    line("  outputs written", size / 1e6, "MB")


def plan_lp(n_sessions: int, n_steps: int, seed: int = 5):
    """A day-ahead plan of ``n_sessions`` EVs over ``n_steps`` 15-min steps behind three phase
    rows: 1- and 3-phase EVs of 16 or 32 A on rotated phases, stays of 2-10 h, 5-40 kWh, a
    connection of 12 % of the EVs' total rating with a small base load (congested: a third
    of the row-steps at their limit in the plan), day-ahead-like prices (cheap at night,
    dear in the evening)."""
    from evflex.control.scheduling import ChargingLP

    rng = np.random.default_rng(seed)
    S, T = n_sessions, n_steps
    arrival = rng.integers(0, T - 8, S)
    departure = np.minimum(arrival + rng.integers(8, 41, S), T)
    phases = rng.choice([1, 3], S, p=[0.3, 0.7])
    max_a = rng.choice([16.0, 32.0], S)
    coef = np.zeros((3, S))
    first = rng.integers(0, 3, S)
    for s in range(S):
        for k in range(phases[s]):
            coef[(first[s] + k) % 3, s] = 1.0
    hours = np.arange(T) * 0.25
    base = 0.02 * (coef * max_a).sum(axis=1)[:, None] * (1.0 + np.sin(2 * np.pi * (hours - 9.0) / 24.0))[None, :]
    cap = 0.12 * (coef * max_a).sum(axis=1)[:, None] - base
    price = 0.15 + 0.1 * np.sin(2 * np.pi * (hours - 13.0) / 24.0) + 0.01 * rng.standard_normal(T)
    return ChargingLP(
        period_h=0.25,
        arrival_step=arrival,
        departure_step=departure,
        energy_kwh=rng.uniform(5.0, 40.0, S),
        max_current_a=max_a,
        kw_per_a=phases * 230.0 / 1000.0,
        coef_a=coef,
        cap_a=cap,
        price_eur_per_kwh=price,
    )


def bench_plan() -> None:
    from evflex.control.scheduling import solve_plan

    print("planning LP (HiGHS): sessions x 15-min steps, three phase rows, build + solve, best of 3")
    for S, T in ((100, 96), (500, 96), (500, 192), (1000, 96)):
        lp = plan_lp(S, T)
        plan, wall = best_of(lambda lp=lp: solve_plan(lp), 3)
        target = 2.0 if (S, T) == (500, 96) else None
        line(f"  {S} sessions x {T} steps: build + solve ({plan.status})", wall, "s", target)


def bench_seconds(days: float) -> None:
    sc = evflex.read_scenario(ROOT / "examples" / "dtu_risoe.toml", days=days)
    sc = replace(sc, simulation=replace(sc.simulation, period_s=1.0))
    delays = sorted({c.response.activation_delay_s for c in sc.site.chargers})
    print(
        f"1 s steps: DTU Risoe, 16 connectors, {days:g} day(s) from {sc.simulation.start:%Y-%m-%d %a} "
        f"({sc.simulation.n_steps} steps, {len(sc.sessions)} sessions), activation delays {delays} s"
    )
    res, wall = best_of(lambda: simulate(sc, "llf"))
    k = res.kpis
    line("  llf: simulate (checks included)", wall, "s")
    print(
        f"    served {k['energy_served_pct']:.2f} %, {k['active_steps']} active steps, "
        f"{k['controller_calls']} controller calls, violations {k['limit_violation_steps']}",
        flush=True,
    )
    profiled("seconds", lambda: simulate(sc, "llf"))


def bench_dtu_year(strategies: list[str], days: int) -> None:
    sc = evflex.read_scenario(ROOT / "examples" / "dtu_risoe.toml", days=days)
    print(
        f"simulation: DTU Risoe, 16 connectors x {days} days at 60 s steps "
        f"({sc.simulation.n_steps} steps, {len(sc.sessions)} sessions)"
    )
    for strat in strategies:
        res, wall = best_of(lambda strat=strat: simulate(sc, strat))
        k = res.kpis
        line(f"  {strat}: wall (run + checks)", wall, "s", 20.0 if days >= 365 else None)
        print(
            f"    served {k['energy_served_pct']:.2f} %, violations {k['limit_violation_steps']}, "
            f"active steps {k['active_steps']}, {1e6 * k['sim_wall_s'] / max(k['active_steps'], 1):.0f} us/step "
            "(last run)"
        )


def bench_large(days: int, strategy: str) -> None:
    sc = large_site_scenario(n_connectors=1000, n_feeders=20, days=days, seed=3)
    print(
        f"simulation: {sum(c.connectors for c in sc.site.chargers)} connectors x {days} days at 60 s steps, "
        f"{len(sc.site.feeders)} sub-feeders, {len(sc.sessions)} sessions"
    )
    res, wall = best_of(lambda: simulate(sc, strategy))
    k = res.kpis
    line(f"  {strategy}: wall (run + checks)", wall, "s", 30.0 if days >= 7 else None)
    print(
        f"    served {k['energy_served_pct']:.2f} %, violations {k['limit_violation_steps']}, "
        f"active steps {k['active_steps']}, {1e3 * k['sim_wall_s'] / max(k['active_steps'], 1):.2f} ms/step"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short windows, one run each (smoke test)")
    ap.add_argument("--only", default="", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    ap.add_argument("--profile", default="", help="comma-separated of: mixed, DTU, Caltech, congested, seconds")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(DEFAULT_SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    global REPEATS, PEER_DAYS
    REPEATS = 1 if args.quick else REPEATS
    PEER_DAYS = 3 if args.quick else PEER_DAYS
    PROFILE.update(p.strip() for p in args.profile.split(",") if p.strip())
    quick = args.quick
    t_start = time.perf_counter()
    print(
        f"evflex {evflex.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {datetime.now(ZoneInfo('UTC')):%Y-%m-%d}; each evflex figure the best of "
        f"{REPEATS} run(s){' (--quick: short windows)' if quick else ''}"
    )
    runs = {
        "allocation": lambda: bench_allocation(steps=20 if quick else 200),
        "mixed": lambda: bench_mixed(steps=10 if quick else 30),
        "dtu-peer": bench_dtu_peer,
        "caltech-peer": bench_caltech_peer,
        "congested": lambda: bench_congested(days=14 if quick else 365),
        "cli": bench_cli,
        "outputs": lambda: bench_outputs(days=7 if quick else 30),
        "seconds": lambda: bench_seconds(days=1.0),
        "plan": bench_plan,
        "dtu-year": lambda: bench_dtu_year(
            ["llf"] if quick else ["llf", "edf", "equal", "proportional", "uncontrolled"], days=7 if quick else 365
        ),
        "large": lambda: bench_large(days=1 if quick else 7, strategy="llf"),
    }
    for name in SECTIONS:
        if name in chosen:
            t0 = time.perf_counter()
            runs[name]()
            print(f"  [{name}: {time.perf_counter() - t0:.0f} s]", flush=True)
    print(f"bench: {time.perf_counter() - t_start:.0f} s in all")


if __name__ == "__main__":
    main()
