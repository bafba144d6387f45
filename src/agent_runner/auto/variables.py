"""Which variables a sandboxed command set may reach the host shell of an AUTO session.

The host shell runs programs, and a great many variables change what programs run or load:
``BASH_ENV`` is a script bash sources on start, ``LD_PRELOAD`` a library every program
loads, ``GIT_SSH_COMMAND`` a command git runs, ``PAGER`` one ``git log`` runs, ``CC`` one
``make`` runs, ``PIP_INDEX_URL`` where ``pip`` fetches code from. A sandboxed command that
exports one must not make the next local command run what the sandbox chose.

The rule, in the direction of safety: a variable crosses only when **both**

1. its name is not in one of the :data:`FAMILIES` of variables that name code, commands,
   options, libraries, configuration or where code is fetched from (matched on the name
   upper-cased, as exact names, prefixes and suffixes; :data:`HARMLESS` lists the few
   plain-data names inside those families, such as ``NODE_ENV`` or ``GIT_AUTHOR_NAME``), and
2. its value is plain data (:func:`plain_value`): letters, digits, spaces and
   ``_ . , : @ % + = * -``, no word that looks like an option (``--exec=x``; a word is what
   the shell would split off at a space), no ``.``/``..`` path item, at most 1024
   characters. So no ``/`` (paths, path lists, URLs), no quotes, ``$``, ``;``,
   ``|``, backticks or newlines.

A list of families alone would miss names we never heard of (``MYTOOL_CMD=./x``); a shape
rule on values alone would let ``EDITOR=vim`` through, which runs ``vim`` where the user
expects their own editor. Together they refuse what either catches. ``export FOO=bar``,
``DEBUG=1``, ``CI=true``, ``NODE_ENV=production``, ``RUST_BACKTRACE=1`` and
``LANG=C.UTF-8`` cross; ``BASH_ENV``, ``LD_PRELOAD``, ``PYTHONSTARTUP``, ``NODE_OPTIONS``,
``PROMPT_COMMAND``, ``GIT_SSH_COMMAND``, ``EDITOR``, ``http_proxy`` and
``OUTPUT=/tmp/x`` do not. Unsetting follows the names only: unsetting a family member
(``unset GIT_CONFIG_NOSYSTEM``) changes what host programs load just as setting one does.

A refused variable stays in the sandbox, which set it; the result's reason names it and
its family. Variables going the other way, host to sandbox, are not filtered: the sandbox
is the untrusted side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """Variables that name code, commands or configuration, by exact name, prefix or suffix."""

    label: str
    """What the family is, as the reason shows it: ``loader``, ``shell start-up``..."""
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def has(self, upper: str) -> bool:
        return (
            upper in self.names or upper.startswith(self.prefixes) or upper.endswith(self.suffixes)
        )


def _words(text: str) -> frozenset[str]:
    """The words of ``text`` (this module imports nothing of the policy: the host-only path
    of a session loads it, and the parser with it, only when AUTO mode needs it)."""
    return frozenset(text.split())


def _family(label: str, names: str = "", prefixes: str = "", suffixes: str = "") -> Family:
    return Family(label, _words(names), tuple(prefixes.split()), tuple(suffixes.split()))


FAMILIES: tuple[Family, ...] = (
    _family(
        "loader",
        "GCONV_PATH LOCPATH NLSPATH GLIBC_TUNABLES OPENSSL_CONF OPENSSL_ENGINES OPENSSL_MODULES",
        "LD_ DYLD_ __GL __EGL LIBGL_ VK_ MESA_ GTK_ GDK_ GIO_ GST_ GI_ QT_ LIBVA_ VDPAU_ OCL_ "
        "SANE_ P11_KIT_ PKCS11_ SASL_ KRB5 GSS_ LDAP MAGICK_ GS_",
    ),
    _family(
        "shell start-up",
        "BASH_ENV ENV ZDOTDIR INPUTRC BASHOPTS SHELLOPTS IFS CDPATH FPATH GLOBIGNORE EXECIGNORE "
        "FIGNORE HISTFILE HOSTFILE MAIL MAILPATH MAILCHECK POSIXLY_CORRECT BASH_COMPAT "
        "BASH_LOADABLES_PATH BASH_XTRACEFD COMP_WORDBREAKS PROMPT_COMMAND PROMPT RPROMPT RPS1 "
        "PS0 PS1 PS2 PS3 PS4",
        "BASH_FUNC_ KSH_ ZSH_",
    ),
    _family(
        "interpreter start-up",
        "CLASSPATH EXINIT VIMINIT GVIMINIT MYVIMRC MYGVIMRC",
        "PYTHON PERL RUBY NODE_ DENO_ BUN_ LUA_ PHP JAVA _JAVA JDK_ JULIA_ ERL_ ELIXIR_ MIX_ R_ "
        "TCL TK_ OCAML CAML DOTNET_ COMPLUS_ CORECLR_ COR_ GHC CABAL_ STACK_ IPYTHON JUPYTER_ "
        "MPL PYTEST_ COVERAGE_ TOX_ NOX_ VIM EMACS DJANGO_ FLASK_ CELERY_ PYDEVD SCALA GROOVY "
        "KOTLIN CLOJURE LEIN_ SWIFT",
    ),
    _family(
        "git or ssh command",
        "RSYNC_RSH CVS_RSH SUDO_ASKPASS",
        "GIT_ SSH HG SVN_ CVS P4 GNUPG GPG_ RSYNC_",
    ),
    _family(
        "editor or pager",
        "EDITOR VISUAL PAGER MANPAGER MANOPT MANPATH MANROFFOPT MORE BROWSER TERMINAL FCEDIT "
        "SELECTED_EDITOR",
        "LESS SYSTEMD_ BAT_ DELTA_ GH_ GLAB_",
        "_EDITOR _PAGER _BROWSER _VISUAL",
    ),
    _family(
        "proxy or package source",
        "NETRC HOSTALIASES RES_OPTIONS LOCALDOMAIN RESOLV_HOST_CONF SSLKEYLOGFILE "
        "REQUESTS_CA_BUNDLE GOFLAGS GOPROXY GONOPROXY GOPRIVATE GONOSUMDB GONOSUMCHECK GOSUMDB "
        "GOINSECURE GOPATH "
        "GOROOT GOBIN GOCACHE GOMODCACHE GOENV GOTOOLCHAIN GOEXPERIMENT GOWORK GOTOOLDIR GODEBUG "
        "GOVCS GOAUTH GOTELEMETRY",
        "PIP_ UV_ POETRY_ PIPENV_ PDM_ HATCH_ CONDA MAMBA MICROMAMBA NPM_ YARN_ PNPM_ COREPACK_ "
        "GEM_ BUNDLE_ BUNDLER_ COMPOSER MAVEN_ M2_ GRADLE_ SBT_ IVY_ NUGET_ HOMEBREW_ NIX_ SSL_ "
        "GNUTLS_ NSS_ CURL WGET HTTPIE",
        "_PROXY _REGISTRY _INDEX _INDEX_URL _MIRROR _CA_BUNDLE _CA_CERTS _CAINFO _CAPATH",
    ),
    _family(
        "build tool",
        "CC CXX CPP LD AR AS NM RANLIB STRIP OBJCOPY OBJDUMP READELF FC F77 F90 YACC LEX M4 MAKE "
        "MAKEFLAGS MFLAGS GNUMAKEFLAGS MAKEFILES MAKESHELL LDLIBS LIBS CPATH C_INCLUDE_PATH "
        "CPLUS_INCLUDE_PATH OBJC_INCLUDE_PATH LIBRARY_PATH GCC_EXEC_PREFIX COMPILER_PATH "
        "DEPENDENCIES_OUTPUT SUNPRO_DEPENDENCIES RUSTC RUSTDOC RUSTC_WRAPPER "
        "RUSTC_WORKSPACE_WRAPPER",
        "PKG_CONFIG CMAKE_ CCACHE_ DISTCC_ SCCACHE_ AUTOCONF AUTOMAKE ACLOCAL LIBTOOL QMAKE MESON "
        "NINJA BAZEL CARGO_ RUSTUP_ CUDA NVCC CGO_",
        "FLAGS",
    ),
    _family(
        "configuration location",
        "TZDIR XAUTHORITY DISPLAY WAYLAND_DISPLAY VIRTUAL_ENV TERMINFO TERMINFO_DIRS TERMCAP "
        "TEXINPUTS TEXFORMATS TEXPOOL TEXFONTS BIBINPUTS BSTINPUTS",
        "XDG_ DOCKER_ PODMAN_ CONTAINERS_ BUILDAH_ BUILDKIT_ KUBE HELM_ TF_ TERRAFORM_ AWS_ AZURE_ "
        "AZ_ GOOGLE_ CLOUDSDK_ GCLOUD_ ANSIBLE_ VAGRANT_ PACKER_ VAULT_ CONSUL_ NOMAD_ DIRENV_ "
        "ASDF_ MISE_ RTX_ PYENV RBENV_ NODENV_ NVM_ VOLTA_ SDKMAN_ JENV_ PRE_COMMIT HUSKY "
        "LEFTHOOK ELECTRON_ CHROME PUPPETEER_ PLAYWRIGHT_ DBUS_ TEXMF FONTCONFIG_ ALSA_ PULSE_",
        "_HOME _CONFIG _CONF _CFG _RC _DIR _DIRS _ROOT PATH _FILE _FILES _SOCK _SOCKET",
    ),
    _family(
        "command hook",
        "",
        "",
        "_COMMAND _CMD _PROG _PROGRAM _EXEC _EXE _EXECUTABLE _BIN _BINARY _WRAPPER _RUNNER "
        "_SHELL _HOOK _HOOKS _PLUGIN _PLUGINS _PRELOAD _OPTS _OPTIONS _ARGS _INIT _STARTUP "
        "_PROFILE _MODULE _MODULES _LIB _LIBS _LIBRARY _LIBRARIES _ASKPASS _APP _LOADER "
        "_SCRIPT _SCRIPTS _ENGINE",
    ),
)
"""The families of variables that never reach the host from the sandbox, by what they do."""

HARMLESS = _words(
    """
    PYTHONUNBUFFERED PYTHONDONTWRITEBYTECODE PYTHONHASHSEED PYTHONIOENCODING PYTHONUTF8
    PYTHONFAULTHANDLER PYTHONNOUSERSITE PYTHONSAFEPATH PYTHONDEVMODE PYTHONTRACEMALLOC
    PYTHONASYNCIODEBUG PYTHONOPTIMIZE PYTHONVERBOSE PYTHONWARNDEFAULTENCODING
    PYTHONINTMAXSTRDIGITS NODE_ENV NODE_NO_WARNINGS NODE_DEBUG
    GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_AUTHOR_DATE GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
    GIT_COMMITTER_DATE CARGO_TERM_COLOR CARGO_TERM_VERBOSE CARGO_INCREMENTAL CARGO_BUILD_JOBS
    CGO_ENABLED PIP_DISABLE_PIP_VERSION_CHECK PIP_NO_COLOR PIP_NO_INPUT FLASK_ENV FLASK_DEBUG
    DJANGO_DEBUG
    """
)
"""Plain-data names inside the families (their values must still be plain data)."""

MAX_VALUE = 1024
VALUE_REFUSED = "its value looks like a path, URL or command line"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_.,:@%+=* -]*")
_ITEMS = re.compile(r"[ ,:=]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
"""A time zone name (``TZ=Europe/Paris``): relative to the zone directory, no ``..``."""


def family_of(name: str) -> str | None:
    """The label of the family ``name`` belongs to (None: none, or one of :data:`HARMLESS`)."""
    upper = name.upper()
    if upper in HARMLESS:
        return None
    return next((family.label for family in FAMILIES if family.has(upper)), None)


def plain_value(name: str, value: str) -> bool:
    """Whether ``value`` is plain data: no path, URL, option, quoting or shell syntax."""
    if len(value) > MAX_VALUE:
        return False
    if name.upper() == "TZ" and _ZONE.fullmatch(value):
        return True
    if not _PLAIN.fullmatch(value):
        return False
    if any(item in (".", "..") for item in _ITEMS.split(value)):
        return False
    return not any(
        word.startswith("-") and not _NUMBER.fullmatch(word) for word in value.split(" ")
    )


def refusal(name: str, value: str | None) -> str | None:
    """Why setting ``name`` to ``value`` (``None``: unsetting it) must not reach the host
    shell, as the reason shows it; ``None`` when it may."""
    if name.startswith("BASH_FUNC_"):
        return "exported shell function"
    if not _NAME.fullmatch(name):
        return "not a plain variable name"
    family = family_of(name)
    if family is not None:
        return family if value is not None else f"unset; {family}"
    if value is not None and not plain_value(name, value):
        return VALUE_REFUSED
    return None


def split(changes: Mapping[str, str | None]) -> tuple[dict[str, str | None], dict[str, str]]:
    """``changes`` (a sandboxed command's) as what may cross to the host, and what may not
    with the reason for each."""
    crossing: dict[str, str | None] = {}
    refused: dict[str, str] = {}
    for name, value in changes.items():
        why = refusal(name, value)
        if why is None:
            crossing[name] = value
        else:
            refused[name] = why
    return crossing, refused


def describe(refused: Mapping[str, str]) -> str:
    """The note the reason carries: ``not carried to the host: BASH_ENV (shell start-up)``."""
    listed = ", ".join(f"{name} ({why})" for name, why in sorted(refused.items()))
    return f"not carried to the host: {listed}"
