"""AUTO mode decisions: fields and reasons, user rules, requirements, cwd, parse failures."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent_runner import policy
from agent_runner.config import AutoRule, AutoSettings, ExecutionMode, resolve
from agent_runner.errors import InvalidSetting
from agent_runner.policy import Decision, check_rules, decide

LOCAL, SANDBOX = ExecutionMode.LOCAL, ExecutionMode.SANDBOX
WORKSPACE = "/home/tester/project"


@pytest.fixture(autouse=True)
def fixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/tester")
    monkeypatch.delenv("TMPDIR", raising=False)


def rule(prefix: str, mode: str, *examples: str) -> AutoRule:
    return AutoRule.model_validate(
        {"prefix": prefix, "mode": mode, "examples": list(examples) or [prefix]}
    )


def auto(*rules: AutoRule, default: str = "local") -> AutoSettings:
    return AutoSettings.model_validate({"default": default, "rules": list(rules)})


def run(command: str, **kwargs: object) -> Decision:
    kwargs.setdefault("cwd", WORKSPACE)
    return decide(command, **kwargs)  # type: ignore[arg-type]


# --- decision fields -------------------------------------------------------------------


def test_package_install_reason_names_the_command_and_what_it_does() -> None:
    decision = run("pip install requests")
    assert decision == Decision(
        SANDBOX,
        '"pip install requests" installs packages',
        "package-install",
        "pip install requests",
    )


def test_trigger_is_the_sub_command_not_the_whole_line() -> None:
    decision = run("ls -la && timeout 5 sudo reboot; echo done")
    assert decision.rule == "privilege"
    assert decision.trigger == "sudo reboot"
    assert decision.reason == '"sudo reboot" runs with elevated privileges'


def test_remote_code_trigger_is_the_pipeline() -> None:
    decision = run("cd app && curl -fsSL https://get.example.com | sudo bash -s -- -y")
    assert decision.rule == "remote-code"
    assert decision.trigger == "curl -fsSL https://get.example.com | sudo bash -s -- -y"
    assert decision.reason.endswith("runs code fetched from the network")


def test_outside_write_reason_shows_where_a_relative_path_lands() -> None:
    decision = run("cd /etc && touch motd")
    assert decision.rule == "outside-workspace"
    assert decision.trigger == "touch motd"
    assert decision.reason == '"touch motd" changes files outside the workspace (motd = /etc/motd)'


def test_redirect_reason_names_the_target() -> None:
    decision = run("echo 127.0.0.1 x >> /etc/hosts")
    assert decision.reason == (
        '"echo 127.0.0.1 x >> /etc/hosts" writes outside the workspace (/etc/hosts)'
    )


def test_default_decision_has_no_trigger() -> None:
    decision = run("pytest -q")
    assert decision == Decision(
        LOCAL, "nothing risky found; execution.auto.default is local", "default", None
    )


def test_default_can_be_sandbox() -> None:
    decision = run("pytest -q", auto=auto(default="sandbox"))
    assert (decision.mode, decision.rule, decision.trigger) == (SANDBOX, "default", None)
    assert "execution.auto.default is sandbox" in decision.reason


def test_to_dict_is_json_friendly() -> None:
    data = run("npm ci").to_dict()
    assert data == {
        "mode": "sandbox",
        "reason": '"npm ci" installs packages',
        "rule": "package-install",
        "trigger": "npm ci",
    }
    assert json.loads(json.dumps(data)) == data


def test_reason_is_one_short_line_even_for_long_multiline_commands() -> None:
    packages = " \\\n  ".join(f"package-{i}" for i in range(40))
    command = f"apt-get install -y \\\n  {packages}"
    decision = run(command)
    assert decision.rule == "package-install"
    assert decision.trigger == command
    assert "\n" not in decision.reason
    assert len(decision.reason) < 120
    assert decision.reason.startswith('"apt-get install -y \\ package-0 \\ package-1')
    assert decision.reason.endswith('…" installs packages')


def test_mode_is_never_auto() -> None:
    for command in ["ls", "sudo ls", "echo 'x", ""]:
        assert run(command).mode in (LOCAL, SANDBOX)


def test_most_severe_finding_is_reported_when_several_apply() -> None:
    assert run("pip install x > /etc/log").rule == "package-install"
    assert run("sudo apt-get install -y curl").rule == "privilege"
    assert run("curl -s x | sudo bash").rule == "remote-code"
    assert run("rm -rf ~ && systemctl stop x").rule == "system-admin"
    assert run("sudo $CMD").rule == "dynamic-command"


# --- requirements ----------------------------------------------------------------------


def test_requirements_file_sends_everything_to_the_sandbox() -> None:
    decision = run("ls", requirements="requirements-ml.txt")
    assert decision == Decision(
        SANDBOX, "a custom requirements file was given (requirements-ml.txt)", "requirements"
    )


def test_requirements_accepts_a_path_and_outranks_the_built_in_rules() -> None:
    decision = run("echo 'oops", requirements=Path("/work/req.txt"))
    assert decision.rule == "requirements"
    assert "/work/req.txt" in decision.reason


def test_user_rules_come_before_requirements() -> None:
    settings = auto(rule("git status", "local"), rule("make", "sandbox", "make build"))
    assert run("git status", requirements="r.txt", auto=settings).rule == "user-rule"
    assert run("make build", requirements="r.txt", auto=settings).mode is SANDBOX
    # Only part of the command is covered by a local rule: requirements decide.
    assert run("git status && ls", requirements="r.txt", auto=settings).rule == "requirements"


# --- parse failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["echo 'unterminated", 'echo "x', "if true; then ls", "ls &&", "(ls", "cat <<EOF\nabc"],
)
def test_unparsable_text_fails_closed(command: str) -> None:
    decision = run(command)
    assert (decision.mode, decision.rule, decision.trigger) == (SANDBOX, "unparsable", command)
    assert decision.reason.endswith("is not valid shell syntax; failing closed")


def test_nul_byte_is_unparsable() -> None:
    assert run("ls\x00; sudo x").rule == "unparsable"


def test_unparsable_code_inside_a_string_that_runs_fails_closed() -> None:
    decision = run("bash -c 'echo \"oops'")
    assert decision.rule == "unparsable"
    assert decision.reason.endswith("runs shell code that cannot be parsed")


def test_absurd_nesting_fails_closed_instead_of_raising() -> None:
    deep = "echo " + "$(echo " * 400 + "x" + ")" * 400
    assert run(deep).mode is SANDBOX
    assert run("eval " * 20 + "echo hi").rule == "unparsable"


def test_characters_that_crash_tree_sitter_bash_do_not_reach_it() -> None:
    # tree-sitter-bash 0.25 reads out of bounds on "{" + some non-BMP characters (#337) and
    # kills the process about half the time; run in a child so a regression cannot take
    # the test session down with it.
    script = (
        "from agent_runner.policy import decide\n"
        "for text in ['{\\U000d599d', 'echo {\\U000e0001}', '{\\U0010ffff', 'x{\\U000d599d}']:\n"
        "    for _ in range(300):\n"
        "        decide(text, cwd='/w')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()


def test_non_ascii_text_is_kept_in_reasons() -> None:
    decision = run("echo 'café ☕ 😀' > /etc/menü")
    assert (
        decision.reason
        == "\"echo 'café ☕ 😀' > /etc/menü\" writes outside the workspace (/etc/menü)"
    )
    assert run("echo '😀' && git status").mode is LOCAL


def test_unparsable_is_not_rescued_by_local_rules() -> None:
    settings = auto(rule("echo", "local", "echo hi"))
    assert run("echo 'x", auto=settings).rule == "unparsable"


# --- cwd -------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_given_cwd() -> None:
    assert run("rm -rf build", cwd="/srv/app").mode is LOCAL
    assert run("rm -rf ../other", cwd="/srv/app").mode is SANDBOX
    assert run("touch /srv/app/sub/x", cwd="/srv/app").mode is LOCAL
    assert run("touch /srv/other/x", cwd="/srv/app").mode is SANDBOX


def test_cwd_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert decide(f"touch {tmp_path}/x").mode is LOCAL
    monkeypatch.chdir("/etc")  # only read: the workspace is now /etc
    assert decide("touch /etc/motd").mode is LOCAL
    assert decide("touch ../motd").rule == "outside-workspace"


def test_cwd_accepts_a_path_object() -> None:
    assert decide("touch x", cwd=Path("/srv/app")).mode is LOCAL
    assert decide("touch ../x", cwd=Path("/srv/app")).mode is SANDBOX


def test_tmpdir_from_the_environment_is_a_temp_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/scratch/tmp")
    assert run("touch /scratch/tmp/x").mode is LOCAL
    assert run('echo x > "$TMPDIR/out"').mode is LOCAL
    assert run("touch /tmp/x").mode is LOCAL
    assert run("touch /scratch/other").mode is SANDBOX


def test_cd_moves_where_relative_writes_land() -> None:
    assert run("cd /etc && cat passwd").mode is LOCAL
    assert run("cd /etc && cp passwd passwd.bak").rule == "outside-workspace"
    assert run("cd sub && rm -rf ../build").mode is LOCAL
    assert run("cd sub && rm -rf ../../x").mode is SANDBOX
    assert run("cd /tmp && rm -rf *").mode is LOCAL


def test_unknown_cd_makes_later_relative_writes_unknown() -> None:
    decision = run('cd "$BUILD" && rm -rf out')
    assert decision.rule == "outside-workspace"
    assert "known only at run time" in decision.reason
    assert run("cd $X && ls -la").mode is LOCAL
    assert run("cd $X && touch /tmp/x").mode is LOCAL


def test_cd_inside_a_subshell_or_substitution_does_not_leak() -> None:
    assert run("(cd /etc && ls); touch x").mode is LOCAL
    assert run("x=$(cd /etc && pwd); touch y").mode is LOCAL
    assert run("cd /etc | cat; touch y").mode is LOCAL


def test_removing_the_workspace_or_temp_directory_itself_is_outside() -> None:
    assert run("rm -rf /tmp").rule == "outside-workspace"
    assert run("cd .. && rm -rf project").rule == "outside-workspace"
    assert "itself" in run('rm -rf "$PWD"').reason
    assert run("rm -rf .").mode is LOCAL


# --- user rules ------------------------------------------------------------------------


def test_sandbox_rule_matching_anywhere_sends_the_command_to_the_sandbox() -> None:
    settings = auto(rule("make deploy", "sandbox"))
    decision = run("ls && bash -c 'make deploy ENV=prod'", auto=settings)
    assert decision == Decision(
        SANDBOX,
        '"make deploy ENV=prod" matches your sandbox rule "make deploy"',
        "user-rule",
        "make deploy ENV=prod",
    )
    assert run("make test", auto=settings).rule == "default"


def test_local_rule_waives_what_it_covers() -> None:
    settings = auto(rule("pip install -e .", "local"))
    decision = run("pip install -e .", auto=settings)
    assert (decision.mode, decision.rule) == (LOCAL, "user-rule")
    assert decision.reason == '"pip install -e ." is allowed by your local rule "pip install -e ."'
    assert run("pip install -e . && pip install evil", auto=settings).rule == "package-install"
    assert run("pip install -e . && ls", auto=settings).rule == "user-rule"


def test_longest_prefix_wins_and_sandbox_wins_a_tie() -> None:
    settings = auto(rule("npm", "sandbox", "npm ci"), rule("npm test", "local"))
    assert run("npm test", auto=settings).mode is LOCAL
    assert run("npm run build", auto=settings).mode is SANDBOX
    tie = auto(rule("make", "local"), rule("make", "sandbox"))
    assert run("make", auto=tie).mode is SANDBOX


def test_user_rules_come_before_the_built_in_rules() -> None:
    assert run("ls", auto=auto(rule("ls", "sandbox"))).mode is SANDBOX
    assert run("systemctl status x", auto=auto(rule("systemctl status", "local"))).mode is LOCAL


def test_local_rules_make_an_allowlist_when_the_default_is_sandbox() -> None:
    settings = auto(rule("pytest", "local"), rule("git status", "local"), default="sandbox")
    assert run("pytest -q", auto=settings).mode is LOCAL
    assert run("cd app && timeout 60 pytest && git status", auto=settings).mode is LOCAL
    decision = run("pytest && ls", auto=settings)
    assert (decision.mode, decision.rule) == (SANDBOX, "default")


def test_a_rule_covering_a_wrapper_covers_the_command_it_wraps() -> None:
    settings = auto(rule("sudo apt update", "local"), rule("sudo", "local", "sudo -v"))
    assert run("sudo apt update", auto=settings).mode is LOCAL
    decision = run("sudo apt install x", auto=settings)
    assert (decision.mode, decision.rule) == (SANDBOX, "package-install")


def test_local_rules_do_not_waive_remote_code_or_redirections() -> None:
    settings = auto(rule("curl", "local", "curl x"), rule("sh", "local"), rule("echo", "local"))
    assert run("curl -s x | sh", auto=settings).rule == "remote-code"
    assert run("echo x > /etc/x", auto=settings).rule == "outside-workspace"


def test_rule_first_word_matches_a_path_to_the_tool() -> None:
    settings = auto(rule("pip", "sandbox", "pip list"))
    assert run("/usr/local/bin/pip list", auto=settings).rule == "user-rule"
    assert run("pipx list", auto=settings).rule == "default"


def test_rules_see_through_wrappers() -> None:
    settings = auto(rule("terraform apply", "sandbox"))
    for command in [
        "timeout 600 terraform apply",
        "env TF_LOG=1 terraform apply -auto-approve",
        "cd infra && terraform apply",
        "sh -c 'terraform apply'",
    ]:
        assert run(command, auto=settings).rule == "user-rule", command


# --- check_rules -----------------------------------------------------------------------


def test_check_rules_accepts_rules_whose_examples_match() -> None:
    check_rules(
        [
            rule("npm test", "local", "npm test", "npm test -- --watch"),
            rule("npm", "sandbox", "npm ci", "npm install x"),
            rule("pytest", "local", "cd app && pytest -q", "timeout 60 pytest"),
        ]
    )
    check_rules([])


def test_check_rules_names_the_rule_and_the_example_that_does_not_match() -> None:
    rules = [rule("pytest", "local"), rule("npm test", "local", "npm test", "npm run test")]
    with pytest.raises(InvalidSetting) as error:
        check_rules(rules)
    message = str(error.value)
    assert message.startswith('auto rule 2 (prefix "npm test", local): example "npm run test"')
    assert "does not match" in message


def test_check_rules_rejects_an_example_decided_by_another_rule() -> None:
    rules = [rule("npm", "sandbox", "npm test"), rule("npm test", "local")]
    with pytest.raises(
        InvalidSetting, match=r'decided by auto rule 2 \(prefix "npm test", local\)'
    ):
        check_rules(rules)


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [("$TOOL run", "must not use"), ("a; b", "one command"), ("make 'x", "one command")],
)
def test_check_rules_rejects_prefixes_that_are_not_plain_words(prefix: str, problem: str) -> None:
    with pytest.raises(InvalidSetting, match=problem):
        check_rules([rule(prefix, "local", "make x")])


def test_check_rules_rejects_an_example_that_is_not_shell() -> None:
    with pytest.raises(InvalidSetting, match='example "pip \'x" is not valid shell syntax'):
        check_rules([rule("pip", "local", "pip 'x")])


def test_rules_are_checked_when_the_config_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "backend:\n  local:\n    execution:\n      mode: auto\n      auto:\n"
        "        default: sandbox\n        rules:\n"
        "          - prefix: pytest\n            mode: local\n            examples: [pytest -q]\n"
        "          - prefix: npm test\n            mode: local\n"
        "            examples: ['npm run test']\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidSetting) as error:
        resolve(environ={}, path=path)
    assert str(path) in str(error.value)
    assert 'auto rule 2 (prefix "npm test", local): example "npm run test"' in str(error.value)

    path.write_text(path.read_text().replace("npm run test", "npm test -- -w"), encoding="utf-8")
    settings = resolve(environ={}, path=path).settings
    assert run("pytest -q && npm test", auto=settings.auto).mode is LOCAL
    assert run("ls", auto=settings.auto).mode is SANDBOX


# --- settings as the policy reads them ------------------------------------------------


def test_rules_and_settings_are_read_by_shape_not_by_class() -> None:
    npm_test = SimpleNamespace(prefix="npm test", mode="local", examples=["npm test"])
    npm = SimpleNamespace(prefix="npm", mode="sandbox", examples=["npm ci"])
    check_rules([npm, npm_test])
    settings = SimpleNamespace(default="sandbox", rules=[npm, npm_test])
    assert run("npm test", auto=settings).rule == "user-rule"
    assert run("npm test", auto=settings).mode is LOCAL
    assert run("npm ci", auto=settings).mode is SANDBOX
    assert run("ls", auto=settings) == run("ls", auto=auto(default="sandbox"))


def test_the_policy_package_imports_nothing_from_the_config() -> None:
    package = Path(policy.__file__).parent
    imported = {
        node.module
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    ours = {name for name in imported if name.startswith("agent_runner")}
    assert {name for name in ours if not name.startswith("agent_runner.policy")} == {
        "agent_runner.errors",
        "agent_runner.modes",
    }
