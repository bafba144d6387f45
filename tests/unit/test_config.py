from pathlib import Path

import pytest

from agent_runner import ExecutionMode, Settings
from agent_runner.config import current_settings, find_key, resolve, setting_keys
from agent_runner.config.file import ConfigFile
from agent_runner.errors import ConfigFileError, InvalidSetting


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("STIGMER_CONFIG", str(path))
    for name in list(__import__("os").environ):
        if name.startswith(("STIGMER_", "DAYTONA_")) and name != "STIGMER_CONFIG":
            monkeypatch.delenv(name)
    return path


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_defaults_without_file_or_variables(config):
    resolved = resolve()
    assert resolved.settings == Settings.defaults()
    assert resolved.settings.mode is ExecutionMode.LOCAL
    assert resolved.settings.sandbox_image == "ghcr.io/stigmer/agent-sandbox:latest"
    assert {str(origin) for origin in resolved.origins.values()} == {"default"}


def test_flag_beats_variable_beats_file_beats_default(config, monkeypatch):
    write(config, "backend:\n  local:\n    execution:\n      mode: sandbox\n      cleanup: false\n")
    assert resolve().settings.mode is ExecutionMode.SANDBOX
    monkeypatch.setenv("STIGMER_EXECUTION_MODE", "auto")
    resolved = resolve()
    assert resolved.settings.mode is ExecutionMode.AUTO
    assert str(resolved.origins["mode"]) == "environment variable STIGMER_EXECUTION_MODE"
    assert resolved.settings.cleanup is False
    assert "key backend.local.execution.cleanup" in str(resolved.origins["cleanup"])
    resolved = resolve({"mode": "local"}, override_names={"mode": "--mode"})
    assert resolved.settings.mode is ExecutionMode.LOCAL
    assert str(resolved.origins["mode"]) == "--mode"


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("STIGMER_SANDBOX_AUTO_PULL", "false", "auto_pull", False),
        ("STIGMER_SANDBOX_TTL", "1h30m", "ttl", 5400.0),
        ("STIGMER_SANDBOX_TTL", "45", "ttl", 45.0),
        ("STIGMER_SANDBOX_NETWORK", "none", "sandbox.network", "none"),
        ("STIGMER_SANDBOX_POOL_SIZE", "3", "sandbox.pool_size", 3),
        (
            "STIGMER_SANDBOX_ENV_PASSTHROUGH",
            "HTTP_PROXY, NO_PROXY",
            "sandbox.env_passthrough",
            ["HTTP_PROXY", "NO_PROXY"],
        ),
        (
            "STIGMER_SANDBOX_CA_BUNDLE",
            "/etc/ssl/certs/ca.pem",
            "sandbox.ca_bundle",
            Path("/etc/ssl/certs/ca.pem"),
        ),
        ("STIGMER_EXECUTION_TIMEOUT", "2m", "timeout", 120.0),
    ],
)
def test_variables_are_typed(config, monkeypatch, variable, value, key, expected):
    monkeypatch.setenv(variable, value)
    assert resolve().value(key) == expected


def test_every_setting_has_a_variable_except_file_only_ones():
    variables = {s.key: s.variable for s in setting_keys()}
    assert variables["mode"] == "STIGMER_EXECUTION_MODE"
    assert variables["sandbox_image"] == "STIGMER_SANDBOX_IMAGE"
    assert variables["sandbox.ca_bundle"] == "STIGMER_SANDBOX_CA_BUNDLE"
    assert variables["auto.rules"] is None
    assert len(set(variables.values())) == len(variables)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "env",
            "environment variable STIGMER_EXECUTION_MODE: 'fast' is not a valid execution.mode: expected one of local, sandbox, auto",
        ),
        (
            "file",
            "backend.local.execution.mode: 'fast' is not a valid execution.mode: expected one of local, sandbox, auto",
        ),
        (
            "flag",
            "--mode: 'fast' is not a valid execution.mode: expected one of local, sandbox, auto",
        ),
    ],
)
def test_bad_mode_names_its_source_and_the_accepted_values(config, monkeypatch, source, expected):
    overrides = {}
    if source == "env":
        monkeypatch.setenv("STIGMER_EXECUTION_MODE", "fast")
    elif source == "file":
        write(config, "backend:\n  local:\n    execution:\n      mode: fast\n")
    else:
        overrides = {"mode": "fast"}
    with pytest.raises(InvalidSetting) as error:
        resolve(overrides, override_names={"mode": "--mode"})
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_nested_value_from_variable(config, monkeypatch):
    monkeypatch.setenv("STIGMER_SANDBOX_NETWORK", "wifi")
    with pytest.raises(
        InvalidSetting, match="STIGMER_SANDBOX_NETWORK: 'wifi' .*expected one of bridge, none, host"
    ):
        resolve()


