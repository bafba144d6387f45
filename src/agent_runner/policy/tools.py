"""What AUTO mode knows about individual tools.

:mod:`agent_runner.policy.shell` walks the shell syntax; this module answers questions about
one simple command given its words: is ``pip`` here installing something, which arguments of
``cp`` are written to, where does the command wrapped by ``timeout 5`` start. Words are
passed as ``str`` when their text is known before the command runs and ``None`` when it is
not (a variable, a command substitution), so every answer can fail closed.

Nothing here parses shell syntax or touches the file system. Tables list words separated by
spaces; a package manager's install subcommands are separated by commas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Args = Sequence[str | None]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

_VERSIONED = re.compile(r"^([a-z_]+?)-?(\d+(?:\.\d+)*)$")
_VERSIONED_FAMILIES = _words(
    "pip python pypy ruby perl php node nodejs gem easy_install bash zsh lua"
)


def normalize(name: str) -> str:
    """The tool a command name runs: ``/usr/bin/sudo`` -> ``sudo``, ``pip3.11`` -> ``pip``."""
    base = name.rsplit("/", 1)[-1]
    match = _VERSIONED.match(base)
    if match and match.group(1) in _VERSIONED_FAMILIES:
        return match.group(1)
    return base


# --------------------------------------------------------------------------------------
# Option parsing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One option seen on a command line; ``index``/``offset`` locate its value, if any."""

    name: str
    index: int = -1
    offset: int = 0


@dataclass(frozen=True)
class OptSpec:
    """Which options take a value: short ones by letter, long ones by name (no ``--``)."""

    short: str = ""
    long: frozenset[str] = frozenset()
    numeric_flags: bool = False
    """``-10`` is a flag (``nice -10``, ``kill -9``), not a cluster of options."""


def opts(short: str = "", long: str = "", *, numeric_flags: bool = False) -> OptSpec:
    return OptSpec(short, _words(long), numeric_flags)


@dataclass
class Parsed:
    options: list[Opt] = field(default_factory=list)
    operands: list[int] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        return any(opt.name in names for opt in self.options)

    def values(self, *names: str) -> list[Opt]:
        return [opt for opt in self.options if opt.name in names and opt.index >= 0]


def parse_options(args: Args, spec: OptSpec, *, start: int = 0, permute: bool = True) -> Parsed:
    """Split ``args[start:]`` into options and operand indices, GNU style.

    With ``permute`` options may follow operands (``cp a b -v``); without it the first
    operand ends the options (wrappers: ``sudo -u x cmd -v``) and ``operands`` holds only that
    index. A word whose text is unknown is an operand.
    """
    parsed = Parsed()
    index = start
    while index < len(args):
        word = args[index]
        if word is None or word == "-" or not word.startswith("-"):
            parsed.operands.append(index)
            if not permute:
                return parsed
        elif word == "--":
            rest = range(index + 1, len(args) if permute else min(index + 2, len(args)))
            parsed.operands.extend(rest)
            return parsed
        elif word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            if eq:
                parsed.options.append(Opt(name, index, len(name) + 3))
            elif name in spec.long and index + 1 < len(args):
                index += 1
                parsed.options.append(Opt(name, index))
            else:
                parsed.options.append(Opt(name))
        elif spec.numeric_flags and word[1:].isdigit():
            parsed.options.append(Opt(word[1:]))
        else:
            index = _cluster(args, index, spec, parsed)
        index += 1
    return parsed


def _cluster(args: Args, index: int, spec: OptSpec, parsed: Parsed) -> int:
    """Read ``-abc`` (a value-taking letter takes the rest, or the next word); returns the
    index of the last word used."""
    word = args[index] or ""
    for position, letter in enumerate(word[1:], start=1):
        if letter not in spec.short:
            parsed.options.append(Opt(letter))
            continue
        if position + 1 < len(word):
            parsed.options.append(Opt(letter, index, position + 1))
        elif index + 1 < len(args):
            index += 1
            parsed.options.append(Opt(letter, index))
        else:
            parsed.options.append(Opt(letter))
        break
    return index


# --------------------------------------------------------------------------------------
# Wrappers, privilege, shells and interpreters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrapper:
    """How to find the command a wrapper runs: skip options, ``positionals`` operands, then
    ``NAME=value`` words."""

    spec: OptSpec = OptSpec()
    positionals: int = 0


