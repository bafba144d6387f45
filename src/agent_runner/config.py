"""Typed settings and the cascade that fills them.

The cascade is shared with the Stigmer CLI: an explicit override (CLI flag or API argument)
beats a ``STIGMER_*`` environment variable, which beats ``~/.stigmer/config.yaml``
(``backend.local.execution.*``), which beats the default. Every leaf setting remembers where
its value came from, so a bad value is reported against the flag, variable or file key that
supplied it, and ``agent-runner config list`` can show the origin of each value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from agent_runner.config_file import ConfigFile
from agent_runner.errors import InvalidSetting
from agent_runner.modes import ExecutionMode as ExecutionMode  # re-exported

DEFAULT_SANDBOX_IMAGE = "ghcr.io/stigmer/agent-sandbox:latest"
LOCAL_BUILD_TAG = "stigmer/agent-sandbox:local"
MIB = 1024 * 1024


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def _parse_duration(value: Any) -> Any:
    """Accept seconds as a number or text like ``90``, ``30s``, ``15m``, ``1h30m``."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if not value.strip() or match is None:
        raise ValueError("expected seconds or a duration such as 90s, 15m or 1h")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


Seconds = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class AutoRule(_Strict):
    """A user rule for AUTO mode: commands starting with ``prefix`` run in ``mode``."""

    prefix: str = Field(min_length=1)
    """Command prefix, matched word by word against each simple command."""
    mode: Literal[ExecutionMode.LOCAL, ExecutionMode.SANDBOX]
    """Where matching commands run."""
    examples: list[str] = Field(min_length=1)
    """Commands this rule must match; checked when the rules load, so a rule set tests itself."""


class AutoSettings(_Strict):
    """How AUTO mode decides."""

    default: Literal[ExecutionMode.LOCAL, ExecutionMode.SANDBOX] = ExecutionMode.LOCAL
    """Where a command runs when no rule sends it elsewhere."""
    rules: list[AutoRule] = Field(default_factory=list)
    """User rules, checked before the built-in ones (config file only)."""


class SandboxSettings(_Strict):
    """How sandboxes are created (Docker backend)."""

    network: Literal["bridge", "none", "host"] = "bridge"
    """Container network: bridge (default; package installs work), none, or host."""
    workspace: Literal["bind", "copy", "none"] = "bind"
    """How the workspace reaches /workspace: bind-mounted, copied in once, or not at all."""
    ca_bundle: Path | None = None
    """Host CA bundle to trust inside the sandbox (TLS-inspecting proxies)."""
    env_passthrough: list[str] = Field(default_factory=list)
    """Host environment variables passed into the sandbox; no others are."""
    memory: str = Field(default="2g", pattern=r"^\d+[bkmg]?$")
    """a memory size such as 512m or 2g (bytes, k, m or g)."""
    cpus: float = Field(default=2.0, gt=0)
    """CPU limit, in cores."""
    pids_limit: int = Field(default=512, ge=16)
    """Maximum number of processes in the sandbox (fork bombs stop here)."""
    user: str | None = Field(default=None, pattern=r"^[1-9]\d*(:\d+)?$")
    """a numeric uid or uid:gid other than root (0); default: the workspace's owner, so the
    files the sandbox writes stay yours."""
    pool_size: int = Field(default=0, ge=0, le=32)
    """Pre-started sandboxes kept warm so a new session does not wait for one."""


class Settings(_Strict):
    """Everything the runner reads from the cascade; a typo anywhere is an error."""

    mode: ExecutionMode = ExecutionMode.LOCAL
    """Execution mode: local (default), sandbox or auto."""
    sandbox_image: str = Field(default=DEFAULT_SANDBOX_IMAGE, min_length=1)
    """Image sandboxes start from."""
    auto_pull: bool = True
    """Pull the sandbox image when it is not present."""
    cleanup: bool = True
    """Remove a sandbox when its session closes."""
    ttl: Seconds = 3600.0
    """Idle time after which a session's sandbox is removed."""
    timeout: Seconds | None = None
    """Default command timeout; none means commands may run forever."""
    max_output_bytes: int = Field(default=MIB, ge=1024)
    """Bytes kept per stream (head and tail); the middle of larger output is dropped."""
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    auto: AutoSettings = Field(default_factory=AutoSettings)

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None) -> Settings:
        """Settings from the cascade, ``overrides`` (dotted keys) on top."""
        return resolve(overrides).settings


