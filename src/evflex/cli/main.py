"""``evflex``: the command line.

Exit codes: 0 ok, 2 bad input (one line per problem on stderr, nothing written),
1 internal error (one line; set ``EVFLEX_DEBUG=1`` for the traceback).

Start-up is part of the interface: ``evflex --help`` must answer at once, so this module
imports only typer and :mod:`evflex.errors` at the top; numpy, pandas, pydantic, plotly and
rich are imported inside the commands that need them. Help is plain text (typer's rich help
formatter alone costs more than the rest of the start-up: it imports markdown and syntax
highlighting).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evflex.errors import NoRoomWarning, ValidationError, problem

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

#: Longest window accepted [d]: ten years.
MAX_DAYS = 3660
#: One line on each :class:`evflex.Strategy`, in its order, keyed by its value: ``evflex
#: strategies`` lists these without importing the controller (numpy); a test holds them
#: to the enum.
STRATEGY_DOCS = {
    "uncontrolled": "every EV at its maximum, limits ignored (the problem)",
    "equal": "equal current for all; round-robin when the limit is tight",
    "edf": "earliest departure first",
    "llf": "least laxity first (slack = time left - time needed)",
    "proportional": "power in proportion to remaining energy",
}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="evflex: EV charging clusters as a reliable flexibility resource.",
)
sessions_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Generate or import charging sessions.")
app.add_typer(sessions_app, name="sessions")


def _say(text: str) -> None:
    """One plain line on stdout (user text is never read as markup)."""
    sys.stdout.write(f"{text}\n")


@functools.cache
def _console(stderr: bool) -> Console:
    """The rich console of stdout or stderr, made on first use (rich is imported then)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _progress(quiet: bool) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        console=_console(True),
        disable=quiet,
        transient=False,
    )


def _summary_table(kpis_list: list[dict]) -> Table:
    """The compact summary, one row per run (columns: :func:`evflex.report.summary.summary_columns`)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from evflex.report.summary import is_violation, summary_cells, summary_columns, summary_title

    t = Table(title=summary_title(kpis_list), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    columns = summary_columns(kpis_list)
    rows = [summary_cells(k, columns) for k in kpis_list]
    for i, (_, header, _) in enumerate(columns):
        width = max([len(header)] + [len(r[i]) for r in rows])
        t.add_column(header, justify="left" if i == 0 else "right", no_wrap=True, min_width=width)
    for k, cells in zip(kpis_list, rows):
        styled = [
            Text(cell, style="bold red" if is_violation(key, k.get(key)) else "")
            for (key, _, _), cell in zip(columns, cells)
        ]
        t.add_row(*styled)
    return t


def _warn(lines: list[str]) -> None:
    """``warning: ...`` lines on stderr, highlighted on a terminal."""
    from rich.text import Text

    for line in lines:
        _console(True).print(Text(f"warning: {line}", style="bold yellow"), soft_wrap=True)


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    strategy: Annotated[str | None, typer.Option(help="Strategy name, or 'all' to compare them all.")] = None,
    sessions: Annotated[Path | None, typer.Option(help="Sessions CSV to use instead of the scenario's.")] = None,
    days: Annotated[float | None, typer.Option(help="Days to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of generated inputs and of the physics noise.")] = None,
    start: Annotated[str | None, typer.Option(help="Start of the window (ISO-8601 with offset).")] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out"),
    report: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Simulate a scenario with one strategy (or all) and write KPIs, time series, per-session
    outcomes and an HTML report."""
    import time

    from evflex.control.interface import Strategy
    from evflex.io.scenario import read_scenario
    from evflex.report.outputs import write_comparison_outputs, write_outputs
    from evflex.report.summary import run_notices
    from evflex.sim.engine import simulate as run

    _check_options(days=days, seed=seed, out=out)
    names = _strategies(strategy)
    sc = read_scenario(
        scenario,
        sessions=sessions,
        days=days,
        seed=seed,
        start=start,
        strategy=None if names is None or len(names) != 1 else names[0],
    )
    strategies = [Strategy(n) for n in names] if names else [sc.simulation.strategy]
    results = []
    with _progress(quiet) as prog, warnings.catch_warnings():
        warnings.simplefilter("ignore", NoRoomWarning)  # said once, as a notice after the run
        for s in strategies:
            task = prog.add_task(s.value, total=sc.simulation.n_steps)

            def tick(done: int, total: int, task=task) -> None:
                prog.update(task, completed=done)

            res = run(sc, s, progress=tick)
            results.append(res)
    t0 = time.perf_counter()
    if len(results) == 1:
        _write_atomic(out, lambda d: write_outputs(results[0], d, report=report))
    else:
        _write_atomic(out, lambda d: write_comparison_outputs(results, d, report=report))
    write_s = time.perf_counter() - t0
    kpis = [r.kpis for r in results]
    table = _summary_table(kpis)
    console = _console(False)
    wide = console.measure(table, options=console.options.update(width=10_000)).maximum
    if wide > console.width:  # wider than the terminal: print it wider rather than drop a column
        from rich.console import Console

        console = Console(width=wide)
    console.print(table)
    _warn(run_notices(kpis))
    where = out / "report.html" if report else out
    k0 = kpis[0]
    truncated = k0.get("sessions_truncated", 0)
    cut = f", {truncated} cut by the window" if truncated else ""
    wall = sum(k.get("sim_wall_s", 0.0) for k in kpis)
    _say(
        f"sessions: {k0.get('sessions', len(results[0].sessions))}{cut} ({sc.sessions_source}); "
        f"simulated in {wall:.1f} s, written in {write_s:.1f} s; results in {where}"
    )


