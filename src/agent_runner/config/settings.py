"""Typed settings and the cascade that fills them.

The cascade is shared with the Stigmer CLI: an explicit override (CLI flag or API argument)
beats a ``STIGMER_*`` environment variable, which beats ``~/.stigmer/config.yaml``
(``backend.local.execution.*``), which beats the default. Every leaf setting remembers where
its value came from, so a bad value is reported against the flag, variable or file key that
supplied it, and ``agent-runner config list`` can show the origin of each value.

``Settings(mode="sandbox")`` runs the cascade with its keywords on top, so what a user keeps
in the config file (the image, limits) is never silently lost; ``Settings.defaults(...)``
is the plain model with nothing read, for tests and for callers that want exactly that.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field, SecretStr, ValidationError

from agent_runner.config.file import SECTION as FILE_SECTION
from agent_runner.config.file import ConfigFile
from agent_runner.config.sections import (
    DEFAULT_SANDBOX_IMAGE,
    MIB,
    AutoSettings,
    McpSettings,
    SandboxSettings,
    Seconds,
    Section,
)
from agent_runner.errors import InvalidSetting
from agent_runner.modes import ExecutionMode

_PLAIN: ContextVar[bool] = ContextVar("agent_runner_plain_settings", default=False)
"""Set while complete values are turned into a model, so the cascade runs only once."""


@contextmanager
def _plain() -> Iterator[None]:
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


class Settings(Section):
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
    mcp: McpSettings = Field(default_factory=McpSettings)

    def __init__(self, **overrides: Any) -> None:
        """The cascade's settings with ``overrides`` on top (nested sections as mappings or
        section models: ``Settings(mode="sandbox", sandbox={"network": "none"})``)."""
        if _PLAIN.get():
            super().__init__(**overrides)
            return
        resolved = resolve(flatten_overrides(overrides)).settings
        with _plain():
            super().__init__(**dict(resolved))

    @classmethod
    def defaults(cls, **values: Any) -> Settings:
        """The built-in defaults with ``values`` on top; no file or variable is read."""
        return cls.model_validate(values)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Settings:
        """Plain validation of complete data (as pydantic does it): no cascade."""
        with _plain():
            return super().model_validate(obj, **options)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Settings:
        """Plain validation of complete data (as pydantic does it): no cascade."""
        with _plain():
            return super().model_validate_json(json_data, **options)


def flatten_overrides(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Keyword overrides as dotted keys (``sandbox.network``); unknown keys are errors."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        is_section = any(s.key.startswith(f"{key}.") for s in setting_keys())
        if is_section and isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        if is_section and isinstance(value, Mapping):
            flat.update(flatten_overrides(value, f"{key}."))
        else:
            flat[find_key(key).key] = value
    return flat


# Environment variables whose names the Stigmer CLI fixed; the rest follow
# ``STIGMER_<SECTION>_<KEY>`` (``sandbox.network`` -> ``STIGMER_SANDBOX_NETWORK``).
_CLI_VARIABLES = {
    "mode": "STIGMER_EXECUTION_MODE",
    "sandbox_image": "STIGMER_SANDBOX_IMAGE",
    "auto_pull": "STIGMER_SANDBOX_AUTO_PULL",
    "cleanup": "STIGMER_SANDBOX_CLEANUP",
    "ttl": "STIGMER_SANDBOX_TTL",
    # The Daytona SDK's and the Stigmer worker's own names.
    "sandbox.daytona.api_key": "DAYTONA_API_KEY",
    "sandbox.daytona.api_url": "DAYTONA_API_URL",
    "sandbox.daytona.target": "DAYTONA_TARGET",
    "sandbox.daytona.snapshot": "DAYTONA_DEV_TOOLS_SNAPSHOT_ID",
}
_FILE_ONLY = {"auto.rules"}
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

    @property
    def is_mapping(self) -> bool:
        return get_origin(self.annotation) is dict

    @property
    def is_secret(self) -> bool:
        """Never printed (an API key): ``config`` shows ``***`` for it."""
        return SecretStr in (self.annotation, *get_args(self.annotation))


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

    Lists are comma separated, mappings ``key=value`` pairs so; everything else is left to
    the model's validation, which already understands ``true``/``false``, numbers and
    durations.
    """
    if setting.is_list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if setting.is_mapping:
        pairs = [item.partition("=") for item in text.split(",") if item.strip()]
        if any(not sep or not key.strip() for key, sep, _ in pairs):
            raise InvalidSetting(f"{setting.public_name}: expected key=value[,key=value...]")
        return {key.strip(): value.strip() for key, _, value in pairs}
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
    hint = _accepted_values(key) or first["msg"].removeprefix("Value error, ")
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
    fixed = set(_CLI_VARIABLES.values())
    variables = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("STIGMER_") or k in fixed)
    )
    key = (str(path), stamp, variables)
    if _cache is None or _cache[0] != key:
        _cache = (key, resolve(path=path).settings)
    return _cache[1]
