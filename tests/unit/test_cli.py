"""The CLI as a user runs it: a real process, real exit codes, real streams."""

import json
from pathlib import Path

import pytest

from tests.conftest import cli_environment, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environment(tmp_path, STIGMER_STATE_DIR=str(tmp_path / "sessions"))


def cli(env: dict[str, str], *args: str, cwd: Path | None = None):
    return run_cli(*args, env=env, cwd=cwd, timeout=60)


def test_exec_exit_status_and_separate_streams(env):
    done = cli(env, "exec", "echo out; echo err >&2; exit 5")
    assert (done.returncode, done.stdout, done.stderr) == (5, "out\n", "err\n")


def test_exec_passes_quotes_untouched(env):
    done = cli(env, "exec", 'echo "it\'s" \'$HOME\' "$((1+1))"')
    assert done.stdout == "it's $HOME 2\n"


def test_exec_json_prints_the_result(env, tmp_path):
    done = cli(env, "exec", "--json", "--cwd", str(tmp_path), "--env", "A=b=c", "echo $A; pwd")
    result = json.loads(done.stdout)
    assert done.returncode == 0
    assert result["stdout"] == f"b=c\n{tmp_path}\n"
    assert result["mode"] == "local"
    assert result["backend"] == "local"
    assert set(result) >= {
        "exit_code",
        "stderr",
        "duration_s",
        "reason",
        "timed_out",
        "truncated",
        "sandbox_id",
    }


def test_exec_timeout_exits_124_with_partial_output(env):
    done = cli(env, "exec", "--timeout", "0.5", "echo partial; sleep 20")
    assert done.returncode == 124
    assert done.stdout == "partial\n"
    assert "timed out" in done.stderr