def _check_options(
    *, days: float | None = None, seed: int | None = None, out: Path | None = None, output: Path | None = None
) -> None:
    """Problems with command-line options, named by their flags."""
    import math

    probs = []
    if days is not None and not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        probs.append(problem("--days", f"must be within (0, {MAX_DAYS}]", field="days", value=days))
    if seed is not None and seed < 0:
        probs.append(problem("--seed", "must be >= 0", field="seed", value=seed))
    if out is not None and out.exists() and not out.is_dir():
        probs.append(problem("--out", "is a file, not a directory", field="out", value=str(out)))
    if output is not None and output.is_dir():
        probs.append(problem("--output", "is a directory, not a file", field="output", value=str(output)))
    if probs:
        raise ValidationError(probs)


def _strategies(strategy: str | None) -> list[str] | None:
    from evflex.control.interface import Strategy

    if strategy is None:
        return None
    if strategy == "all":
        return [s.value for s in Strategy]
    valid = [s.value for s in Strategy]
    if strategy not in valid:
        raise ValidationError(
            [
                problem(
                    "--strategy",
                    f"unknown strategy (choose from {', '.join(valid)}, all)",
                    value=strategy,
                    field="strategy",
                )
            ]
        )
    return [strategy]


def _write_atomic(out: Path, write) -> None:
    """Write everything into a fresh sibling directory first; only when that succeeded,
    clear the outputs of an earlier run from ``out`` and move the new ones in. A failure
    while writing leaves ``out`` as it was."""
    import shutil
    import tempfile

    from evflex.control.interface import Strategy
    from evflex.report.outputs import OUTPUT_FILES

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write(tmp)
        out.mkdir(exist_ok=True)
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
        for s in Strategy:
            if (out / s.value / "kpis.json").exists():
                shutil.rmtree(out / s.value)
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                dest = out / f.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    sessions: Annotated[Path | None, typer.Option(help="Sessions CSV to check instead.")] = None,
) -> None:
    """Check a scenario and everything it references, without simulating."""
    from evflex.io.scenario import read_scenario

    sc = read_scenario(scenario, sessions=sessions)
    site = sc.site
    n_conn = sum(c.connectors for c in site.chargers)
    limit_a = site.phase_limit_a if sc.connection_limit is None else float(sc.connection_limit.values.max())
    min_a = min(c.min_current_a for c in site.chargers)
    if limit_a < min_a:
        _warn([f"no EV can ever charge: the connection limit ({limit_a:g} A) is below the {min_a:g} A minimum current"])
    limits = f"{site.phase_limit_a:.4g} A per phase"
    if sc.connection_limit is not None:
        lim = sc.connection_limit.values
        limits += f" (a limit series: {float(lim.min()):.4g} to {float(lim.max()):.4g} A)"
    if site.transformer_kw is not None:
        limits += f" (transformer {site.transformer_kw:g} kW"
        limits += f", primary {site.primary_limit_a:.4g} A per line)" if site.transformer_primary_ll_v else ")"
    if site.max_unbalance_a is not None:
        limits += f", unbalance within {site.max_unbalance_a:g} A"
    _say(f"ok: {site.name}: {len(site.chargers)} chargers, {n_conn} connectors, {limits}; {len(sc.sessions)} sessions")


@app.command()
def strategies() -> None:
    """List the allocation strategies."""
    for name, doc in STRATEGY_DOCS.items():
        _say(f"{name:<13} {doc}")


