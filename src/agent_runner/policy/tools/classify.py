"""Yes/no questions about one simple command: which tool a name runs, and whether it
installs packages, administers the machine or gives a container the host's powers.

Each answer reads the command's words (:data:`~agent_runner.policy.tools.options.Args`)
against the tables in :mod:`~agent_runner.policy.tools.tables`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent_runner.policy.tools.options import Args, opts, parse_options, word_set
from agent_runner.policy.tools.tables import ADMIN, HOST_ACCESS, PACKAGE_TOOLS, VERSIONED_FAMILIES

_VERSIONED = re.compile(r"^([a-z_]+?)-?(\d+(?:\.\d+)*)$")


def normalize(name: str) -> str:
    """The tool a command name runs: ``/usr/bin/sudo`` -> ``sudo``, ``pip3.11`` -> ``pip``."""
    base = name.rsplit("/", 1)[-1]
    match = _VERSIONED.match(base)
    if match and match.group(1) in VERSIONED_FAMILIES:
        return match.group(1)
    return base


_MAKE_SPEC = opts("CfIjlWo", "directory file include-dir")
_FLAG_STYLE = word_set("dpkg rpm nix-env pacman yay paru")


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


_IP_CHANGES = word_set("add del delete set flush change replace append exec")


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


def container_host_access(args: Args) -> bool:
    """Whether a container command asks for host privileges (``--privileged`` and the like)."""
    prefixes = tuple(option + "=" for option in HOST_ACCESS)
    return any(a is not None and (a in HOST_ACCESS or a.startswith(prefixes)) for a in args)