def test_session_carries_cwd_and_exports_between_invocations(env, tmp_path):
    first = cli(
        env,
        "exec",
        "--session",
        "work-1",
        "--cwd",
        str(tmp_path),
        "mkdir -p a && cd a && export X=1",
    )
    assert first.returncode == 0, first.stderr
    second = cli(env, "exec", "--session", "work-1", 'pwd; echo "$X"')
    assert second.stdout == f"{tmp_path / 'a'}\n1\n"
    other = cli(env, "exec", "--session", "work-2", 'echo "${X-none}"')
    assert other.stdout == "none\n"
    state = Path(env["STIGMER_STATE_DIR"], "work-1.json")
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert "PATH" not in json.loads(state.read_text())["variables"]


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (["exec", "--mode", "turbo", "true"], {}, "invalid choice: 'turbo'"),
        (
            ["exec", "true"],
            {"STIGMER_EXECUTION_MODE": "turbo"},
            "STIGMER_EXECUTION_MODE: 'turbo' is not a valid execution.mode",
        ),
        (["exec", "--env", "NOEQUALS", "true"], {}, "expected NAME=VALUE"),
        (["exec", "--cwd", "/does/not/exist", "true"], {}, "/does/not/exist does not exist"),
        (["exec", "--session", "../escape", "true"], {}, "session id '../escape'"),
        (["config", "get", "execution.nope"], {}, "unknown setting"),
        (["config", "set", "execution.mode", "fast"], {}, "expected one of local, sandbox, auto"),
        (
            ["exec", "--mode", "sandbox", "--requirements", "/no/req.txt", "true"],
            {},
            "requirements file /no/req.txt does not exist",
        ),
        (
            ["exec", "--requirements", "/no/req.txt", "true"],
            {},
            "are installed into a sandbox image, and this session runs in local mode",
        ),
        (["image", "build", "--requirements", "/tmp"], {}, "/tmp is a directory, not a file"),
        (["image", "check"], {}, "the following arguments are required: image"),
        (["image", "build", "--tier", "huge"], {}, "invalid choice: 'huge'"),
    ],
)
def test_errors_are_one_line_exit_2_without_traceback(env, args, variables, message):
    done = cli({**env, **variables}, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_malformed_config_file_is_one_line(env):
    Path(env["STIGMER_CONFIG"]).write_text("backend: [oops\n")
    done = cli(env, "exec", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert env["STIGMER_CONFIG"] in done.stderr


def test_config_set_get_list_path(env):
    config = Path(env["STIGMER_CONFIG"])
    config.write_text("# mine\nbackend:\n  local:\n    port: 1  # keep\n")
    assert cli(env, "config", "path").stdout.strip() == str(config)
    assert cli(env, "config", "set", "execution.mode", "auto").returncode == 0
    assert cli(env, "config", "set", "execution.auto_pull", "false").returncode == 0
    assert cli(env, "config", "set", "execution.sandbox.env_passthrough", "A,B").returncode == 0
    text = config.read_text()
    assert "# mine" in text
    assert "port: 1  # keep" in text
    assert "auto_pull: false" in text
    assert cli(env, "config", "get", "execution.mode").stdout == "auto\n"
    assert cli(env, "config", "get", "execution.sandbox.env_passthrough").stdout == '["A", "B"]\n'
    listing = cli({**env, "STIGMER_SANDBOX_NETWORK": "none"}, "config", "list", "--json")
    rows = {row["key"]: row for row in json.loads(listing.stdout)}
    assert rows["execution.mode"]["value"] == "auto"
    assert rows["execution.mode"]["source"].startswith("config file")
    assert (
        rows["execution.sandbox.network"]["source"]
        == "environment variable STIGMER_SANDBOX_NETWORK"
    )
    assert rows["execution.cleanup"]["source"] == "default"
    plain = cli(env, "config", "list")
    assert "execution.mode" in plain.stdout
    assert "config file" in plain.stdout


def test_flag_beats_environment(env):
    done = cli(
        {**env, "STIGMER_EXECUTION_MODE": "sandbox"}, "exec", "--mode", "local", "--json", "true"
    )
    assert json.loads(done.stdout)["mode"] == "local"


def test_version(env):
    done = cli(env, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("agent-runner ")


def test_explain_prints_the_decision_without_running(env, tmp_path):
    marker = tmp_path / "ran"
    done = cli(env, "explain", f"pip install requests && touch {marker}")
    assert done.returncode == 0
    assert done.stdout.startswith('auto -> sandbox: "pip install requests" installs packages')
    assert not marker.exists()
    local = json.loads(
        cli(env, "explain", "--json", "--cwd", str(tmp_path), "ls -la | grep x").stdout
    )
    assert local == {"mode": "local", "reason": local["reason"], "rule": "default", "trigger": None}


def test_explain_honours_user_rules_from_the_config_file(env):
    Path(env["STIGMER_CONFIG"]).write_text(
        "backend:\n  local:\n    execution:\n      auto:\n        rules:\n"
        "          - prefix: make deploy\n            mode: sandbox\n            examples: [make deploy prod]\n"
    )
    done = json.loads(cli(env, "explain", "--json", "make deploy prod").stdout)
    assert (done["mode"], done["rule"]) == ("sandbox", "user-rule")


def test_user_rule_whose_example_does_not_match_is_refused_at_load(env):
    Path(env["STIGMER_CONFIG"]).write_text(
        "backend:\n  local:\n    execution:\n      auto:\n        rules:\n"
        "          - prefix: npm test\n            mode: local\n            examples: [npm run test]\n"
    )
    done = cli(env, "explain", "ls")
    assert done.returncode == 2
    assert "does not match" in done.stderr
    assert done.stderr.count("\n") == 1


def test_env_flag_applies_to_one_command_of_a_session(env, tmp_path):
    first = cli(
        env,
        "exec",
        "--session",
        "env-1",
        "--cwd",
        str(tmp_path),
        "--env",
        "ONCE=1",
        'echo "$ONCE"; export KEPT=2',
    )
    assert first.stdout == "1\n"
    second = cli(env, "exec", "--session", "env-1", 'echo "${ONCE-gone} $KEPT"')
    assert second.stdout == "gone 2\n"


def test_exec_refuses_an_unknown_backend_in_one_line(env):
    done = cli(env, "exec", "--backend", "podman", "--mode", "sandbox", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "invalid choice: 'podman'" in done.stderr


def test_config_list_shows_the_sandbox_backend_and_its_source(env):
    env = {**env, "STIGMER_SANDBOX_BACKEND": "docker"}
    done = cli(env, "config", "list", "--json")
    (row,) = [row for row in json.loads(done.stdout) if row["key"] == "execution.sandbox.backend"]
    assert row == {
        "key": "execution.sandbox.backend",
        "value": "docker",
        "source": "environment variable STIGMER_SANDBOX_BACKEND",
        "variable": "STIGMER_SANDBOX_BACKEND",
    }


def test_config_file_that_is_not_utf8_is_one_line(env, tmp_path):
    Path(env["STIGMER_CONFIG"]).write_bytes(b"backend: \xff\n")
    done = cli(env, "exec", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "not UTF-8" in done.stderr


def test_the_daytona_api_key_is_never_printed(env):
    secret = "dtn_this_must_never_show"
    env = {**env, "DAYTONA_API_KEY": secret, "DAYTONA_DEV_TOOLS_SNAPSHOT_ID": "dev-tools"}
    listed = cli(env, "config", "list")
    as_json = cli(env, "config", "list", "--json")
    got = cli(env, "config", "get", "execution.sandbox.daytona.api_key")
    put = cli(env, "config", "set", "execution.sandbox.daytona.api_key", secret)
    for done in (listed, as_json, got, put):
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
    assert "***" in got.stdout
    assert "environment variable DAYTONA_API_KEY" in listed.stdout
    (row,) = [r for r in json.loads(as_json.stdout) if r["key"].endswith("daytona.snapshot")]
    assert (row["value"], row["variable"]) == ("dev-tools", "DAYTONA_DEV_TOOLS_SNAPSHOT_ID")


def test_daytona_without_a_key_is_one_line_exit_2(env):
    env = {k: v for k, v in env.items() if not k.startswith("DAYTONA_")}
    done = cli(env, "exec", "--backend", "daytona", "--mode", "sandbox", "true")
    assert done.returncode == 2
    assert done.stderr == (
        "agent-runner: error: the Daytona backend needs an API key: set DAYTONA_API_KEY "
        "(or execution.sandbox.daytona.api_key); create one at https://app.daytona.io\n"
    )
