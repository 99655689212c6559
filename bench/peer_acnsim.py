"""The ACN-Sim side of the side-by-side benchmarks, run by the peer venv's Python
(bench/.venv-peer, see bench/peer.py): never imported by evflex or its tests.

    python peer_acnsim.py PROBLEM.json ALGORITHM [REPEATS]

PROBLEM.json (written by bench/peer.py from the same sessions evflex simulates):

    {"network": "dtu" | "caltech", "period_min": 5,
     "stations": [{"id": "C1-1", "max_a": 16, "min_a": 6, "step_a": 1}, ...],  # "dtu" only
     "voltage_v": 690, "limit_a": 63,                      # "dtu" only: 3 x 230 V, per phase
     "sessions": [{"id", "station", "arrival", "departure", "energy_kwh", "max_kw"}, ...]}

``arrival`` and ``departure`` are in periods from the start (ACN-Sim's own time base).
ALGORITHM is ``llf``, ``edf`` (SortedSchedulingAlgo) or ``rr`` (RoundRobin, first come first
served order). Prints one JSON line: ``{"seconds", "energy_kwh", ...}``, ``seconds`` the best
wall time over REPEATS runs of building the network, the events and running the simulator
(imports and reading the file excluded, as for evflex).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from datetime import UTC


def build_network(problem: dict):
    from acnportal.acnsim.models.evse import EVSE, FiniteRatesEVSE
    from acnportal.acnsim.network import ChargingNetwork, Current
    from acnportal.acnsim.network.sites import caltech_acn

    if problem["network"] == "caltech":
        # ACN-Sim's own Caltech ACN: AeroVironment / ClipperCreek EVSEs, pods, transformer.
        # voltage: evflex's 120 V x sqrt(3) line-to-line (ACN-Sim's default rounds it to 208 V).
        return caltech_acn(basic_evse=False, voltage=problem["voltage_v"])
    net = ChargingNetwork()
    ids = [s["id"] for s in problem["stations"]]
    for s in problem["stations"]:
        # A three-phase EVSE as one ACN-Sim load: the same current I on each phase,
        # power I x 3 x 230 V (voltage_v), all at angle 0 so each phase row is the plain sum.
        # Its pilots as evflex's charger takes them: 0, or min_a to max_a in steps of step_a.
        if s.get("step_a"):
            n = int(round((s["max_a"] - s["min_a"]) / s["step_a"]))
            rates = [0.0] + [s["min_a"] + k * s["step_a"] for k in range(n + 1)]
            evse = FiniteRatesEVSE(s["id"], rates)
        else:
            evse = EVSE(s["id"], max_rate=s["max_a"], min_rate=0)
        net.register_evse(evse, problem["voltage_v"], 0)
    for ph in ("L1", "L2", "L3"):
        net.add_constraint(Current(ids), problem["limit_a"], name=ph)
    return net


def build_events(problem: dict):
    from acnportal.acnsim.events import EventQueue, PluginEvent
    from acnportal.acnsim.models.battery import Battery
    from acnportal.acnsim.models.ev import EV

    events = []
    for s in problem["sessions"]:
        # Ideal battery holding exactly the energy asked for (ACN-Sim's own convention for
        # ACN-Data sessions), charging up to the EV's limit.
        batt = Battery(s["energy_kwh"], 0.0, s["max_kw"])
        ev = EV(s["arrival"], s["departure"], s["energy_kwh"], s["station"], s["id"], batt)
        events.append(PluginEvent(s["arrival"], ev))
    return EventQueue(events)


def make_algorithm(name: str):
    from acnportal import algorithms as algs

    if name == "llf":
        return algs.SortedSchedulingAlgo(algs.least_laxity_first)
    if name == "edf":
        return algs.SortedSchedulingAlgo(algs.earliest_deadline_first)
    if name == "rr":
        return algs.RoundRobin(algs.first_come_first_served)
    raise SystemExit(f"unknown algorithm {name!r}")


def run_once(problem: dict, algorithm: str) -> dict:
    from datetime import datetime

    from acnportal.acnsim import Simulator

    t0 = time.perf_counter()
    net = build_network(problem)
    events = build_events(problem)
    sim = Simulator(
        net,
        make_algorithm(algorithm),
        events,
        datetime(2020, 1, 1, tzinfo=UTC),
        period=problem["period_min"],
        verbose=False,
    )
    sim.run()
    seconds = time.perf_counter() - t0
    energy = sum(ev.energy_delivered for ev in sim.ev_history.values())
    requested = sum(ev.requested_energy for ev in sim.ev_history.values())
    return {
        "seconds": seconds,
        "energy_kwh": float(energy),
        "requested_kwh": float(requested),
        "sessions": len(sim.ev_history),
        "steps": int(sim.iteration),
    }


def main() -> None:
    path, algorithm = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    with open(path) as f:
        problem = json.load(f)
    warnings.simplefilter("ignore")
    import acnportal  # noqa: F401  (imported before the clock starts)
    import acnportal.acnsim  # noqa: F401
    import acnportal.algorithms  # noqa: F401

    best = None
    for _ in range(repeats):
        out = run_once(problem, algorithm)
        if best is None or out["seconds"] < best["seconds"]:
            best = out
    assert best is not None
    import numpy
    import pandas

    best["versions"] = {
        "acnportal": _version("acnportal"),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": sys.version.split()[0],
    }
    print(json.dumps(best))


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
