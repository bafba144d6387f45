"""``agent-runner trust`` and ``explain`` over the machine's record of sandbox writes, as a
user runs them: a real process, the record in the test's own state directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent_runner.auto.store import FILE_NAME, WriteStore
from agent_runner.auto.written import Entry
from tests.conftest import cli_environment, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path, STIGMER_STATE_DIR=str(tmp_path / "state"))


@pytest.fixture
def ws(tmp_path: Path, env: dict[str, str]) -> Path:
    """A workspace where the sandbox wrote run.sh, notes.txt and node_modules/."""
    root = tmp_path / "ws"
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "run.sh").write_text("echo ran\n")
    (root / "notes.txt").write_text("hi\n")
    real = os.path.realpath(root)
    store = WriteStore(Path(env["STIGMER_STATE_DIR"]) / FILE_NAME)
    store.update(
        lambda written: written.entries.update(
            {
                f"{real}/run.sh": Entry(False, True),
                f"{real}/notes.txt": Entry(False, False),
                f"{real}/node_modules": Entry(True, True),
            }
        )
    )
    return root


def cli(env: dict[str, str], *args: str, cwd: Path):
    return run_cli(*args, env=env, cwd=cwd, timeout=60)


def test_trust_lists_what_the_sandbox_wrote(env, ws):
    done = cli(env, "trust", cwd=ws)
    assert done.returncode == 0
    assert done.stdout.splitlines()[1:] == [
        "  node_modules/\tcode",
        "  notes.txt\tdata",
        "  run.sh\tcode",
        "accept with: agent-runner trust PATH... (or --all)",
    ]
    listed = json.loads(cli(env, "trust", "--json", "--cwd", str(ws), cwd=ws.parent).stdout)
    assert [item["path"] for item in listed] == ["node_modules/", "notes.txt", "run.sh"]
    assert listed[0] == {"path": "node_modules/", "directory": True, "code": True, "note": ""}


def test_explain_sees_the_record(env, ws):
    done = cli(env, "explain", "./run.sh", cwd=ws)
    assert done.stdout == 'auto -> sandbox: "./run.sh" runs run.sh, which the sandbox wrote\n'
    assert cli(env, "explain", "cat notes.txt", cwd=ws).stdout.startswith("auto -> local")


def test_trust_accepts_paths_then_everything(env, ws):
    done = cli(env, "trust", "run.sh", cwd=ws)
    assert (done.returncode, done.stdout) == (0, "accepted: run.sh\n")
    assert cli(env, "explain", "cat run.sh", cwd=ws).stdout.startswith("auto -> local")
    inside = cli(env, "trust", "node_modules/x", cwd=ws)
    assert inside.returncode == 2
    assert "accept node_modules/ instead" in inside.stderr
    assert inside.stderr.count("\n") == 1
    everything = json.loads(cli(env, "trust", "--all", "--json", cwd=ws).stdout)
    assert everything == {"accepted": ["node_modules/", "notes.txt"]}
    assert cli(env, "trust", cwd=ws).stdout.startswith("nothing the sandbox wrote is held back")
    assert cli(env, "explain", "./run.sh", cwd=ws).stdout.startswith("auto -> local")


def test_trust_of_nothing_says_so(env, ws):
    done = cli(env, "trust", "app.py", cwd=ws)
    assert done.stdout.startswith("nothing to accept")
