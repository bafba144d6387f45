"""What an AUTO session's two shells share, and what of the sandbox's side the host does
not take (variables that could run code, a directory reached through a link)."""

from __future__ import annotations

import os

from agent_runner.backends.base import ShellState
from agent_runner.modes import ExecutionMode
from agent_runner.shared_state import SharedState


def state(cwd: str, **env: str) -> ShellState:
    return ShellState(cwd, env)


def test_variables_the_sandbox_set_reach_the_host_only_as_plain_data(tmp_path):
    shared = SharedState(str(tmp_path))
    carried = shared.record(
        ExecutionMode.SANDBOX,
        state("/workspace", KEEP="1"),
        state("/workspace", KEEP="1", FOO="bar", BASH_ENV="./plant.sh", LD_PRELOAD="./x.so"),
    )
    assert carried.changes == {"FOO": "bar"}
    assert carried.notes() == [
        "not carried to the host: BASH_ENV (shell start-up), LD_PRELOAD (loader)"
    ]
    assert shared.variables == {"FOO": "bar"}  # a host shell opened later gets no more
    assert shared.held == {
        "BASH_ENV": ("./plant.sh", "shell start-up"),
        "LD_PRELOAD": ("./x.so", "loader"),
    }
    assert shared.accept(["LD_PRELOAD"]) == {"LD_PRELOAD": "./x.so"}
    assert set(shared.held) == {"BASH_ENV"}


def test_the_host_side_is_not_filtered(tmp_path):
    shared = SharedState(str(tmp_path))
    carried = shared.record(
        ExecutionMode.LOCAL, state(str(tmp_path)), state(str(tmp_path), EDITOR="vim")
    )
    assert (carried.changes, carried.held) == ({"EDITOR": "vim"}, {})


def test_the_host_does_not_follow_the_sandbox_through_a_link_out_of_the_workspace(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "real").mkdir(parents=True)
    (workspace / "up").symlink_to(tmp_path)
    shared = SharedState(str(workspace))
    carried = shared.record(ExecutionMode.SANDBOX, state("/workspace"), state("/workspace/up"))
    assert carried.cwd_held == "up"
    assert "does not follow into up" in carried.notes()[0]
    assert shared.cwd_for(ExecutionMode.LOCAL) is None
    shared.record(ExecutionMode.SANDBOX, state("/workspace"), state("/workspace/real"))
    assert shared.cwd_for(ExecutionMode.LOCAL) == os.path.join(workspace, "real")
