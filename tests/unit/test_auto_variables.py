"""Which variables a sandboxed command set may reach the host shell (AUTO), family by family."""

from __future__ import annotations

import pytest

from agent_runner.auto.variables import VALUE_REFUSED, describe, family_of, refusal, split

FAMILIES = {
    "loader": [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "GCONV_PATH",
        "LOCPATH",
        "GLIBC_TUNABLES",
        "OPENSSL_CONF",
        "GTK_MODULES",
        "QT_PLUGIN_PATH",
        "KRB5_CONFIG",
    ],
    "shell start-up": [
        "BASH_ENV",
        "ENV",
        "ZDOTDIR",
        "PROMPT_COMMAND",
        "PS0",
        "PS1",
        "PS4",
        "IFS",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "FPATH",
        "INPUTRC",
        "HISTFILE",
        "BASH_LOADABLES_PATH",
    ],
    "interpreter start-up": [
        "PYTHONSTARTUP",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUSERBASE",
        "PYTHONWARNINGS",
        "PYTHONBREAKPOINT",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "LUA_INIT",
        "PHPRC",
        "DOTNET_STARTUP_HOOKS",
        "IPYTHONDIR",
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "DJANGO_SETTINGS_MODULE",
        "FLASK_APP",
        "VIMINIT",
    ],
    "git or ssh command": [
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_TEMPLATE_DIR",
        "GIT_ASKPASS",
        "GIT_DIR",
        "GIT_EXTERNAL_DIFF",
        "SSH_ASKPASS",
        "SSH_AUTH_SOCK",
        "SUDO_ASKPASS",
        "RSYNC_RSH",
        "GNUPGHOME",
    ],
    "editor or pager": [
        "EDITOR",
        "VISUAL",
        "PAGER",
        "MANPAGER",
        "GIT_PAGER",  # git's family comes first; either way refused
        "LESSOPEN",
        "LESSCLOSE",
        "LESS",
        "BROWSER",
        "SYSTEMD_PAGER",
        "GH_EDITOR",
        "SVN_EDITOR",
    ],
    "proxy or package source": [
        "http_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "no_proxy",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "UV_INDEX_URL",
        "NPM_CONFIG_REGISTRY",
        "npm_config_script_shell",
        "YARN_REGISTRY",
        "GOPROXY",
        "GOFLAGS",
        "GOTOOLCHAIN",
        "GEM_HOST_API_KEY",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ],
    "build tool": [
        "CC",
        "CXX",
        "LD",
        "MAKE",
        "MAKEFLAGS",
        "MAKEFILES",
        "CFLAGS",
        "LDFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "CARGO_HOME",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
        "CMAKE_TOOLCHAIN_FILE",
        "PKG_CONFIG_PATH",
        "CGO_CFLAGS",
    ],
    "configuration location": [
        "XDG_CONFIG_HOME",
        "XDG_DATA_DIRS",
        "TERMINFO",
        "KUBECONFIG",
        "DOCKER_CONFIG",
        "DOCKER_HOST",
        "AWS_CONFIG_FILE",
        "VIRTUAL_ENV",
        "JAVA_HOME",  # interpreter start-up comes first; either way refused
        "MANPATH",  # editor or pager first
        "INFOPATH",
        "BUILD_DIR",
        "MYTOOL_CONFIG",
        "MYTOOL_HOME",
    ],
    "command hook": [
        "MYTOOL_COMMAND",
        "DEPLOY_CMD",
        "FORMATTER_PROG",
        "LINT_WRAPPER",
        "TEST_RUNNER",
        "APP_SHELL",
        "PRE_HOOK",
        "SOMETHING_PLUGINS",
        "EXTRA_OPTS",
        "TOOL_ARGS",
        "WEB_APP",
    ],
}


@pytest.mark.parametrize(
    ("family", "name"), [(family, name) for family, names in FAMILIES.items() for name in names]
)
def test_every_family_is_refused_whatever_the_value(family, name):
    why = refusal(name, "1")
    assert why is not None, name
    assert family_of(name) is not None
    if name not in ("GIT_PAGER", "JAVA_HOME", "MANPATH", "GH_EDITOR", "SVN_EDITOR"):
        assert why == family


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FOO", "bar"),
        ("DEBUG", "1"),
        ("DEBUG", "app:*,-noise"),
        ("CI", "true"),
        ("NODE_ENV", "production"),
        ("RUST_BACKTRACE", "1"),
        ("RUST_LOG", "info,hyper=warn"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "en_US.UTF-8"),
        ("TZ", "Europe/Paris"),
        ("TZ", "UTC"),
        ("TERM", "xterm-256color"),
        ("PYTHONUNBUFFERED", "1"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("GIT_AUTHOR_NAME", "Jane Doe"),
        ("GIT_AUTHOR_EMAIL", "jane@example.com"),
        ("API_TOKEN", "abc123"),
        ("PORT", "8080"),
        ("HOSTPORT", "localhost:5432"),
        ("OFFSET", "-1"),
        ("GREETING", "hello world"),
        ("EMPTY", ""),
    ],
)
def test_plain_data_crosses(name, value):
    assert refusal(name, value) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OUTPUT", "/tmp/x"),
        ("OUTPUT", "./x"),
        ("DATABASE_URL", "postgres://u:p@db/app"),
        ("SOMETHING", "a;b"),
        ("SOMETHING", "$(id)"),
        ("SOMETHING", "`id`"),
        ("SOMETHING", "a|b"),
        ("SOMETHING", "line\nbreak"),
        ("SOMETHING", "'quoted'"),
        ("SOMETHING", "--exec=x"),
        ("SOMETHING", "a --exec x"),
        ("SOMETHING", "."),
        ("SOMETHING", ".:lib"),
        ("SOMETHING", "~"),
        ("SOMETHING", "x" * 2000),
        ("TZ", "/etc/localtime"),
        ("TZ", "../../workspace/zone"),
    ],
)
def test_values_that_look_like_paths_or_commands_stay(name, value):
    assert refusal(name, value) == VALUE_REFUSED


def test_exported_functions_and_odd_names_stay():
    assert refusal("BASH_FUNC_ls%%", "() { touch x; }") == "exported shell function"
    assert refusal("weird-name", "1") == "not a plain variable name"


def test_unsetting_follows_the_name_only():
    assert refusal("FOO", None) is None
    assert refusal("OUTPUT", None) is None
    assert refusal("GIT_CONFIG_NOSYSTEM", None) == "unset; git or ssh command"
    assert refusal("LD_PRELOAD", None) == "unset; loader"


def test_split_and_the_note_the_reason_carries():
    crossing, refused = split(
        {"BASH_ENV": "./plant.sh", "LD_PRELOAD": "./x.so", "FOO": "bar", "GONE": None}
    )
    assert crossing == {"FOO": "bar", "GONE": None}
    assert describe(refused) == (
        "not carried to the host: BASH_ENV (shell start-up), LD_PRELOAD (loader)"
    )