WRAPPERS: dict[str, Wrapper] = {
    "env": Wrapper(opts("uCS", "unset chdir split-string")),
    "time": Wrapper(opts("fo", "format output")),
    "timeout": Wrapper(opts("sk", "signal kill-after"), positionals=1),
    "nice": Wrapper(opts("n", "adjustment", numeric_flags=True)),
    "nohup": Wrapper(),
    "xargs": Wrapper(
        opts("adEILnPs", "arg-file delimiter eof max-lines max-args max-procs max-chars")
    ),
    "command": Wrapper(),
    "exec": Wrapper(opts("a")),
    "builtin": Wrapper(),
    "stdbuf": Wrapper(opts("ioe", "input output error")),
    "setsid": Wrapper(),
    "ionice": Wrapper(opts("cnp", "class classdata pid")),
    "coproc": Wrapper(),
    "busybox": Wrapper(),
    "watch": Wrapper(opts("nq", "interval equexit")),
}
"""Transparent wrappers: the command they run is analysed as if it were written alone."""

XARGS_REPLACE = ("I", "i", "replace")
"""xargs options that put the input into the arguments instead of appending it."""

PRIVILEGED: dict[str, Wrapper] = {
    "sudo": Wrapper(
        opts("CDghprtTUu", "close-from chdir group host prompt role type other-user user")
    ),
    "doas": Wrapper(opts("Cu")),
    "pkexec": Wrapper(opts("", "user")),
    "run0": Wrapper(opts("ugD", "user group chdir unit property description slice nice setenv")),
    "su": Wrapper(opts("cgGsw", "command group supp-group shell whitelist-environment")),
    "runuser": Wrapper(opts("cgGsuw", "command group supp-group shell user")),
    "sudoedit": Wrapper(opts("CDghprtTUu")),
    "calife": Wrapper(),
}
"""Privilege escalation; the command they run is analysed too."""

PRIVILEGED_CODE_OPTIONS = ("c", "command")
"""``su -c 'cmd'``, ``runuser -c 'cmd'``: the value is shell code."""

SHELLS = _words("sh bash dash zsh ksh mksh ash yash fish rbash")
SHELL_OPTIONS = opts("oO", "rcfile init-file")
"""Shell options with values; ``-c`` is a flag whose code is the first operand."""


@dataclass(frozen=True)
class Interpreter:
    spec: OptSpec
    code: frozenset[str]
    """Options whose value is the program (``python -c``, ``node -e``)."""
    module: str = ""
    """Option naming a module to run as the program (``python -m pip``)."""


INTERPRETERS: dict[str, Interpreter] = {
    "python": Interpreter(opts("cmWX", "check-hash-based-pycs"), _words("c"), module="m"),
    "pypy": Interpreter(opts("cmWX"), _words("c"), module="m"),
    "node": Interpreter(
        opts("eprC", "eval print require import input-type conditions loader"),
        _words("e p eval print"),
    ),
    "nodejs": Interpreter(opts("epr", "eval print require"), _words("e p eval print")),
    "perl": Interpreter(opts("eEIMmdDx"), _words("e E")),
    "ruby": Interpreter(opts("eIrCEFx"), _words("e")),
    "php": Interpreter(opts("rfBRdEc"), _words("r B R E")),
    "lua": Interpreter(opts("el"), _words("e")),
}

FETCHERS = _words("curl wget wget2 fetch http https xh xhs httpie lwp-request GET aria2c curlie")
"""Commands that download from the network."""

NEUTRAL = _words("cd pushd popd true false : exit return set shopt wait shift test [ }")
"""Built-ins that need no local user rule when ``execution.auto.default`` is sandbox."""


# --------------------------------------------------------------------------------------
# Package managers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageTool:
    """A package manager driven by subcommands."""

    installs: frozenset[tuple[str, ...]] = frozenset()
    """Subcommand word sequences that change installed packages (``*``: any word)."""
    safe: frozenset[str] = frozenset()
    """Subcommands known not to install; meeting one first ends the search."""
    spec: OptSpec = OptSpec()
    scan: bool = False
    """Skip unknown words before the subcommand (values of options we do not know)."""
    bare: bool = False
    """Running the tool without a subcommand installs (``yarn``)."""
    always: bool = False
    """Every use fetches and runs, or installs, packages (``npx``)."""


