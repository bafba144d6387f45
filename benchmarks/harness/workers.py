"""Peers run in a throwaway venv, each in a subprocess of it: ``python <driver> --worker NAME
--worker-config JSON --worker-out FILE``. The worker writes ``{"rows", "versions", "error"}``
to FILE, after every row (a worker that times out keeps the rows it measured), and the
parent reads it back. Both sides are here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.config import Config, log
from harness.results import Results, describe

Measure = Callable[[Config, Results], dict[str, str]]
"""Measures one contender into ``results``; returns the versions to report."""


def run_worker(
    script: Path, peer_python: Path, name: str, cfg: Config, timeout: float
) -> dict[str, Any]:
    """Measure one peer in a subprocess of the peer venv: its rows, versions and error.

    The worker saves each row as soon as it has it, so a timeout keeps the rows measured
    until then.
    """
    log(f"--- {name} (peer venv) ---")
    env = {**os.environ, "SWE_REX_LOG_STREAM_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    error = ""
    with tempfile.NamedTemporaryFile(prefix=f"stigmer-bench-{name}-", suffix=".json") as out:
        command = [str(peer_python), str(script), "--worker", name]
        command += ["--worker-config", json.dumps(asdict(cfg)), "--worker-out", out.name]
        process = subprocess.Popen(command, env=env, cwd=cfg.workdir)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:g} s"
            process.terminate()  # SIGTERM: the worker's finally blocks still remove its sandboxes
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        finally:
            if process.poll() is None:
                _stop(process)
        text = Path(out.name).read_text()
    outcome: dict[str, Any] = {"rows": [], "versions": {}, "error": ""}
    if text:
        outcome.update(json.loads(text))
    outcome["error"] = error or outcome["error"] or ("" if code == 0 else f"exit code {code}")
    return outcome


def _stop(process: subprocess.Popen[bytes]) -> None:
    """We were interrupted: let the worker remove its sandboxes, then make sure it ends."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)  # after Ctrl-C it got SIGINT too and is cleaning up
        return
    process.terminate()  # SIGTERM reached only us: pass it on
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_main(measure: Measure, config_json: str, out: str) -> int:
    """Inside the peer venv: measure one peer, write its rows as JSON to ``out``."""
    cfg = Config(**json.loads(config_json))
    results = Results(sink=Path(out))
    versions: dict[str, str] = {}
    error = ""
    try:
        versions = measure(cfg, results)
    except Exception as exc:
        error = describe(exc)
        traceback.print_exc(file=sys.stderr)
    finally:
        Path(out).write_text(
            json.dumps({"rows": results.rows, "versions": versions, "error": error})
        )
    return 0
