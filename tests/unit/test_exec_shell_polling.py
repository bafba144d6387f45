"""The exec path's wait for a command's end, against the engine's answers in the order the
engine gives them: an exec that was started is not running yet for a moment."""

import itertools

import pytest

from agent_runner.backends.docker import exec_shell
from agent_runner.backends.docker.exec_shell import ExecShell
from agent_runner.errors import SandboxUnavailable

UNSTARTED = {"Running": False, "ExitCode": None, "Pid": 0}
RUNNING = {"Running": True, "ExitCode": None, "Pid": 42}


class Answers:
    """An engine whose ``exec_inspect`` answers from a list, counting the questions."""

    def __init__(self, answers):
        self._answers = iter(answers)
        self.asked = 0

    async def api(self):
        return self

    async def call(self, function, *args, **kwargs):
        return function(*args, **kwargs)

    def exec_inspect(self, exec_id):
        self.asked += 1
        return next(self._answers)


def shell_on(engine) -> ExecShell:
    return ExecShell(engine, sandbox=None, env={})


async def test_an_exec_not_started_yet_is_not_taken_for_ended(monkeypatch):
    monkeypatch.setattr(exec_shell, "POLL_SECONDS", 0)
    ended = {"Running": False, "ExitCode": 3, "Pid": 42}
    engine = Answers([UNSTARTED, UNSTARTED, RUNNING, RUNNING, ended, ended])
    shell = shell_on(engine)
    await shell._until_exited("exec")
    assert engine.asked == 5
    assert await shell._exit_code("exec") == 3


async def test_an_exec_the_engine_never_starts_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(exec_shell, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(exec_shell, "START_SECONDS", 0.2)
    shell = shell_on(Answers(itertools.repeat(UNSTARTED)))
    with pytest.raises(SandboxUnavailable, match="did not start"):
        await shell._until_exited("exec")


async def test_a_running_exec_is_waited_for_however_long_it_runs(monkeypatch):
    monkeypatch.setattr(exec_shell, "POLL_SECONDS", 0)
    monkeypatch.setattr(exec_shell, "START_SECONDS", 0)
    engine = Answers([RUNNING] * 50 + [{"Running": False, "ExitCode": 0, "Pid": 42}])
    await shell_on(engine)._until_exited("exec")
    assert engine.asked == 51