# Environment variables whose names the Stigmer CLI fixed; the rest follow
# ``STIGMER_<SECTION>_<KEY>`` (``sandbox.network`` -> ``STIGMER_SANDBOX_NETWORK``).
_CLI_VARIABLES = {
    "mode": "STIGMER_EXECUTION_MODE",
    "sandbox_image": "STIGMER_SANDBOX_IMAGE",
    "auto_pull": "STIGMER_SANDBOX_AUTO_PULL",
    "cleanup": "STIGMER_SANDBOX_CLEANUP",
    "ttl": "STIGMER_SANDBOX_TTL",
}
_FILE_ONLY = {"auto.rules"}
FILE_SECTION = ("backend", "local", "execution")
CONFIG_PATH_VARIABLE = "STIGMER_CONFIG"


@dataclass(frozen=True)
class SettingKey:
    """One leaf of :class:`Settings`, with the names it goes by in each source."""

    key: str
    annotation: Any
    description: str

    @property
    def variable(self) -> str | None:
        if self.key in _FILE_ONLY:
            return None
        if self.key in _CLI_VARIABLES:
            return _CLI_VARIABLES[self.key]
        section = "EXECUTION" if "." not in self.key else ""
        return "STIGMER_" + "_".join(filter(None, [section, *self.key.split(".")])).upper()

    @property
    def public_name(self) -> str:
        return f"execution.{self.key}"

    @property
    def is_list(self) -> bool:
        return get_origin(self.annotation) is list


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[SettingKey]:
    """Every leaf setting, in declaration order."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from setting_keys(annotation, f"{prefix}{name}.")
        else:
            yield SettingKey(f"{prefix}{name}", annotation, field.description or "")


def find_key(name: str) -> SettingKey:
    """The setting called ``name`` (``execution.mode``, ``mode`` or the full file path)."""
    file_prefix = ".".join(FILE_SECTION) + "."
    key = name
    for prefix in (file_prefix, "execution."):
        key = key.removeprefix(prefix)
    for setting in setting_keys():
        if setting.key == key:
            return setting
    known = ", ".join(s.public_name for s in setting_keys())
    raise InvalidSetting(f"unknown setting {name!r}; known settings: {known}")


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from, phrased for an error message."""

    kind: Literal["default", "file", "env", "override"]
    name: str = ""

    def __str__(self) -> str:
        return {
            "default": "default",
            "file": f"config file {self.name}",
            "env": f"environment variable {self.name}",
            "override": self.name,
        }[self.kind]


@dataclass(frozen=True)
class ResolvedSettings:
    settings: Settings
    origins: dict[str, Origin]

    def value(self, key: str) -> Any:
        node: Any = self.settings
        for part in key.split("."):
            node = getattr(node, part)
        return node


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file: ``$STIGMER_CONFIG`` or ``~/.stigmer/config.yaml``."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_PATH_VARIABLE)
    return Path(explicit).expanduser() if explicit else Path.home() / ".stigmer" / "config.yaml"