def _tool(
    installs: str,
    safe: str = "",
    spec: OptSpec = OptSpec(),
    *,
    scan: bool = False,
    bare: bool = False,
) -> PackageTool:
    sequences = frozenset(tuple(item.split()) for item in installs.split(",") if item.strip())
    return PackageTool(sequences, _words(safe), spec, scan, bare)


_ALWAYS = PackageTool(always=True)
_NPM = (
    "install, i, in, ins, inst, insta, instal, isnt, isntall, add, ci, clean-install, ic,"
    " install-ci-test, cit, install-test, it, uninstall, un, unlink, remove, rm, r, update, up,"
    " upgrade, udpate, link, ln, exec, x, create, init *, audit fix, rebuild, rb, dedupe, ddp"
)
_NPM_SAFE = (
    "ls list ll la view v info show run run-script rum urn test t tst start stop restart"
    " config c get set help outdated audit pack publish version whoami search s find ping"
    " doctor root prefix bin fund explain why query cache token login logout pkg"
)
_APT = _tool(
    "install, remove, purge, upgrade, update, dist-upgrade, full-upgrade, autoremove,"
    " autopurge, reinstall, build-dep, satisfy, markauto, unmarkauto, safe-upgrade",
    "list show search policy depends rdepends changelog download source madison showsrc help"
    " moo why why-not clean autoclean",
    opts("oct", "option config-file target-release"),
    scan=True,
)
_RPM = _tool(
    "install, remove, erase, update, upgrade, reinstall, downgrade, groupinstall, groupremove,"
    " groupupdate, localinstall, autoremove, distro-sync, swap, makecache, group install,"
    " group remove, group upgrade, module install, module enable, module reset",
    "list info search provides repolist history check-update deplist repoquery help",
    opts("cdeRx", "setopt"),
    scan=True,
)
_CONDA = _tool(
    "install, create, remove, uninstall, update, upgrade, env create, env update, env remove,"
    " self-update",
    "list info search run activate deactivate config clean help",
    opts("npc", "name prefix channel file"),
    scan=True,
)
_BUNDLE = _tool("install, add, update, remove", "exec list show check outdated")

