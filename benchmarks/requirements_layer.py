"""The cost of custom requirements: the first call builds the layer, later calls find it.

Each round writes a requirements file no earlier round used (``six`` pinned, plus a
comment that makes its bytes, and so the layer, new), then times in one process and loop:

- ``first``: ``execute_command(..., requirements=FILE)`` in SANDBOX mode: resolve the image,
  build the layer (pip downloads ``six`` from PyPI through the host's CA bundle), start a
  sandbox on it, run ``python3 -c 'import six'``;
- ``cached``: the same call again: the layer is found by its hash, nothing is built;
- ``plain``: the same command without requirements, on the base image: the floor.

Every call is a fresh ``execute_command`` (a new Runner, as each ``agent-runner exec``
is), so the three differ only in the layer. The round's layer is removed afterwards
(only the layers built for this run's own file are ever removed).

    .venv/bin/python benchmarks/requirements_layer.py --image stigmer/agent-sandbox:local
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from agent_runner import Settings, execute_command

COMMAND = "python3 -c 'import six'"


async def timed(settings: Settings, cwd: Path, requirements: Path | None) -> float:
    started = time.perf_counter()
    result = await execute_command(
        COMMAND, mode="sandbox", cwd=cwd, requirements=requirements, settings=settings
    )
    elapsed = (time.perf_counter() - started) * 1000
    if result.exit_code != (0 if requirements else 1):
        raise RuntimeError(f"unexpected result: {result.exit_code} {result.stderr[-300:]}")
    return elapsed


def remove_layers(requirements: Path) -> None:
    """Remove the layers built for ``requirements`` (this run's own file), and no other."""
    import docker

    api = docker.APIClient(version="auto")
    for found in api.images(filters={"label": f"stigmer.layer.requirements={requirements}"}):
        for tag in found["RepoTags"] or [found["Id"]]:
            api.remove_image(tag)
    api.close()


async def measure(image: str, rounds: int) -> dict[str, list[float]]:
    settings = Settings.defaults(
        mode="sandbox", sandbox_image=image, auto_pull=False, sandbox={"workspace": "none"}
    )
    timings: dict[str, list[float]] = {"first": [], "cached": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="stigmer-bench-") as directory:
        workspace = Path(directory)
        await timed(settings, workspace, None)  # warm the engine and the image's pages
        for _ in range(rounds):
            requirements = workspace / "requirements.txt"
            requirements.write_text(f"six==1.16.0\n# round {uuid.uuid4().hex}\n")
            timings["first"].append(await timed(settings, workspace, requirements))
            timings["cached"].append(await timed(settings, workspace, requirements))
            timings["plain"].append(await timed(settings, workspace, None))
            remove_layers(requirements)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="stigmer/agent-sandbox:local")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.image, args.rounds))
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}")
    print(f"# {args.image}, {args.rounds} rounds, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'row':<52} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    rows = {
        "first call (builds the layer)": timings["first"],
        "second call, same file (layer found, no build)": timings["cached"],
        "same command without requirements (base image)": timings["plain"],
    }
    for name, samples in rows.items():
        print(
            f"{name:<52} {statistics.median(samples):>10.0f} "
            f"{min(samples):>8.0f} {max(samples):>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