def text_to_value(setting: SettingKey, text: str) -> Any:
    """Interpret text from a variable or the command line for ``setting``.

    Lists are comma separated; everything else is left to the model's validation, which
    already understands ``true``/``false``, numbers and durations.
    """
    if setting.is_list:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    override_names: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> ResolvedSettings:
    """Run the cascade. ``override_names`` maps a key to the flag that set it (``--mode``)."""
    env = os.environ if environ is None else environ
    config = ConfigFile(path or config_path(env))
    file_values = config.execution_section()
    raw: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    names = override_names or {}
    for setting in setting_keys():
        value, origin = _pick(setting, overrides or {}, names, env, file_values, config)
        if origin is not None:
            _assign(raw, setting.key, value)
            origins[setting.key] = origin
        else:
            origins[setting.key] = Origin("default")
    _reject_unknown_file_keys(file_values, config)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        raise _explain(error, raw, origins) from None
    _check_auto_rules(settings, origins)
    return ResolvedSettings(settings, origins)


def _pick(
    setting: SettingKey,
    overrides: Mapping[str, Any],
    names: Mapping[str, str],
    env: Mapping[str, str],
    file_values: Mapping[str, Any],
    config: ConfigFile,
) -> tuple[Any, Origin | None]:
    if overrides.get(setting.key) is not None:
        name = names.get(setting.key, f"argument {setting.key}")
        return overrides[setting.key], Origin("override", name)
    variable = setting.variable
    if variable and env.get(variable, "").strip():
        return text_to_value(setting, env[variable]), Origin("env", variable)
    found, value = _lookup(file_values, setting.key)
    if found:
        return value, Origin("file", f"{config.path} key {config.file_key(setting.key)}")
    return None, None


def _lookup(values: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _reject_unknown_file_keys(values: Mapping[str, Any], config: ConfigFile) -> None:
    known = {s.key for s in setting_keys()}
    sections = {k.rsplit(".", 1)[0] for k in known if "." in k}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for name, child in node.items():
            key = f"{prefix}{name}"
            if key in sections and isinstance(child, Mapping):
                walk(child, f"{key}.")
            elif key not in known and key not in sections:
                raise InvalidSetting(
                    f"config file {config.path}: unknown key {config.file_key(key)}; "
                    f"known keys: {', '.join(sorted(known))}"
                )

    walk(values, "")


def _explain(
    error: ValidationError, raw: dict[str, Any], origins: dict[str, Origin]
) -> InvalidSetting:
    """Turn pydantic's report into one line naming the source of the first bad value."""
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    key = ".".join(location)
    while key and key not in origins:
        location.pop()
        key = ".".join(location)
    origin = origins.get(key, Origin("default"))
    found, value = _lookup(raw, key)
    shown = f"{value!r} " if found else ""
    hint = _accepted_values(key) or first["msg"]
    if first["type"] == "string_pattern_mismatch":
        hint = f"expected {find_key(key).description.split(';')[0].rstrip('.')}"
    return InvalidSetting(f"{origin}: {shown}is not a valid execution.{key}: {hint}")


def _accepted_values(key: str) -> str:
    try:
        annotation = find_key(key).annotation
    except InvalidSetting:
        return ""
    choices = [arg for arg in get_args(annotation) if isinstance(arg, str)]
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        choices = [member.value for member in annotation]
    return f"expected one of {', '.join(choices)}" if choices else ""


def _check_auto_rules(settings: Settings, origins: dict[str, Origin]) -> None:
    if not settings.auto.rules:
        return
    from agent_runner.policy import check_rules

    try:
        check_rules(settings.auto.rules)
    except InvalidSetting as error:
        raise InvalidSetting(f"{origins['auto.rules']}: {error}") from None


_cache: tuple[tuple[object, ...], Settings] | None = None


def current_settings() -> Settings:
    """The cascade's settings without flags, re-read only when the file or variables change.

    ``execute_command`` calls this on every command, so the YAML parse is cached against the
    file's modification time and the ``STIGMER_*`` variables.
    """
    global _cache
    path = config_path()
    try:
        stat = path.stat()
        stamp: object = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError:
        stamp = None
    variables = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("STIGMER_")))
    key = (str(path), stamp, variables)
    if _cache is None or _cache[0] != key:
        _cache = (key, resolve(path=path).settings)
    return _cache[1]
