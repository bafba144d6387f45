"""The tool tables: which commands wrap others, escalate privileges, run code, download,
install packages, administer the machine or write files, and how to read their options.

Only data (and the records it is written in). The questions asked of it live in
:mod:`~agent_runner.policy.tools.classify` and :mod:`~agent_runner.policy.tools.writes`;
the walk (:mod:`~agent_runner.policy.commands`) looks commands up here by their normalized
name. Tables list words separated by spaces; a package manager's install subcommands are
separated by commas.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_runner.policy.tools.options import NO_VALUES, OptSpec, opts, word_set

VERSIONED_FAMILIES = word_set(
    "pip python pypy ruby perl php node nodejs gem easy_install bash zsh lua"
)
"""Tools whose command names may carry a version (``pip3.11``, ``python3``)."""


# --------------------------------------------------------------------------------------
# Wrappers, privilege, shells and interpreters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrapper:
    """How to find the command a wrapper runs: skip options, ``positionals`` operands, then
    ``NAME=value`` words."""

    spec: OptSpec = NO_VALUES
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

SHELLS = word_set("sh bash dash zsh ksh mksh ash yash fish rbash")
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
    "python": Interpreter(opts("cmWX", "check-hash-based-pycs"), word_set("c"), module="m"),
    "pypy": Interpreter(opts("cmWX"), word_set("c"), module="m"),
    "node": Interpreter(
        opts("eprC", "eval print require import input-type conditions loader"),
        word_set("e p eval print"),
    ),
    "nodejs": Interpreter(opts("epr", "eval print require"), word_set("e p eval print")),
    "perl": Interpreter(opts("eEIMmdDx"), word_set("e E")),
    "ruby": Interpreter(opts("eIrCEFx"), word_set("e")),
    "php": Interpreter(opts("rfBRdEc"), word_set("r B R E")),
    "lua": Interpreter(opts("el"), word_set("e")),
}

FETCHERS = word_set("curl wget wget2 fetch http https xh xhs httpie lwp-request GET aria2c curlie")
"""Commands that download from the network."""

NEUTRAL = word_set("cd pushd popd true false : exit return set shopt wait shift test [ }")

DETACHERS = word_set(
    "nohup setsid disown coproc daemon daemonize start-stop-daemon screen tmux at batch "
    "systemd-run dtach abduco"
)
"""Commands that leave a process running after the command that started them returns."""
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
    spec: OptSpec = NO_VALUES
    scan: bool = False
    """Skip unknown words before the subcommand (values of options we do not know)."""
    bare: bool = False
    """Running the tool without a subcommand installs (``yarn``)."""
    always: bool = False
    """Every use fetches and runs, or installs, packages (``npx``)."""


def _tool(
    installs: str,
    safe: str = "",
    spec: OptSpec = NO_VALUES,
    *,
    scan: bool = False,
    bare: bool = False,
) -> PackageTool:
    sequences = frozenset(tuple(item.split()) for item in installs.split(",") if item.strip())
    return PackageTool(sequences, word_set(safe), spec, scan, bare)


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


# --------------------------------------------------------------------------------------
# System administration
# --------------------------------------------------------------------------------------

ADMIN = word_set(
    "systemctl service mount umount fdisk sfdisk cfdisk gdisk sgdisk parted partprobe wipefs"
    " mkswap swapon swapoff losetup cryptsetup dmsetup mke2fs tune2fs modprobe insmod rmmod"
    " depmod iptables ip6tables iptables-restore ip6tables-restore nft ufw firewall-cmd useradd"
    " usermod userdel adduser deluser groupadd groupmod groupdel addgroup delgroup passwd"
    " chpasswd chage visudo vipw vigr crontab shutdown reboot halt poweroff init telinit pkill"
    " killall killall5 hostnamectl timedatectl localectl launchctl update-alternatives"
    " update-rc.d chkconfig ldconfig grub-install update-grub chroot setenforce chattr lvcreate"
    " lvremove vgcreate vgremove pvcreate pvremove mdadm zpool zfs dracut update-initramfs"
)


# --------------------------------------------------------------------------------------
# Writers: commands whose operands name paths they create, change or remove
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    kind: str
    """``all`` operands, the ``last`` operand, or ``after-first`` (``chmod MODE FILE...``)."""
    spec: OptSpec = NO_VALUES
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


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

CONTAINER_TOOLS = word_set("docker podman nerdctl")
HOST_ACCESS = (
    "--privileged",
    "--pid=host",
    "--userns=host",
    "--ipc=host",
    "--uts=host",
    "--cap-add",
    "--device",
    "--security-opt",
)
"""Container options that hand the container powers over the host."""
