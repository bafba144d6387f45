"""Sandbox command latency: ours against raw docker-py, llm-sandbox, SWE-ReX and epicbox.

    .venv/bin/python benchmarks/sandbox_latency.py [--json results.json] [--quick]

Method
------
* Same image, same machine, one run. Every contender starts its sandboxes from the same
  local image (default ``stigmer/sandbox-base:bookworm`` from ``scripts/build-base-image.sh``,
  run here when the tag is missing). SWE-ReX needs its server inside the sandbox, so it gets
  a derived image (``benchmarks/peers/swerex.Dockerfile``: that image plus a venv holding the
  same swe-rex version as the client), built here when missing or stale.
* Peers run in a throwaway venv (``~/.cache/stigmer-bench/venv`` or ``--peer-venv``), created
  and cached on first use, each in a subprocess of that venv running this same file with
  ``--worker NAME``; their dependencies never touch the project venv. Ours runs in the
  project's interpreter. Contenders run one after the other, never at the same time.
* Rows (all timed with ``time.perf_counter`` around the library's own public calls):
  ``warm``: one ``echo hi`` in an already-started sandbox, after a first command;
  ``20 sequential``: 20 ``echo hi`` in an already-started sandbox, total;
  ``cold``: new sandbox + ``echo hi`` + close/remove, total;
  ``8 concurrent``: 8 new sandboxes at once; per round, the time until the slowest of the 8
  has the output of ``echo hi`` (sandboxes are closed afterwards, untimed);
  ``memory``: growth of the runner's RSS (the benchmark process and its children, such as
  docker CLI clients a library keeps running) per open idle session, over ``--sessions``
  (10) sessions that each ran one command; the sandboxes' own memory is not counted.
  Medians, plus p90 when a row has at least 5 samples.
* Warm-up: warm rows run 5 unmeasured commands first; cold rows one unmeasured round
  (first container of a run, lazily created clients), except llm-sandbox's, whose rounds
  take 10 s and whose warm rows already warmed its client and image; concurrent rows come
  after the same contender's cold rows.
* Interleaving where practical: variants that share a process alternate round by round
  (docker-py cold on bridge vs. network none; SWE-ReX ``execute`` vs. its bash session).
* Settling: cold and concurrent rounds are ``--settle`` s apart, so one round's cleanup
  does not land in the next. With a warm pool (ours), the next round waits until the pool
  has refilled, which measures the pool in the regime it is built for (sessions arriving
  slower than it refills) and says so in the row.
* Cleanup: every container carries the label ``stigmer.bench=<run id>`` where the library
  lets us set labels (docker-py, llm-sandbox, SWE-ReX); epicbox names its containers
  ``epicbox-*``; ours are closed by the runner and swept by the labels of the backend. A
  sweep removes whatever is left when the run ends, errors and Ctrl-C included.
* A contender (or single row) that fails is reported as skipped with the reason, so the
  others are still measured. A ``host bash`` row (plain subprocess) gives the floor.

Code
----
This file is the driver: arguments, the image and the peer venv, one contender after the
other, the report. Each contender is a module of ``benchmarks/peers/`` (its quirks, and
what is done about them, open the module); what they share (timing loops, rows and their
statistics, memory, the worker protocol, clean-up, the report) is ``benchmarks/harness/``.
Both are imported from this file's directory, in the project venv and in the peer venv.

Takes about 4-5 minutes with the defaults on 2 CPUs (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, in the project venv and
# in the peer venv alike (workers are started with this file's absolute path).
from harness.cleanup import docker_client, sweep
from harness.config import Config, log
from harness.report import render
from harness.results import Results, describe
from harness.workers import run_worker, worker_main
from peers import PEERS, host, measure_peer, ours, swerex

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
DEFAULT_IMAGE = "stigmer/sandbox-base:bookworm"
DEFAULT_PEER_VENV = Path.home() / ".cache" / "stigmer-bench" / "venv"
PEER_PACKAGES = ["llm-sandbox[docker]", "swe-rex", "aiohttp", "epicbox", "docker"]


def ensure_base_image(image: str) -> dict[str, str]:
    """The image every contender uses; built with the project script if it is the default."""
    import docker

    client = docker_client()
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        script = ROOT / "scripts" / "build-base-image.sh"
        if image != DEFAULT_IMAGE or not script.exists():
            raise SystemExit(f"image {image} is not present; build or load it first") from None
        log(f"{image} is missing; building it with {script.relative_to(ROOT)}")
        subprocess.run([str(script), image], check=True, stdout=subprocess.DEVNULL)
        found = client.images.get(image)
    size = found.attrs.get("Size", 0) / 1e6
    return {"image": image, "image_id": found.id[:19], "image_size": f"{size:.0f} MB"}


def ensure_peer_venv(path: Path, refresh: bool) -> Path:
    """A venv with the peers, outside the project; installed once, then reused."""
    python = path / "bin" / "python"
    marker = path / ".stigmer-bench-packages"
    wanted = "\n".join(PEER_PACKAGES)
    if python.exists() and not refresh and marker.exists() and marker.read_text() == wanted:
        return python
    log(f"installing the peers into {path}: {' '.join(PEER_PACKAGES)}")
    if not python.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    upgrade = ["--upgrade"] if refresh else []
    pip = [str(python), "-m", "pip", "install", "-qq"]
    subprocess.run([*pip, *upgrade, *PEER_PACKAGES], check=True)
    marker.write_text(wanted)
    return python


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="image every contender uses")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    parser.add_argument("--refresh-peers", action="store_true", help="upgrade the peer venv")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["host", "ours", *PEERS],
        help="measure only these contenders (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=30, help="warm rows (default 30)")
    parser.add_argument("--seq-rounds", type=int, default=5, help="20-sequential rows")
    parser.add_argument("--cold-rounds", type=int, default=7, help="cold rows")
    parser.add_argument("--slow-cold-rounds", type=int, default=3, help="llm-sandbox defaults")
    parser.add_argument("--concurrent-rounds", type=int, default=3, help="8-concurrent rows")
    parser.add_argument("--concurrency", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=10, help="idle sessions, memory row")
    parser.add_argument("--settle", type=float, default=0.5, help="s between cold rounds")
    parser.add_argument("--worker-timeout", type=float, default=300.0)
    parser.add_argument("--quick", action="store_true", help="few rounds, to try the script")
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seq_rounds, args.cold_rounds = 5, 2, 2
        args.slow_cold_rounds, args.concurrent_rounds, args.sessions = 1, 1, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.worker:
        return worker_main(measure_peer(args.worker), args.worker_config, args.worker_out)

    started = time.perf_counter()
    only = set(args.only or ["host", "ours", *PEERS])
    image_meta = ensure_base_image(args.image)
    workdir = tempfile.mkdtemp(prefix="stigmer-bench-")
    os.chmod(workdir, 0o755)  # the sandbox user (never root) must be able to enter it
    cfg = Config(
        image=args.image,
        run_id=f"run-{uuid.uuid4().hex[:10]}",
        rounds=args.rounds,
        seq_rounds=args.seq_rounds,
        cold_rounds=args.cold_rounds,
        slow_cold_rounds=args.slow_cold_rounds,
        concurrent_rounds=args.concurrent_rounds,
        concurrency=args.concurrency,
        sessions=args.sessions,
        settle=args.settle,
        workdir=workdir,
    )
    results = Results()
    versions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    log(f"run {cfg.run_id}: image {cfg.image} ({image_meta['image_id']})")
    try:
        if "host" in only:
            host.measure(cfg, results)
        if "ours" in only:
            log("--- ours (project interpreter) ---")
            try:
                versions.update(asyncio.run(ours.measure(cfg, results)))
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                skipped["ours"] = describe(error)
            finally:
                sweep(cfg)
        peers = [name for name in PEERS if name in only]
        peer_python = None
        if peers:
            try:
                peer_python = ensure_peer_venv(args.peer_venv, args.refresh_peers)
            except Exception as error:
                for name in peers:
                    skipped[name] = f"peer venv: {describe(error)}"
        for name in peers if peer_python is not None else []:
            assert peer_python is not None
            if name == "swe-rex":
                try:
                    swerex.ensure_image(peer_python, cfg.image, cfg.swerex_image)
                except Exception as error:
                    skipped[name] = f"building {cfg.swerex_image}: {describe(error)}"
                    continue
            outcome = run_worker(SCRIPT, peer_python, name, cfg, args.worker_timeout)
            results.rows.extend(outcome["rows"])
            versions.update(outcome["versions"])
            if outcome["error"]:
                skipped[name] = outcome["error"]
            sweep(cfg)
    finally:
        left = sweep(cfg)
        if left:
            log(f"removed {left} leftover container(s) of run {cfg.run_id}")
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "docker": docker_client().version().get("Version", "?"),
            "python": platform.python_version(),
            **image_meta,
            "versions": versions,
            "duration_s": time.perf_counter() - started,
            "run_id": cfg.run_id,
            "config": asdict(cfg),
        },
        "rows": results.rows,
        "skipped": skipped,
    }
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        if "--worker" not in sys.argv:
            log("interrupted; containers of this run were removed")
        raise SystemExit(130) from None