def test_bad_number_explains_itself(config, monkeypatch):
    monkeypatch.setenv("STIGMER_SANDBOX_PIDS_LIMIT", "lots")
    with pytest.raises(
        InvalidSetting,
        match="STIGMER_SANDBOX_PIDS_LIMIT: 'lots' is not a valid execution.sandbox.pids_limit",
    ):
        resolve()


def test_bad_duration(config, monkeypatch):
    monkeypatch.setenv("STIGMER_SANDBOX_TTL", "soon")
    with pytest.raises(InvalidSetting, match="duration such as 90s"):
        resolve()


def test_unknown_file_key_is_an_error_not_ignored(config):
    write(config, "backend:\n  local:\n    execution:\n      mdoe: local\n")
    with pytest.raises(InvalidSetting, match="unknown key backend.local.execution.mdoe"):
        resolve()


def test_keys_outside_our_section_belong_to_the_cli_and_are_left_alone(config):
    write(
        config,
        "context: prod\nbackend:\n  type: cloud\n  local:\n    port: 7234\n    execution:\n      mode: auto\n",
    )
    assert resolve().settings.mode is ExecutionMode.AUTO


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backend: [\n", "line"),
        ("backend:\n  local: 3\n", "backend.local must be a mapping"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_malformed_file_is_one_line(config, text, message):
    write(config, text)
    with pytest.raises(ConfigFileError) as error:
        resolve()
    assert message in str(error.value)
    assert str(config) in str(error.value)
    assert "\n" not in str(error.value)


def test_empty_file_means_defaults(config):
    write(config, "")
    assert resolve().settings == Settings.defaults()


def test_set_keeps_other_keys_and_comments(config):
    original = (
        "# Stigmer CLI configuration\n"
        "context: prod  # which backend\n"
        "backend:\n"
        "  local:\n"
        "    port: 7234\n"
        "    execution:\n"
        "      # chosen by the CLI\n"
        "      mode: local\n"
    )
    write(config, original)
    ConfigFile(config).set("mode", "sandbox")
    ConfigFile(config).set("sandbox.network", "none")
    text = config.read_text()
    assert "# Stigmer CLI configuration" in text
    assert "context: prod  # which backend" in text
    assert "# chosen by the CLI" in text
    assert "port: 7234" in text
    assert "mode: sandbox" in text
    resolved = resolve()
    assert resolved.settings.mode is ExecutionMode.SANDBOX
    assert resolved.settings.sandbox.network == "none"


def test_set_creates_a_missing_file(config):
    ConfigFile(config).set("auto_pull", False)
    assert resolve().settings.auto_pull is False


def test_find_key_accepts_every_spelling():
    assert find_key("execution.mode").key == "mode"
    assert find_key("backend.local.execution.sandbox.network").key == "sandbox.network"
    assert find_key("ttl").key == "ttl"
    with pytest.raises(InvalidSetting, match="unknown setting 'execution.nope'"):
        find_key("execution.nope")


def test_current_settings_follows_file_changes(config):
    write(config, "backend:\n  local:\n    execution:\n      mode: local\n")
    assert current_settings().mode is ExecutionMode.LOCAL
    write(config, "backend:\n  local:\n    execution:\n      mode: sandbox # now\n")
    assert current_settings().mode is ExecutionMode.SANDBOX


def test_settings_reject_unknown_fields():
    with pytest.raises(ValueError, match="Extra inputs"):
        Settings.model_validate({"mdoe": "local"})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("STIGMER_SANDBOX_USER", "0", "other than root"),
        ("STIGMER_SANDBOX_USER", "root", "numeric uid"),
        ("STIGMER_SANDBOX_MEMORY", "lots", "a memory size such as 512m"),
        ("STIGMER_SANDBOX_CPUS", "0", "greater than 0"),
        ("STIGMER_SANDBOX_PIDS_LIMIT", "3", "greater than or equal to 16"),
        ("STIGMER_SANDBOX_WORKSPACE", "mount", "expected one of bind, copy, none"),
        ("STIGMER_SANDBOX_AUTO_PULL", "perhaps", "STIGMER_SANDBOX_AUTO_PULL: 'perhaps'"),
    ],
)
def test_invalid_sandbox_limits_are_refused_with_a_hint(
    config, monkeypatch, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSetting, match=expected) as error:
        resolve()
    assert str(error.value).startswith(f"environment variable {variable}: ")


