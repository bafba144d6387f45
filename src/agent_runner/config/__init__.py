"""Settings: the sections (``sections``), the cascade that fills them (``settings``) and the
config file shared with the Stigmer CLI (``file``)."""

from agent_runner.config.sections import (
    DEFAULT_SANDBOX_IMAGE,
    LOCAL_BUILD_TAG,
    MAX_YIELD_SECONDS,
    MIB,
    SANDBOX_BACKENDS,
    AutoRule,
    AutoSettings,
    KubernetesSettings,
    McpSettings,
    SandboxSettings,
)
from agent_runner.config.settings import (
    Origin,
    ResolvedSettings,
    SettingKey,
    Settings,
    config_path,
    current_settings,
    find_key,
    resolve,
    setting_keys,
    text_to_value,
)
from agent_runner.modes import ExecutionMode

__all__ = [
    "DEFAULT_SANDBOX_IMAGE",
    "LOCAL_BUILD_TAG",
    "MAX_YIELD_SECONDS",
    "MIB",
    "SANDBOX_BACKENDS",
    "AutoRule",
    "AutoSettings",
    "ExecutionMode",
    "KubernetesSettings",
    "McpSettings",
    "Origin",
    "ResolvedSettings",
    "SandboxSettings",
    "SettingKey",
    "Settings",
    "config_path",
    "current_settings",
    "find_key",
    "resolve",
    "setting_keys",
    "text_to_value",
]
