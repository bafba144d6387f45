"""Run the emulator from a shell until Ctrl-C (its containers go with it).

    python -m tests.fakes.daytona --port 0 --snapshot stigmer-dev-tools=stigmer/sandbox-base:bookworm

It prints ``DAYTONA_API_URL=...`` and ``DAYTONA_API_KEY=...`` lines, ready for ``export``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.fakes.daytona.config import DEFAULT_API_KEY, EmulatorConfig
from tests.fakes.daytona.server import DaytonaEmulator


def _snapshot(text: str) -> tuple[str, str]:
    name, separator, image = text.partition("=")
    if not separator or not name or not image:
        raise argparse.ArgumentTypeError(f"expected NAME=IMAGE, got {text!r}")
    return name, image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.daytona", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--snapshot",
        type=_snapshot,
        action="append",
        default=[],
        metavar="NAME=IMAGE",
        help="a snapshot name and the local image behind it (repeatable)",
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument(
        "--minute-seconds", type=float, default=60.0, help="length of an emulated minute"
    )
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        snapshots=dict(args.snapshot),
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        minute_seconds=args.minute_seconds,
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    emulator = DaytonaEmulator(config).start()
    try:
        print(f"DAYTONA_API_URL={emulator.api_url}", flush=True)
        print(f"DAYTONA_API_KEY={emulator.api_key}", flush=True)
        print("daytona emulator running; Ctrl-C to stop", file=sys.stderr, flush=True)
        done.wait()
    finally:
        emulator.stop()
        print("daytona emulator stopped; its containers are removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