@sessions_app.command("generate")
def sessions_generate(
    profile: Annotated[str, typer.Option(help="workplace, home, public or fleet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Sessions CSV to write.")],
    connectors: Annotated[int | None, typer.Option(help="Number of connectors (ids C1-1, C2-1, ...).")] = None,
    scenario: Annotated[Path | None, typer.Option(help="Use this scenario's connectors and window.")] = None,
    days: Annotated[float, typer.Option(help="Days to generate.")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    start: Annotated[str, typer.Option(help="First day (ISO-8601 date or time).")] = "2026-03-02",
    timezone: Annotated[str, typer.Option(help="IANA time zone of local times.")] = "Europe/Copenhagen",
) -> None:
    """Write a sessions CSV from a behaviour model (ElaadNL statistics, or a fleet schedule)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from evflex.io.sessions import write_sessions_csv
    from evflex.sim.behaviour import Profile, generate_sessions

    _check_options(days=days, seed=seed, output=output)
    probs = []
    if profile not in [p.value for p in Profile]:
        probs.append(
            problem(
                "--profile",
                f"unknown profile (choose from {', '.join(p.value for p in Profile)})",
                field="profile",
                value=profile,
            )
        )
    if (connectors is None) == (scenario is None):
        probs.append(problem("evflex sessions generate", "give exactly one of --connectors or --scenario"))
    if connectors is not None and connectors < 1:
        probs.append(problem("--connectors", "must be >= 1", field="connectors", value=connectors))
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        probs.append(problem("--timezone", "unknown time zone", field="timezone", value=timezone))
        tz = ZoneInfo("UTC")
    try:
        t0 = datetime.fromisoformat(start)
        t0 = t0 if t0.tzinfo else t0.replace(tzinfo=tz)
    except ValueError:
        probs.append(problem("--start", "not an ISO-8601 date or time", field="start", value=start))
    if probs:
        raise ValidationError(probs)
    if scenario is not None:
        from evflex.io.scenario import read_scenario
        from evflex.model.topology import compile_topology

        sc = read_scenario(scenario, days=days, seed=seed)
        topo = compile_topology(sc.site)
        ids, ph, mx, V = (
            list(topo.connector_ids),
            topo.charger_phases.tolist(),
            topo.max_current_a.tolist(),
            topo.voltage_ln_v,
        )
        volts = topo.voltage_v.tolist()  # line-to-line across a charger between two phases
        t0 = sc.simulation.start.astimezone(sc.simulation.tz)
    else:
        assert connectors is not None
        ids = [f"C{k}-1" for k in range(1, connectors + 1)]
        ph, mx, V = [3] * connectors, [16.0] * connectors, 230.0
        volts = [V] * connectors
    df = generate_sessions(
        profile,
        ids,
        t0,
        days,
        seed,
        connector_phases=ph,
        connector_max_current_a=mx,
        voltage_ln_v=V,
        connector_voltage_v=volts,
    )
    write_sessions_csv(df, output)
    _say(f"wrote {len(df)} {profile} sessions on {len(ids)} connectors to {output}")


@sessions_app.command("import")
def sessions_import(
    file: Annotated[Path, typer.Argument(help="Export to import.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Sessions CSV to write.")],
    format: Annotated[str, typer.Option("--format", help="Format of the export: acn-data.")] = "acn-data",
    scenario: Annotated[Path | None, typer.Option(help="Place sessions on this scenario's connectors.")] = None,
) -> None:
    """Convert a public session export (ACN-Data JSON) to a sessions CSV."""
    from evflex.io.acn import assign_connectors, read_acn_data
    from evflex.io.sessions import write_sessions_csv

    _check_options(output=output)
    if format != "acn-data":
        raise ValidationError(
            [problem("--format", "unknown format (choose from acn-data)", field="format", value=format)]
        )
    df = read_acn_data(file)
    if scenario is not None:
        from evflex.io.scenario import read_scenario
        from evflex.model.topology import compile_topology

        sc = read_scenario(scenario)
        df = assign_connectors(df, list(compile_topology(sc.site).connector_ids))
    write_sessions_csv(df, output)
    skipped = {k: v for k, v in df.attrs.get("skipped", {}).items() if v}
    note = f" (skipped: {', '.join(f'{k} {v}' for k, v in skipped.items())})" if skipped else ""
    _say(f"wrote {len(df)} sessions to {output}{note}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _console(True).print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (warnings print as one ``warning:`` line each
    while it runs)."""
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _run(argv)
    finally:
        warnings.showwarning = previous


def _run(argv: list[str] | None) -> int:
    try:
        rv = app(args=argv, standalone_mode=False)
    except ValidationError as exc:
        for p in exc.problems:
            sys.stderr.write(f"{p}\n")
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # the CLI framework's own usage errors
            show()
            return code
        if os.environ.get("EVFLEX_DEBUG"):
            raise
        sys.stderr.write(
            f"evflex: internal error: {type(exc).__name__}: {exc} (set EVFLEX_DEBUG=1 for the traceback)\n"
        )
        return 1
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())
