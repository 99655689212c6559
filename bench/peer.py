"""The peer simulator (ACN-Sim) for the side-by-side benchmarks: its own virtual environment
(bench/.venv-peer, made on first use from bench/peer-requirements.txt, never part of evflex),
the problem file both tools read, and the subprocess that runs bench/peer_acnsim.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from evflex.sim.scenario import Scenario

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-peer"
REQUIREMENTS = HERE / "peer-requirements.txt"
SCRIPT = HERE / "peer_acnsim.py"
STAMP = VENV / ".installed"


def peer_python() -> Path | str:
    """The peer venv's Python, creating the venv on first use; a message string on failure."""
    py = VENV / "bin" / "python"
    if STAMP.exists() and STAMP.read_text() == REQUIREMENTS.read_text() and py.exists():
        return py
    base = shutil.which("python3.11") or sys.executable
    print(f"peer: creating {VENV.relative_to(HERE.parent)} ({base} -m venv; pip install -r {REQUIREMENTS.name})")
    sys.stdout.flush()
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for cmd in ([base, "-m", "venv", "--clear", str(VENV)], pip + ["-r", str(REQUIREMENTS)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            return f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}"
    STAMP.write_text(REQUIREMENTS.read_text())
    return py


def problem(sc: Scenario, network: str, peer_voltage_v: float) -> dict[str, Any]:
    """The sessions of ``sc`` in ACN-Sim's terms: times in periods from the start, station
    ids the charger ids (one connector each for Caltech; connector ids for the DTU site), each
    EV's limit as the power it reaches in evflex (its current limit, capped by the charger,
    times the peer's EVSE voltage)."""
    cfg, S = sc.simulation, sc.sessions
    from evflex.model import compile_topology

    topo = compile_topology(sc.site)
    dt = cfg.period_s
    arr = np.ceil((S.arrival_s - cfg.start_s) / dt - 1e-9).astype(int)
    dep = np.floor((S.departure_s - cfg.start_s) / dt + 1e-9).astype(int)
    c = S.connector
    cph = topo.charger_phases[c]
    ph = np.where(S.phases > 0, S.phases, cph)
    ev_a = np.fmin(np.fmin(S.max_power_kw * 1000.0 / (topo.voltage_v[c] * ph), S.max_current_a), topo.max_current_a[c])
    ids = list(topo.connector_ids)
    station = [ids[k].rsplit("-", 1)[0] for k in c] if network == "caltech" else [ids[k] for k in c]
    out: dict[str, Any] = {
        "network": network,
        "period_min": dt / 60.0,
        "sessions": [
            {
                "id": str(S.session_id[j]),
                "station": station[j],
                "arrival": int(arr[j]),
                "departure": int(dep[j]),
                "energy_kwh": float(S.energy_kwh[j]),
                "max_kw": float(ev_a[j] * peer_voltage_v / 1000.0),
            }
            for j in range(len(S))
        ],
    }
    if network == "caltech":
        out["voltage_v"] = peer_voltage_v
    else:
        out["stations"] = [
            {"id": i, "max_a": float(a), "min_a": float(lo), "step_a": float(r)}
            for i, a, lo, r in zip(ids, topo.max_current_a, topo.min_current_a, topo.resolution_a)
        ]
        out["voltage_v"] = peer_voltage_v
        out["limit_a"] = float(sc.site.connection_limit_a)
    return out


def run_peer(py: Path, prob: dict[str, Any], algorithm: str, repeats: int, timeout_s: float) -> dict[str, Any]:
    """Run ACN-Sim on ``prob`` in the peer venv; its JSON answer (``seconds``, ``energy_kwh``)."""
    fd, path = tempfile.mkstemp(prefix="evflex-peer-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(prob, f)
        done = subprocess.run(
            [str(py), str(SCRIPT), path, algorithm, str(repeats)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        os.unlink(path)
    if done.returncode != 0:
        raise RuntimeError(f"peer {algorithm} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