def test_settings_keywords_go_on_top_of_the_cascade(config, monkeypatch):
    write(
        config,
        "backend:\n  local:\n    execution:\n      sandbox_image: team/image:1\n"
        "      sandbox:\n        memory: 512m\n        network: none\n",
    )
    monkeypatch.setenv("STIGMER_SANDBOX_CPUS", "1.5")
    settings = Settings(mode="sandbox", sandbox={"network": "bridge"})
    assert settings.mode is ExecutionMode.SANDBOX
    assert settings.sandbox_image == "team/image:1"
    assert settings.sandbox.memory == "512m"
    assert settings.sandbox.cpus == 1.5
    assert settings.sandbox.network == "bridge"


def test_settings_defaults_read_nothing(config, monkeypatch):
    write(config, "backend:\n  local:\n    execution:\n      sandbox_image: team/image:1\n")
    monkeypatch.setenv("STIGMER_EXECUTION_MODE", "auto")
    settings = Settings.defaults(cleanup=False)
    assert settings.sandbox_image == "ghcr.io/stigmer/agent-sandbox:latest"
    assert settings.mode is ExecutionMode.LOCAL
    assert settings.cleanup is False


def test_settings_keyword_errors_are_one_line_naming_the_argument(config):
    with pytest.raises(InvalidSetting, match=r"^argument sandbox\.network: 'wifi' is not a valid"):
        Settings(sandbox={"network": "wifi"})
    with pytest.raises(InvalidSetting, match="unknown setting 'sandbox.netwrok'"):
        Settings(sandbox={"netwrok": "none"})


def test_settings_accept_a_section_model_as_a_keyword(config):
    from agent_runner.config import SandboxSettings

    write(config, "backend:\n  local:\n    execution:\n      sandbox:\n        memory: 512m\n")
    settings = Settings(sandbox=SandboxSettings(network="none"))
    assert (settings.sandbox.network, settings.sandbox.memory) == ("none", "512m")


def test_sandbox_backend_from_each_source(config, monkeypatch):
    assert resolve().settings.sandbox.backend == "docker"
    write(config, "backend:\n  local:\n    execution:\n      sandbox:\n        backend: docker\n")
    assert "sandbox.backend" in str(resolve().origins["sandbox.backend"])
    monkeypatch.setenv("STIGMER_SANDBOX_BACKEND", "podman")
    with pytest.raises(InvalidSetting) as error:
        resolve()
    assert str(error.value) == (
        "environment variable STIGMER_SANDBOX_BACKEND: 'podman' is not a valid "
        "execution.sandbox.backend: expected one of docker, daytona, kubernetes"
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("STIGMER_SANDBOX_MEMORY", "0", "must be at least 64m"),
        ("STIGMER_SANDBOX_MEMORY", "10m", "must be at least 64m"),
        ("STIGMER_SANDBOX_TMP_SIZE", "0", "must be at least 1m"),
        ("STIGMER_EXECUTION_TIMEOUT", "inf", "expected seconds or a duration"),
        ("STIGMER_EXECUTION_TIMEOUT", "nan", "expected seconds or a duration"),
        ("STIGMER_EXECUTION_TIMEOUT", "0", "greater than 0"),
    ],
)
def test_sizes_and_timeouts_below_their_floor_are_refused(
    config, monkeypatch, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSetting, match=expected) as error:
        resolve()
    assert str(error.value).startswith(f"environment variable {variable}: ")


def test_a_config_file_that_is_not_utf8_names_the_file(config):
    config.write_bytes(b"backend:\n  local:\n    execution:\n      mode: \xff\xfe\n")
    with pytest.raises(ConfigFileError) as error:
        resolve()
    assert str(config) in str(error.value)
    assert "not UTF-8" in str(error.value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -5.0])
def test_a_timeout_setting_from_python_follows_the_same_rule(config, value):
    with pytest.raises(InvalidSetting, match="is not a valid execution.timeout"):
        Settings(timeout=value)
