"""The record of sandbox writes: watched around sandboxed commands, kept on disk per
machine, accepted by the user."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from agent_runner.auto import snapshot
from agent_runner.auto.quarantine import BACKGROUND, Quarantine
from agent_runner.auto.store import FILE_NAME, WriteStore
from agent_runner.auto.written import Entry, SandboxWrite
from agent_runner.errors import InvalidSetting


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("print(1)\n")
    return root


@pytest.fixture
def store(tmp_path: Path) -> WriteStore:
    return WriteStore(tmp_path / "state" / FILE_NAME)


def sandboxed(quarantine: Quarantine, act, command: str = "true") -> list[str]:
    """What the session does around a sandboxed command; ``act`` plays the sandbox."""

    async def run() -> list[str]:
        before = await quarantine.before()
        act()
        return await quarantine.after(before, command)

    time.sleep(snapshot.HOT_NS * 1.5 / 1e9)  # what the test set up is older than a tick
    return asyncio.run(run())


def test_what_a_sandboxed_command_wrote_is_recorded_and_named(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    notes = sandboxed(quarantine, lambda: (ws / "run.sh").write_text("touch x\n"))
    assert notes == [
        "sandbox-written, not run on the host until accepted (agent-runner trust): run.sh"
    ]
    assert quarantine.writes() == [SandboxWrite("run.sh", False, True)]
    view = quarantine.policy_view("/usr/bin")
    assert view is not None
    assert view.covering(str(ws / "run.sh")) == "run.sh, which the sandbox wrote"


def test_a_copy_or_none_workspace_is_not_watched(ws, store):
    quarantine = Quarantine(str(ws), tracked=False, store=store)
    assert sandboxed(quarantine, lambda: (ws / "run.sh").write_text("")) == []
    assert quarantine.writes() == []
    assert quarantine.policy_view("/usr/bin") is None


def test_the_reason_names_a_few_and_counts_the_rest(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)

    def act():
        for name in "abcde":
            (ws / f"{name}.sh").write_text("")

    [note] = sandboxed(quarantine, act)
    assert note.endswith(": a.sh, b.sh, c.sh and 2 more")


def test_a_command_that_leaves_processes_running_holds_the_whole_workspace(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    [note] = sandboxed(quarantine, lambda: None, command="sleep 60 &")
    assert BACKGROUND in note
    assert quarantine.writes() == [SandboxWrite(".", True, True, BACKGROUND)]


def test_past_the_bound_the_whole_workspace_is_held(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store, limits=snapshot.Limits(entries=1))
    (ws / "b.txt").write_text("")
    [note] = sandboxed(quarantine, lambda: None)
    assert "all of the workspace counts as sandbox-written" in note
    assert "more than 1 entries" in note
    [held] = quarantine.writes()
    assert (held.path, held.code) == (".", True)


def test_directories_held_as_code_are_not_walked_again(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    sandboxed(quarantine, lambda: (ws / "node_modules" / "x").mkdir(parents=True))
    assert quarantine.writes() == [SandboxWrite("node_modules/", True, False)]
    # Data only: the directory is still walked, and code written into it later is seen.
    sandboxed(quarantine, lambda: (ws / "node_modules" / "x" / "index.js").write_text(""))
    assert [w.path for w in quarantine.writes()] == ["node_modules/", "node_modules/x/index.js"]


def test_the_record_outlives_the_process_and_drops_what_is_gone(ws, store, tmp_path):
    quarantine = Quarantine(str(ws), tracked=True, store=store)

    def act():
        (ws / "run.sh").write_text("")
        (ws / "tmp.sh").write_text("")

    sandboxed(quarantine, act)
    path = store.path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(path.read_text())["written"]) == {
        str(ws.resolve() / "run.sh"),
        str(ws.resolve() / "tmp.sh"),
    }
    (ws / "tmp.sh").unlink()
    later = Quarantine(str(ws), tracked=True, store=WriteStore(path))
    assert later.writes() == [SandboxWrite("run.sh", False, True)]


def test_an_acceptance_elsewhere_applies_at_once(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    sandboxed(quarantine, lambda: (ws / "run.sh").write_text(""))
    assert quarantine.policy_view(None) is not None
    other = Quarantine(str(ws), tracked=False, store=WriteStore(store.path))  # agent-runner trust
    assert other.accept() == ["run.sh"]
    assert quarantine.policy_view(None) is None


def test_accepting_paths_directories_and_everything(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)

    def act():
        (ws / "run.sh").write_text("")
        (ws / "lib").mkdir()
        (ws / "lib" / "x.py").write_text("")
        (ws / "app.py").write_text("print(2)\n")

    sandboxed(quarantine, act)
    assert [w.path for w in quarantine.writes()] == ["app.py", "lib/", "run.sh"]
    with pytest.raises(InvalidSetting, match="accept lib/ instead"):
        quarantine.accept(["lib/x.py"])
    assert quarantine.accept(["run.sh", str(ws / "lib")]) == ["run.sh", "lib/"]
    assert quarantine.accept(["nothing-there"]) == []
    assert quarantine.accept() == ["app.py"]
    assert quarantine.writes() == []


def test_a_workspace_held_whole_is_accepted_whole(ws, store):
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    sandboxed(quarantine, lambda: None, command="nohup ./server")
    with pytest.raises(InvalidSetting, match="accept the workspace instead"):
        quarantine.accept(["app.py"])
    assert quarantine.accept() == ["the workspace"]


def test_an_unwritable_store_keeps_the_record_in_memory(ws, tmp_path, caplog):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory should be")
    store = WriteStore(blocked / "state" / FILE_NAME)
    quarantine = Quarantine(str(ws), tracked=True, store=store)
    with caplog.at_level(logging.WARNING):
        sandboxed(quarantine, lambda: (ws / "run.sh").write_text(""))
    assert "tracked in this process only" in caplog.text
    assert quarantine.writes() == [SandboxWrite("run.sh", False, True)]
    assert quarantine.policy_view(None) is not None


def test_the_default_store_follows_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("STIGMER_STATE_DIR", str(tmp_path / "here"))
    assert WriteStore.default().path == tmp_path / "here" / FILE_NAME
    assert WriteStore.default() is WriteStore.default()


def test_an_entry_is_plain_data_on_disk():
    assert Entry(True, False, "x").to_dict() == {"directory": True, "code": False, "note": "x"}