PACKAGE_TOOLS: dict[str, PackageTool] = {
    "pip": _tool(
        "install, uninstall",
        "list show freeze check config debug help search index cache hash inspect download"
        " wheel lock completion",
        opts("", "python log proxy retries timeout exists-action trusted-host cert cache-dir"),
        scan=True,
    ),
    "easy_install": _ALWAYS,
    "ensurepip": _ALWAYS,
    "uv": _tool(
        "pip install, pip uninstall, pip sync, add, remove, sync, tool install, tool run,"
        " tool upgrade, tool uninstall, python install, python uninstall, self update",
        "run lock export tree venv init build publish cache version help pip tool python",
        opts("p", "directory project python config-file cache-dir color"),
        scan=True,
    ),
    "uvx": _ALWAYS,
    "poetry": _tool(
        "add, install, remove, update, sync, self add, self update, self install",
        "run show check build publish lock new init env config shell version help list search"
        " export debug about",
        opts("CP", "directory project"),
        scan=True,
    ),
    "pipenv": _tool(
        "install, uninstall, sync, update, upgrade",
        "run shell graph check lock requirements clean scripts verify open",
        scan=True,
    ),
    "pipx": _tool(
        "install, uninstall, run, inject, uninject, upgrade, upgrade-all, reinstall,"
        " reinstall-all, uninstall-all, ensurepath, install-all",
        "list environment completions runpip",
        scan=True,
    ),
    "conda": _CONDA,
    "mamba": _CONDA,
    "micromamba": _CONDA,
    "npm": _tool(
        _NPM, _NPM_SAFE, opts("w", "prefix registry cache userconfig workspace"), scan=True
    ),
    "pnpm": _tool(
        "install, i, add, remove, rm, uninstall, un, update, up, upgrade, dlx, create, link, ln,"
        " install-test, it, rebuild, rb, self-update, import, fetch, env use",
        "run test t start exec ls list outdated why audit pack publish store root bin config",
        opts("C", "dir filter workspace-dir reporter"),
    ),
    "yarn": _tool(
        "add, install, remove, upgrade, up, dlx, create, global add, global remove,"
        " global upgrade, link, unlink, import, upgrade-interactive",
        "run test start build list info why outdated audit config help bin cache pack publish"
        " version workspaces workspace init node exec",
        opts("", "cwd modules-folder cache-folder"),
        bare=True,
    ),
    "bun": _tool(
        "install, i, add, a, remove, rm, update, x, create, link, upgrade, pm trust",
        "run test build init pm repl outdated publish",
        opts("", "cwd config"),
    ),
    "bunx": _ALWAYS,
    "npx": _ALWAYS,
    "pnpx": _ALWAYS,
    "deno": _tool("install, uninstall, add, remove, upgrade", "run test fmt lint task check"),
    "apt": _APT,
    "apt-get": _APT,
    "aptitude": _APT,
    "yum": _RPM,
    "dnf": _RPM,
    "microdnf": _RPM,
    "tdnf": _RPM,
    "apk": _tool(
        "add, del, upgrade, update, fix, cache sync",
        "info search list policy stats version dot audit",
        opts("pXt", "root repository"),
        scan=True,
    ),
    "zypper": _tool(
        "install, in, remove, rm, update, up, dist-upgrade, dup, patch, refresh, ref,"
        " source-install, si, addrepo, ar",
        "search se info if list-updates lu patches repos lr",
        scan=True,
    ),
    "snap": _tool("install, remove, refresh, revert, enable, disable", "list info find"),
    "flatpak": _tool("install, uninstall, update, remove", "list info search run"),
    "brew": _tool(
        "install, uninstall, remove, rm, upgrade, reinstall, update, tap, untap, link, unlink,"
        " bundle",
        "list ls info search deps uses outdated config doctor home prefix leaves",
        scan=True,
    ),
    "port": _tool("install, uninstall, upgrade, selfupdate, activate", "list search info"),
    "pkg": _tool("install, add, delete, remove, upgrade, update, autoremove", "info search"),
    "gem": _tool(
        "install, uninstall, update",
        "list search info contents env which help build query",
        scan=True,
    ),
    "bundle": _BUNDLE,
    "bundler": _BUNDLE,
    "cargo": _tool(
        "install, uninstall",
        "build b test t run r check c fmt clippy doc new init add bench clean tree update"
        " search publish metadata",
        scan=True,
    ),
    "go": _tool(
        "install, get",
        "build test run vet fmt mod env version list doc tool generate clean work",
        opts("C"),
    ),
    "composer": _tool(
        "require, install, update, remove, global require, create-project",
        "show dump-autoload validate run-script run exec",
        scan=True,
    ),
    "cpanm": _ALWAYS,
    "cpan": _tool("*"),
    "luarocks": _tool("install, remove", "list search show"),
    "opam": _tool("install, remove, upgrade, reinstall, update, switch create", "list show"),
    "cabal": _tool("install", "build run test repl"),
    "stack": _tool("install, setup", "build run test exec"),
    "rustup": _tool(
        "install, update, toolchain install, component add, target add, self update",
        "show which run default override doc",
    ),
    "dotnet": _tool(
        "tool install, tool update, add package, add * package, workload install",
        "build run test publish new restore",
    ),
    "winget": _tool("install, uninstall, upgrade", "list search show"),
    "choco": _tool("install, uninstall, upgrade", "list search info"),
    "scoop": _tool("install, uninstall, update", "list search info"),
    "nix": _tool(
        "profile install, profile remove, profile upgrade",
        "build run develop shell eval flake search",
    ),
}

_MAKE_SPEC = opts("CfIjlWo", "directory file include-dir")
_FLAG_STYLE = _words("dpkg rpm nix-env pacman yay paru")


