"""The image contract as a checklist: what ``agent-runner image check IMAGE`` verifies.

The contract is written down in ``docs/sandbox/README.md`` ("The image contract"): bash; a
non-root uid (any uid, not only one in ``/etc/passwd``) that can write ``/workspace``;
``sleep`` to hold the container; python3 >= 3.8 for the fast path (else a warning: each
command then takes the slow path). pip is recommended (custom requirements need it). A
tier adds its tools, each of which must answer ``--version``.

This module only knows what to ask and how to judge the answers; a :class:`Probe` asks
them in a container started the way the runner starts sandboxes (the Docker backend's
``probe`` module), so the check cannot pass on an image the runner would fail on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "warn", "fail", "skip"]
FAST_PATH_PYTHON = (3, 8)

BASIC_TOOLS = (
    ("python3", "python3 --version"),
    ("pip", "pip --version"),
    ("node", "node --version"),
    ("npm", "npm --version --logs-max=0"),
    ("git", "git --version"),
    ("curl", "curl --version"),
    ("jq", "jq --version"),
)
FULL_TOOLS = (
    *BASIC_TOOLS,
    ("gcc", "gcc --version"),
    ("make", "make --version"),
    ("aws", "aws --version"),
    ("gcloud", "gcloud --version"),
    ("az", "az version"),
    ("kubectl", "kubectl version --client"),
    ("helm", "helm version"),
    ("terraform", "terraform version"),
    ("pulumi", "pulumi version"),
    ("go", "go version"),
    ("docker", "docker --version"),
    ("docker buildx", "docker buildx version"),
    ("docker compose", "docker compose version"),
    ("gh", "gh --version"),
    ("yq", "yq --version"),
    ("tkn", "tkn version"),
)
TOOLS = {"basic": BASIC_TOOLS, "full": FULL_TOOLS}
"""What each tier promises (sandbox/README.md); the full tier's Dockerfile runs the same."""


@dataclass(frozen=True)
class Item:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str
    required: bool = True


@dataclass(frozen=True)
class Checklist:
    image: str
    image_id: str
    size: int
    tier: str | None
    items: tuple[Item, ...]

    @property
    def failed(self) -> list[Item]:
        return [item for item in self.items if item.status == "fail" and item.required]

    @property
    def passed(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for i in self.items if i.status == s) for s in ("ok", "warn", "fail")}


class Probe(Protocol):
    """A container of the image under check, started as the runner would start a sandbox
    (read-only root, no capabilities, a non-root uid, tmpfs ``/workspace``) but holding on
    with ``sleep infinity``. Blocking."""

    uid: int
    """The uid the commands run as: non-root, and not one the image defines."""

    def running(self) -> bool:
        """The container still runs (``sleep infinity`` holds it)."""
        ...

    def run(self, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` as :attr:`uid` in ``/workspace``: exit status and output."""
        ...


def contract_items(probe: Probe, tier: str | None) -> list[Item]:
    """Every item of the contract (and ``tier``'s tools), asked of ``probe``."""
    if not probe.running():
        reason = "not checked: the container did not stay up"
        return [
            Item("sleep", "fail", "the container would not stay up on `sleep infinity`"),
            *(Item(name, "skip", reason) for name in ("bash", "workspace", "python3", "pip")),
        ]
    code, bash = probe.run(["bash", "-c", 'printf "%s\\n" "$BASH_VERSION"'])
    shell = "bash" if code == 0 else "sh"
    items = [
        Item("sleep", "ok", "`sleep infinity` holds the container"),
        Item("bash", "ok", f"bash {bash.strip()}")
        if code == 0
        else Item("bash", "fail", "no bash: every command runs as `bash -c`"),
        _workspace(probe, shell),
        _python(probe),
        _pip(probe),
    ]
    tools = TOOLS.get(tier or "", ())
    promised = {name for name, _ in tools}
    for index, item in enumerate(items):
        if item.name in promised and item.status == "warn":  # the tier promises it
            items[index] = Item(item.name, "fail", f"{item.detail} (the {tier} tier has it)")
    for name, command in tools:
        if name not in ("python3", "pip"):  # checked above, with the version
            items.append(_tool(probe, shell, name, command))
    if not probe.running():
        items[0] = Item("sleep", "fail", "the container stopped: `sleep infinity` does not hold it")
    return items


def runner_item(exit_code: int | None, output: str, fast: bool) -> Item:
    """The last item: a command really ran through agent-runner on the image."""
    if exit_code == 0:
        path = "fast path: the executor runs it" if fast else "slow path: one docker exec each"
        return Item("runs", "ok", f"a command ran through agent-runner ({path})")
    return Item("runs", "fail", f"agent-runner could not run a command on it: {output}")


def _workspace(probe: Probe, shell: str) -> Item:
    probe_file = "/workspace/.stigmer-check"
    code, output = probe.run([shell, "-c", f"touch {probe_file} && rm -f {probe_file}"])
    if code == 0:
        return Item("workspace", "ok", f"uid {probe.uid} (no passwd entry) can write /workspace")
    return Item("workspace", "fail", f"uid {probe.uid} cannot write /workspace: {_last(output)}")


def _python(probe: Probe) -> Item:
    code, output = probe.run(
        ["python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]
    )
    version = output.strip()
    if code != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        return Item(
            "python3",
            "warn",
            "no python3: commands take the slow path (one docker exec each, tens of ms)",
            required=False,
        )
    major, minor, _ = (int(part) for part in version.split("."))
    if (major, minor) < FAST_PATH_PYTHON:
        return Item(
            "python3",
            "warn",
            f"python3 {version} is older than 3.8: commands take the slow path",
            required=False,
        )
    return Item("python3", "ok", f"python3 {version}: commands take the fast path")


def _pip(probe: Probe) -> Item:
    code, output = probe.run(["python3", "-m", "pip", "--version"])
    if code != 0:
        return Item(
            "pip", "warn", "no pip: --requirements cannot install packages on it", required=False
        )
    return Item("pip", "ok", output.split(" from ")[0].strip(), required=False)


def _tool(probe: Probe, shell: str, name: str, command: str) -> Item:
    script = f'out=$(HOME=/tmp/stigmer-check-home {command} 2>&1) || exit $?; echo "$out"'
    code, output = probe.run([shell, "-c", script])
    if code != 0:
        return Item(name, "fail", f"`{command}` failed ({code}): {_last(output)}")
    return Item(name, "ok", _first(output))


def _first(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0][:100].rstrip() if lines else "(no output)"


def _last(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
