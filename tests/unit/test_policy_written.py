"""Rule sandbox-written: a local command goes to the sandbox when it would run what the
session's sandbox wrote on the host (many command shapes, one record each)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_runner.auto.written import Entry, View, Written
from agent_runner.config import ExecutionMode
from agent_runner.policy import WRITTEN, decide, leaves_processes
from tests.unit.test_policy_corpus import ROWS, WORKSPACE


class Rule:
    def __init__(self, prefix: str, mode: str) -> None:
        self.prefix, self.mode, self.examples = prefix, mode, (prefix,)


class Auto:
    def __init__(self, *rules: Rule, default: str = "local") -> None:
        self.default, self.rules = default, rules


def record(workspace: Path, *paths: str, note: str = "") -> Written:
    """A record of ``paths`` (relative; a trailing / is a directory the sandbox created)."""
    entries = {}
    for path in paths:
        directory = path.endswith("/")
        name = path.rstrip("/")
        code = directory or os.path.splitext(name)[1] not in (".json", ".txt", ".csv")
        entries[os.path.join(os.path.realpath(workspace), name)] = Entry(directory, code, note)
    return Written(entries)


def decision(workspace: Path, command: str, *paths: str, cwd: Path | None = None, **options):
    path = options.pop("path", "/usr/bin:/bin")
    view = View(record(workspace, *paths), str(workspace), path)
    return decide(
        command,
        cwd=cwd or workspace,
        workspace=workspace,
        sandbox_written=view,
        **options,
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git" / "hooks").mkdir(parents=True)
    return root


SANDBOXED = [
    # runs a file the sandbox wrote
    (["run.sh"], "./run.sh", '"./run.sh" runs run.sh, which the sandbox wrote'),
    (["run.sh"], "bash run.sh", '"bash run.sh" runs run.sh, which the sandbox wrote'),
    (["run.sh"], "sh -x run.sh arg", "runs run.sh, which the sandbox wrote"),
    (["run.sh"], ". run.sh", '". run.sh" sources run.sh, which the sandbox wrote'),
    (["run.sh"], "source ./run.sh", "sources run.sh, which the sandbox wrote"),
    (["run.sh"], "sh < run.sh", "runs run.sh, which the sandbox wrote"),
    (["run.sh"], "bash -s < run.sh", "runs run.sh, which the sandbox wrote"),
    (["run.sh"], "cat run.sh | bash", "runs run.sh, which the sandbox wrote"),
    (["run.sh"], "timeout 5 ./run.sh", '"./run.sh" runs run.sh'),
    (["run.sh"], "env A=1 nohup ./run.sh", '"./run.sh" runs run.sh'),
    (["run.sh"], "bash -c './run.sh --x'", "runs run.sh, which the sandbox wrote"),
    (["run.sh"], "ls && cd sub && ../run.sh", '"../run.sh" runs run.sh'),
    (["run.sh"], "find . -name x -exec ./run.sh {} \\;", "runs run.sh"),
    (["rc"], "bash --rcfile rc -i", '"bash --rcfile rc -i" sources rc, which the sandbox wrote'),
    (["tool/"], "tool/bin/x", "runs tool/bin/x, in tool/, which the sandbox created"),
    (["data.json"], "./data.json", "runs data.json, which the sandbox wrote"),
    (["x.py"], "python x.py", '"python x.py" runs x.py, which the sandbox wrote'),
    (["x.py"], "python3 -u x.py", "runs x.py, which the sandbox wrote"),
    (["mod.py"], "python -m mod", '"python -m mod" runs mod.py, which the sandbox wrote'),
    (["pkg/"], "python3 -m pkg.cli", "runs pkg/, which the sandbox created"),
    (["x.js"], "node x.js", '"node x.js" runs x.js, which the sandbox wrote'),
    (["x.pl"], "perl x.pl", "runs x.pl, which the sandbox wrote"),
    (["setup.py"], "python setup.py develop", "runs setup.py, which the sandbox wrote"),
    (["run.sh"], 'bash "$SCRIPT"', "runs a file known only at run time"),
    # a tool's configuration or hooks
    (["Makefile"], "make", '"make" uses Makefile, which the sandbox wrote'),
    (["Makefile"], "make test -j4", "uses Makefile, which the sandbox wrote"),
    (["GNUmakefile"], "gmake", "uses GNUmakefile"),
    (["sub/Makefile"], "make -C sub", '"make -C sub" uses sub/Makefile, which the sandbox wrote'),
    (["other.mk"], "make -f other.mk", "uses other.mk, which the sandbox wrote"),
    (["rules/common.mk"], "make", "uses rules/common.mk, which the sandbox wrote"),
    ([".git/hooks/pre-commit"], "git commit -m msg", "uses .git/hooks/pre-commit"),
    ([".git/config"], "git status", '"git status" uses .git/config, which the sandbox wrote'),
    ([".gitattributes"], "git diff", "uses .gitattributes, which the sandbox wrote"),
    ([".gitmodules"], "git submodule update", "uses .gitmodules"),
    ([".git/hooks/pre-commit"], "cd sub/deeper && git commit", "uses .git/hooks/pre-commit"),
    ([".git/hooks/post-checkout"], "git -C sub checkout x", "uses .git/hooks/post-checkout"),
    (["package.json"], "npm test", '"npm test" uses package.json, which the sandbox wrote'),
    (["package.json"], "npm run build", "uses package.json"),
    (["package.json"], "yarn test", "uses package.json"),
    (["package.json"], "pnpm run lint", "uses package.json"),
    ([".npmrc"], "npm start", "uses .npmrc, which the sandbox wrote"),
    (["sub/package.json"], "npm --prefix sub test", "uses sub/package.json"),
    (["package.json"], "cd sub && npm test", "uses package.json"),
    (["conftest.py"], "pytest -q", '"pytest -q" uses conftest.py, which the sandbox wrote'),
    (["sub/deeper/conftest.py"], "pytest", "uses sub/deeper/conftest.py"),
    (["conftest.py"], "cd sub && pytest", "uses conftest.py"),
    (["pytest.ini"], "python -m pytest", "uses pytest.ini"),
    (["pyproject.toml"], "pytest tests", "uses pyproject.toml"),
    (["setup.cfg"], "py.test", "uses setup.cfg"),
    (["tox.ini"], "tox -e py311", "uses tox.ini"),
    (["setup.py"], "pip install -e .", "uses setup.py, which the sandbox wrote"),
    (["pyproject.toml"], "python -m pip install -e .", "uses pyproject.toml"),
    (["pyproject.toml"], "uv sync", "uses pyproject.toml"),
    (["setup.py"], "uv pip install -e .", "uses setup.py"),
    ([".envrc"], "direnv allow", '"direnv allow" uses .envrc, which the sandbox wrote'),
    (["build.rs"], "cargo build", "uses build.rs, which the sandbox wrote"),
    ([".cargo/config.toml"], "cargo test", "uses .cargo/config.toml"),
    (["go.mod"], "go test ./...", "uses go.mod"),
    (["justfile"], "just deploy", "uses justfile"),
    (["compose.yaml"], "docker compose up -d", "uses compose.yaml, which the sandbox wrote"),
    (["package.json"], "cd node_modules && npm test", "uses package.json"),
    # run the project's code while the sandbox wrote some of it
    (["lib/util.py"], "python app.py", "runs the project's code, and the sandbox wrote some"),
    (["lib/util.py"], "python -c 'import lib.util'", "(lib/util.py)"),
    (["node_modules/"], "npm test", "runs the project's code, and the sandbox wrote some of it"),
    (["node_modules/"], "jest --watch=false", "(node_modules/)"),
    (["src/main.rs"], "cargo run", "(src/main.rs)"),
    (["helper.sh"], "./build.sh", "(helper.sh)"),
    # PATH directories the sandbox wrote in
    ([".venv/"], "source .venv/bin/activate", "sources .venv/bin/activate, in .venv/"),
]


@pytest.mark.parametrize(
    ("paths", "command", "reason"), SANDBOXED, ids=[case[1] for case in SANDBOXED]
)
def test_running_what_the_sandbox_wrote_goes_to_the_sandbox(ws, paths, command, reason):
    for path in ("build.sh", "app.py"):
        (ws / path).write_text("")
    result = decision(ws, command, *paths)
    assert (result.mode, result.rule) == (ExecutionMode.SANDBOX, WRITTEN), result.reason
    assert reason in result.reason


STAYS_LOCAL = [
    (["run.sh"], "ls -la"),
    (["run.sh"], "cat run.sh"),
    (["run.sh"], "grep -n touch run.sh"),
    (["run.sh"], "cp run.sh backup.sh"),
    (["run.sh"], "echo again > run.sh"),
    (["run.sh"], "git diff --stat"),
    (["run.sh"], "chmod -x run.sh"),
    (["data.json"], "python app.py"),
    (["data.json"], "make"),
    (["data.json"], "npm test"),
    (["out/report.csv"], "pytest -q"),
    (["Makefile"], "cat Makefile"),
    (["package.json"], "npm ls"),
    (["package.json"], "npm --version"),
    (["x.py"], "python --version"),
    ([".git/config"], "cat .git/config"),
]


@pytest.mark.parametrize(("paths", "command"), STAYS_LOCAL, ids=[case[1] for case in STAYS_LOCAL])
def test_reading_or_rewriting_what_the_sandbox_wrote_stays_local(ws, paths, command):
    (ws / "other.sh").write_text("")
    result = decision(ws, command, *paths)
    assert result.mode == ExecutionMode.LOCAL, result.reason


def test_a_command_found_through_a_path_directory_the_sandbox_wrote(ws):
    bin_dir = ws / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pytest").write_text("#!/bin/sh\n")
    path = f"{bin_dir}:/usr/bin:/bin"
    result = decision(ws, "pytest -q", ".venv/bin/pytest", path=path)
    assert result.rule == WRITTEN
    assert result.reason == '"pytest -q" runs .venv/bin/pytest, which the sandbox wrote'
    # A name the directory does not have is found further down PATH, as bash finds it.
    assert decision(ws, "ls", ".venv/", path=path).mode == ExecutionMode.LOCAL
    assert decision(ws, "ls", ".venv/", path=f".venv/bin:{path}").mode == ExecutionMode.LOCAL


def test_a_directory_earlier_in_path_wins(ws, tmp_path):
    trusted = tmp_path / "trusted-bin"
    trusted.mkdir()
    (trusted / "mytool").write_text("#!/bin/sh\n")
    (trusted / "mytool").chmod(0o755)
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "bin" / "mytool").write_text("")
    path = f"{ws}/.venv/bin:/usr/bin"
    assert decision(ws, "mytool", ".venv/bin/mytool", path=path).rule == WRITTEN
    path = f"{trusted}:{ws}/.venv/bin:/usr/bin"
    result = decision(ws, "mytool", ".venv/bin/mytool", path=path)
    assert result.mode == ExecutionMode.LOCAL, result.reason


def test_writing_through_a_link_the_sandbox_made_goes_to_the_sandbox(ws):
    outside = "/etc/hostname"  # outside the workspace and the temp directories
    (ws / "notes.md").symlink_to(os.path.relpath(outside, ws))
    (ws / "up").symlink_to(os.path.relpath("/etc", ws))
    (ws / "inside.md").symlink_to("sub")
    for command in ("echo x >> notes.md", "tee -a notes.md < /dev/null", "touch up/y"):
        result = decision(ws, command, "notes.md", "up")
        assert result.rule == WRITTEN, command
        assert " through " in result.reason
    assert decision(ws, "echo x >> notes.md", "notes.md").reason == (
        f'"echo x >> notes.md" writes to {outside} through notes.md, which the sandbox wrote'
    )
    # Removing the link removes the link; a link inside the workspace is fine.
    assert decision(ws, "rm notes.md", "notes.md").mode == ExecutionMode.LOCAL
    assert decision(ws, "echo x > inside.md/f", "inside.md").mode == ExecutionMode.LOCAL
    # What the sandbox did not write is judged as before (links are not followed).
    assert decision(ws, "echo x >> notes.md", "other.txt").mode == ExecutionMode.LOCAL


def test_the_git_repository_root_may_be_above_the_cwd(ws):
    result = decision(ws, "git commit -m x", ".git/hooks/pre-commit", cwd=ws / "sub" / "deeper")
    assert result.reason == '"git commit -m x" uses .git/hooks/pre-commit, which the sandbox wrote'


def test_a_project_in_a_directory_known_only_at_run_time(ws):
    result = decision(ws, 'cd "$X" && make', "run.sh")
    assert result.rule == WRITTEN
    assert "a project known only at run time" in result.reason


def test_a_workspace_held_whole_names_why(ws):
    note = "it has more than 50000 entries, too many to track"
    written = Written({os.path.realpath(ws): Entry(True, True, note)})
    result = decide("./run.sh", cwd=ws, sandbox_written=View(written, str(ws), None))
    assert result.reason == (
        f'"./run.sh" runs run.sh, in the workspace, which the sandbox may have written ({note})'
    )
    make = decide("make", cwd=ws, sandbox_written=View(written, str(ws), None))
    assert make.rule == WRITTEN


def test_local_user_rules_do_not_waive_it(ws):
    auto = Auto(Rule("./run.sh", "local"), Rule("make", "local"), Rule("pip install -e .", "local"))
    assert decision(ws, "./run.sh", "run.sh", auto=auto).rule == WRITTEN
    assert decision(ws, "make", "Makefile", auto=auto).rule == WRITTEN
    assert decision(ws, "pip install -e .", "setup.py", auto=auto).rule == WRITTEN
    # ... while the same rules still allow what the sandbox did not write.
    allowed = decision(ws, "make", "data.json", auto=auto)
    assert (allowed.mode, allowed.rule) == (ExecutionMode.LOCAL, "user-rule")


def test_sandbox_user_rules_still_decide_first(ws):
    auto = Auto(Rule("./run.sh", "sandbox"))
    assert decision(ws, "./run.sh", "run.sh", auto=auto).rule == "user-rule"


def test_it_ranks_after_remote_code_and_before_privilege(ws):
    assert decision(ws, "curl -fsSL x | sh; ./run.sh", "run.sh").rule == "remote-code"
    assert decision(ws, "sudo ./run.sh", "run.sh").rule == WRITTEN
    assert decision(ws, "pip install x && ./run.sh", "run.sh").rule == WRITTEN


def test_default_sandbox_is_unaffected(ws):
    result = decision(ws, "ls", "run.sh", auto=Auto(default="sandbox"))
    assert (result.mode, result.rule) == (ExecutionMode.SANDBOX, "default")


def test_with_nothing_recorded_the_corpus_is_decided_as_before():
    """``sandbox_written=None`` is what every session without sandbox writes passes."""
    for row in ROWS[:200]:
        assert decide(row.command, cwd=WORKSPACE, sandbox_written=None) == decide(
            row.command, cwd=WORKSPACE
        )


def test_a_record_elsewhere_only_ever_moves_corpus_commands_to_the_sandbox(tmp_path):
    """The rule sends commands to the sandbox and never anything to the host."""
    elsewhere = Written({str(tmp_path / "other" / "run.sh"): Entry(False, True)})
    view = View(elsewhere, WORKSPACE, "/usr/bin:/bin")
    moved = 0
    for row in ROWS:
        before = decide(row.command, cwd=WORKSPACE)
        after = decide(row.command, cwd=WORKSPACE, sandbox_written=view)
        if after != before:
            moved += 1
            assert (after.mode, after.rule) == (ExecutionMode.SANDBOX, WRITTEN), row.command
    assert moved < len(ROWS) // 20


@pytest.mark.parametrize(
    ("command", "leaves"),
    [
        ("npm install", False),
        ("make && make test", False),
        ("echo 'a & b'", False),
        ("curl 'http://x/?a=1&b=2'", False),
        ("sleep 60 &", True),
        ("(while true; do touch x; done) & ls", True),
        ("bash -c 'sleep 9 &'", True),
        ("if true; then sleep 9 & fi", True),
        ("nohup ./server", True),
        ("setsid ./server", True),
        ("./server & disown", True),
        ("tmux new -d 'x'", True),
        ("echo 'unterminated", True),
    ],
)
def test_commands_that_may_leave_processes_running(command, leaves):
    assert leaves_processes(command) is leaves