def installs_packages(name: str, args: Args) -> bool:
    """Whether ``name args...`` installs, removes or upgrades packages."""
    if name in _FLAG_STYLE:
        return _flag_style_install(name, args)
    if name == "cmake":
        return "--install" in args
    if name in ("make", "ninja", "gmake"):
        targets = parse_options(args, _MAKE_SPEC).operands
        return any(args[i] in ("install", "uninstall") for i in targets)
    tool = PACKAGE_TOOLS.get(name)
    if tool is None:
        return False
    if tool.always:
        return True
    parsed = parse_options(args, tool.spec)
    words = [args[i] for i in parsed.operands if not (args[i] or "").startswith("+")]
    if not words:
        return tool.bare
    for start in range(len(words) if tool.scan else 1):
        if any(_starts_with(words[start:], pattern) for pattern in tool.installs):
            return True
        if words[start] in tool.safe:
            return False
    return False


def _starts_with(words: Sequence[str | None], pattern: tuple[str, ...]) -> bool:
    if len(words) < len(pattern):
        return False
    return all(w == p or (p == "*" and w is not None) for w, p in zip(words, pattern, strict=False))


def _flag_style_install(name: str, args: Args) -> bool:
    """dpkg, rpm, nix-env and pacman choose their action with an option."""
    for word in args:
        if word is None or not word.startswith("-"):
            continue
        letter = word[1:2]
        if name == "dpkg" and (
            word in ("-i", "-r", "-P", "--unpack", "--configure")
            or word.startswith(("--install", "--remove", "--purge"))
        ):
            return True
        if name == "rpm" and (
            letter in ("i", "U", "F", "e")
            or word in ("--install", "--upgrade", "--freshen", "--erase", "--reinstall")
        ):
            return True
        if name == "nix-env" and word in (
            "-i",
            "-e",
            "-u",
            "--install",
            "--uninstall",
            "--upgrade",
        ):
            return True
        if name in ("pacman", "yay", "paru"):
            if word in ("--sync", "--remove", "--upgrade") or letter in ("R", "U"):
                return True
            if letter == "S" and not word.startswith("--"):
                extra = set(word[2:])
                queries_only = bool(extra & set("silgp")) and not extra & set("yu")
                if not queries_only:
                    return True
    return name in ("yay", "paru") and not any(a is not None and a.startswith("-") for a in args)


# --------------------------------------------------------------------------------------
# System administration
# --------------------------------------------------------------------------------------

ADMIN = _words(
    "systemctl service mount umount fdisk sfdisk cfdisk gdisk sgdisk parted partprobe wipefs"
    " mkswap swapon swapoff losetup cryptsetup dmsetup mke2fs tune2fs modprobe insmod rmmod"
    " depmod iptables ip6tables iptables-restore ip6tables-restore nft ufw firewall-cmd useradd"
    " usermod userdel adduser deluser groupadd groupmod groupdel addgroup delgroup passwd"
    " chpasswd chage visudo vipw vigr crontab shutdown reboot halt poweroff init telinit pkill"
    " killall killall5 hostnamectl timedatectl localectl launchctl update-alternatives"
    " update-rc.d chkconfig ldconfig grub-install update-grub chroot setenforce chattr lvcreate"
    " lvremove vgcreate vgremove pvcreate pvremove mdadm zpool zfs dracut update-initramfs"
)
_IP_CHANGES = _words("add del delete set flush change replace append exec")


def administers(name: str, args: Args) -> bool:
    """Whether ``name args...`` administers the machine (services, disks, users, processes)."""
    if name.startswith("mkfs"):
        return True
    if name == "sysctl":
        return any(a is None or a in ("-w", "--write", "-p", "--load") or "=" in a for a in args)
    if name in ("ip", "route"):
        return any(a is None or a in _IP_CHANGES for a in args)
    if name in ("ifconfig", "hostname"):
        operands = [a for a in args if a is None or not a.startswith("-")]
        return len(operands) > (1 if name == "ifconfig" else 0)
    return name in ADMIN


# --------------------------------------------------------------------------------------
# Writes: which arguments name paths a command creates, changes or removes
# --------------------------------------------------------------------------------------

CWD = -1
"""Index meaning "the current directory itself" (``wget url`` saves into it)."""


@dataclass(frozen=True)
class Loc:
    """A written path: ``args[index][offset:]``, or the current directory when index is CWD."""

    index: int
    offset: int = 0
    stop: str = ""
    """The path ends before the first of these characters (``-v /etc:/x`` stops at ``:``)."""
    removes: bool = False
    """The path itself is removed, so removing the workspace directory itself counts."""


