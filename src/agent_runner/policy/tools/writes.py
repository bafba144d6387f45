"""Which paths a command writes: the arguments it creates, changes or removes, the files a
download saves, what ``find`` changes and runs, and the host paths a container mounts.

Answers are locations in the command's words (:class:`Loc`: an argument index and an
offset into it, or :data:`CWD`), never paths: the walk
(:mod:`~agent_runner.policy.paths`) resolves them against the working directory and the
workspace. Read-only arguments are never reported: ``cp /etc/hosts .`` writes only ``.``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_runner.policy.tools.options import Args, Parsed, opts, parse_options, word_set
from agent_runner.policy.tools.tables import WRITERS

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


_REMOVERS = word_set("rm rmdir unlink")
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


_FIND_ACTIONS = word_set("-exec -execdir -ok -okdir")
_FIND_FILES = word_set("-fprint -fprint0 -fls -fprintf")


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