@dataclass(frozen=True)
class Writer:
    kind: str
    """``all`` operands, the ``last`` operand, or ``after-first`` (``chmod MODE FILE...``)."""
    spec: OptSpec = OptSpec()
    target_option: tuple[str, ...] = ()
    """Options whose value is the target directory (``cp -t DIR``)."""


_TARGET = ("t", "target-directory")
_CP_SPEC = opts("St", "suffix target-directory")
WRITERS: dict[str, Writer] = {
    "rm": Writer("all"),
    "rmdir": Writer("all"),
    "unlink": Writer("all"),
    "shred": Writer("all", opts("ns", "iterations size random-source")),
    "touch": Writer("all", opts("dtr", "date reference time")),
    "mkdir": Writer("all", opts("m", "mode context")),
    "mkfifo": Writer("all", opts("m", "mode")),
    "truncate": Writer("all", opts("sr", "size reference")),
    "tee": Writer("all"),
    "mv": Writer("all", _CP_SPEC, _TARGET),
    "cp": Writer("last", _CP_SPEC, _TARGET),
    "ln": Writer("last", _CP_SPEC, _TARGET),
    "install": Writer("last", opts("gmoStC", "group mode owner suffix target-directory"), _TARGET),
    "rsync": Writer(
        "last",
        opts("eBfT", "rsh filter exclude include exclude-from include-from files-from temp-dir"),
    ),
    "scp": Writer("last", opts("cFiJloPSDX")),
    "chmod": Writer("after-first"),
    "chown": Writer("after-first"),
    "chgrp": Writer("after-first"),
}
_REMOVERS = _words("rm rmdir unlink")
_CHMOD_MODE = re.compile(
    r"^(?:[0-7]{3,4}|[ugoa]*(?:[-+=][rwxXstugo]*)+(?:,[ugoa]*(?:[-+=][rwxXstugo]*)+)*)$"
)
_REMOTE = re.compile(r"^(?:[\w.-]+@)?[\w.-]+:|^\w+://")


def write_locations(name: str, args: Args) -> list[Loc]:
    """The paths ``name args...`` writes to (not those it only reads)."""
    special = _SPECIAL_WRITERS.get(name)
    if special is not None:
        return special(args)
    writer = WRITERS.get(name)
    if writer is None:
        return []
    if name == "chmod":
        # ``chmod -x file``: the mode looks like an option; read it as an operand.
        args = [a if a is None or not _CHMOD_MODE.match(a) else "\0" + a for a in args]
    parsed = parse_options(args, writer.spec)
    remote = name in ("rsync", "scp")
    operands = [i for i in parsed.operands if not (remote and _REMOTE.match(args[i] or ""))]
    targets = [Loc(opt.index, opt.offset) for opt in parsed.values(*writer.target_option)]
    if name == "mv":
        sources = operands if targets else operands[:-1]
        return targets + [Loc(i, removes=i in sources) for i in operands]
    if writer.kind == "all" or (name == "install" and parsed.has("d", "directory")):
        return targets + [Loc(i, removes=name in _REMOVERS) for i in operands]
    if writer.kind == "after-first":
        return [Loc(i) for i in (operands if parsed.has("reference") else operands[1:])]
    if targets:
        return targets
    if name == "ln" and len(operands) == 1:
        return [Loc(CWD)]
    if remote and len(parsed.operands) < 2:
        return []
    return [Loc(operands[-1])] if operands else []


def _dd(args: Args) -> list[Loc]:
    return [Loc(i, 3) for i, a in enumerate(args) if a is None or a.startswith("of=")]


def _sed(args: Args) -> list[Loc]:
    """``sed -i`` edits its file operands in place."""
    parsed = parse_options(args, opts("efl", "expression file line-length"))
    in_place = any(o.name == "i" or o.name.startswith("in-place") for o in parsed.options)
    # ``-i.bak`` reads as the cluster i . b a k; that is still in place.
    if not in_place:
        return []
    scripted = parsed.has("e", "f", "expression", "file")
    return [Loc(i) for i in (parsed.operands if scripted else parsed.operands[1:])]


def _values(args: Args, parsed: Parsed, *names: str) -> list[Loc]:
    """Option values naming files, except ``-`` (standard output)."""
    found = parsed.values(*names)
    return [Loc(o.index, o.offset) for o in found if (args[o.index] or "")[o.offset :] != "-"]


_CURL_SPEC = opts(
    "AbcCdDeEFHKmoPQrtTuUwxXyYz",
    "output output-dir dump-header cookie-jar trace trace-ascii stderr libcurl etag-save data"
    " header user url request cookie form referer user-agent proxy config max-time",
)
_CURL_FILES = (
    "o D c output output-dir dump-header cookie-jar trace trace-ascii stderr libcurl etag-save"
)


def _curl(args: Args) -> list[Loc]:
    parsed = parse_options(args, _CURL_SPEC)
    found = _values(args, parsed, *_CURL_FILES.split())
    if parsed.has("O", "remote-name", "remote-name-all") and not parsed.has("output-dir"):
        found.append(Loc(CWD))
    return found


_WGET_SPEC = opts(
    "OoaeiBtTwQPUlDARIXn",
    "output-document output-file append-output directory-prefix save-cookies input-file"
    " execute user-agent header tries",
)


def downloads(name: str, args: Args) -> tuple[list[Loc], list[int]]:
    """Files a download command saves: explicit outputs, and URL operands saved under their
    own name (``curl -O URL``, ``wget URL``)."""
    if name == "curl":
        parsed = parse_options(args, _CURL_SPEC)
        remote = parsed.has("O", "remote-name", "remote-name-all")
        return _values(args, parsed, "o", "output"), parsed.operands if remote else []
    if name in ("wget", "wget2"):
        parsed = parse_options(args, _WGET_SPEC)
        named = _values(args, parsed, "O", "output-document")
        if named or parsed.has("O", "output-document", "P", "directory-prefix"):
            return named, []
        return [], parsed.operands
    return [], []


def url_file_name(url: str) -> str:
    """The name ``wget``/``curl -O`` save a URL under."""
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", url).split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1] or "index.html"


def _wget(args: Args) -> list[Loc]:
    parsed = parse_options(args, _WGET_SPEC)
    found = _values(
        args, parsed, "O", "o", "a", "P", "output-document", "output-file", "append-output",
        "directory-prefix", "save-cookies",
    )  # fmt: skip
    if not parsed.has("O", "P", "output-document", "directory-prefix"):
        found.append(Loc(CWD))
    return found


_TAR_VALUES = "fCTXbgKNLVHI"
_TAR_LONG_MODES = {"extract": "x", "get": "x", "create": "c", "append": "r", "update": "u"}


def _tar(args: Args) -> list[Loc]:
    """Extracting writes into ``-C DIR`` (or the cwd); creating writes the ``-f`` archive."""
    modes: set[str] = set()
    values: dict[str, Loc] = {}
    pending: list[str] = []
    for index, word in enumerate(args):
        if pending:
            values[pending.pop(0)] = Loc(index)
        elif word is None:
            continue
        elif word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            modes.add(_TAR_LONG_MODES.get(name, ""))
            key = {"directory": "C", "file": "f"}.get(name)
            if key and eq:
                values[key] = Loc(index, len(name) + 3)
            elif key:
                pending.append(key)
        elif word.startswith("-") or index == 0:
            dashed = word.startswith("-")
            letters = word[1:] if dashed else word
            for position, letter in enumerate(letters):
                modes.add(letter)
                if letter in _TAR_VALUES:
                    if dashed and position + 1 < len(letters):
                        values[letter] = Loc(index, position + 2)
                        break
                    pending.append(letter)
    found: list[Loc] = []
    if "x" in modes:
        found.append(values.get("C", Loc(CWD)))
    archive = values.get("f")
    creates = bool(modes & set("cruA"))
    if creates and archive is not None and (args[archive.index] or "")[archive.offset :] != "-":
        found.append(archive)
    return found


def _unzip(args: Args) -> list[Loc]:
    parsed = parse_options(args, opts("dPx"))
    return [Loc(o.index, o.offset) for o in parsed.values("d")] or [Loc(CWD)]


def _sort(args: Args) -> list[Loc]:
    spec = opts("kotST", "key output field-separator buffer-size temporary-directory")
    return _values(args, parse_options(args, spec), "o", "output")


_GIT_GLOBAL = opts("Cc", "git-dir work-tree namespace config-env")
_GIT_CLONE = opts(
    "bocuj",
    "branch origin config depth reference reference-if-able separate-git-dir template"
    " upload-pack jobs filter shallow-since shallow-exclude server-option bundle-uri",
)


def _git(args: Args) -> list[Loc]:
    """``git clone URL DIR`` and ``git init DIR`` create DIR."""
    head = parse_options(args, _GIT_GLOBAL, permute=False)
    if not head.operands or args[head.operands[0]] not in ("clone", "init"):
        return []
    start = head.operands[0]
    sub = parse_options(args, _GIT_CLONE, start=start + 1)
    targets = _values(args, sub, "separate-git-dir")
    position = 1 if args[start] == "clone" else 0
    if len(sub.operands) > position:
        targets.append(Loc(sub.operands[position]))
    elif args[start] == "clone":
        targets.append(Loc(CWD))
    return targets


_SPECIAL_WRITERS: dict[str, Callable[[Args], list[Loc]]] = {
    "dd": _dd,
    "sed": _sed,
    "curl": _curl,
    "wget": _wget,
    "tar": _tar,
    "gtar": _tar,
    "bsdtar": _tar,
    "unzip": _unzip,
    "sort": _sort,
    "git": _git,
}


@dataclass
class FindPlan:
    """What ``find`` does: its roots, whether it changes them, and the commands it runs."""

    roots: list[Loc]
    modifies: bool = False
    files: list[Loc] = field(default_factory=list)
    """Files written by ``-fprint`` and friends."""
    runs: list[tuple[int, int]] = field(default_factory=list)
    """``-exec cmd ... ;`` as ranges ``args[start:end]``."""


_FIND_ACTIONS = _words("-exec -execdir -ok -okdir")
_FIND_FILES = _words("-fprint -fprint0 -fls -fprintf")


def find_plan(args: Args) -> FindPlan:
    index = 0
    while index < len(args) and args[index] in ("-H", "-L", "-P", "-D"):
        index += 2 if args[index] == "-D" else 1
    roots: list[Loc] = []
    while index < len(args):
        word = args[index]
        if word is not None and (word.startswith("-") or word in ("(", "!", ")", ",")):
            break
        roots.append(Loc(index, removes=True))
        index += 1
    plan = FindPlan(roots or [Loc(CWD)])
    while index < len(args):
        word = args[index]
        if word == "-delete":
            plan.modifies = True
        elif word in _FIND_FILES and index + 1 < len(args):
            index += 1
            plan.files.append(Loc(index))
        elif word in _FIND_ACTIONS:
            plan.modifies = True
            end = index + 1
            while end < len(args) and args[end] not in (";", "+"):
                end += 1
            plan.runs.append((index + 1, end))
            index = end
        index += 1
    return plan


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

CONTAINER_TOOLS = _words("docker podman nerdctl")
_HOST_ACCESS = (
    "--privileged",
    "--pid=host",
    "--userns=host",
    "--ipc=host",
    "--uts=host",
    "--cap-add",
    "--device",
    "--security-opt",
)


def container_host_access(args: Args) -> bool:
    """Whether a container command asks for host privileges (``--privileged`` and the like)."""
    prefixes = tuple(option + "=" for option in _HOST_ACCESS)
    return any(a is not None and (a in _HOST_ACCESS or a.startswith(prefixes)) for a in args)


def container_mounts(args: Args) -> list[Loc]:
    """Host paths bind-mounted into a container (``-v /etc:/x``, ``--mount source=/etc``)."""
    found: list[Loc] = []
    for index, word in enumerate(args):
        value = args[index + 1] if index + 1 < len(args) else ""
        if word in ("-v", "--volume") and (value is None or value.startswith(("/", "~", "."))):
            found.append(Loc(index + 1, 0, ":"))
        elif word == "--mount" and value != "":
            match = re.search(r"(?:^|,)(?:source|src)=", value or "source=")
            if match is not None:
                found.append(Loc(index + 1, match.end() if value else 0, ","))
        elif word is not None and word.startswith("--volume=") and word[9:10] in ("/", "~", "."):
            found.append(Loc(index, 9, ":"))
    return found
