"""Rule ``sandbox-written``: a local command must not run code the sandbox wrote.

In an AUTO session with the ``bind`` workspace the sandbox writes the host's workspace.
The session learns which paths each sandboxed command created or changed
(:mod:`agent_runner.auto`) and hands the record to :func:`~.decision.decide` as a
:class:`SandboxWritten`; until the user accepts them, a command goes to the sandbox when
it would

1. **run one of them**: a command path (``./run.sh``, ``bin/x``), a command found through a
   ``PATH`` directory the sandbox wrote (``.venv/bin/pytest``), a script given to a shell
   or an interpreter (``bash run.sh``, ``python x.py``, ``node x.js``, ``python -m mod``), a
   file sourced (``. ./env.sh``, ``source x``) or fed to a shell (``sh < x``,
   ``cat x | bash``); a path known only at run time counts as one of them;
2. **use one as a tool's configuration or hooks**: ``make`` and the makefiles and ``*.mk``,
   ``git`` and anything under ``.git`` (hooks, config) or ``.gitattributes``/``.gitmodules``,
   ``npm``/``yarn``/``pnpm``/``bun`` scripts and ``package.json``/``.npmrc``, ``pytest`` and
   ``conftest.py``/``pytest.ini``/``pyproject.toml``/``setup.cfg``/``tox.ini``, ``direnv``
   and ``.envrc``, ``cargo`` and ``build.rs``/``.cargo/``, and the rest of
   :data:`~agent_runner.policy.tools.project.PROJECT_TOOLS`, looked up in the project
   directory (the cwd or ``-C DIR``) and its parents in the workspace;
3. **write through a link it made to outside the workspace**: ``echo x >> notes.md`` when
   the sandbox made ``notes.md`` a link to ``../../.bashrc`` (the path is resolved on the
   host, for what the sandbox wrote only);
4. **run the project's code while the sandbox wrote some of it**: interpreters, test
   runners and build tools (:data:`~agent_runner.policy.tools.project.CODE_RUNNERS` and the
   project tools that run code), and workspace scripts, import and run what is beside them
   (``python app.py`` imports the ``util.py`` the sandbox changed, ``npm test`` runs the
   ``node_modules`` it installed), so any code the sandbox wrote in the workspace
   (:func:`~agent_runner.policy.tools.project.is_code`: by name, suffix or execute bit; a
   directory it made counts as code unless all of it was seen) sends them to the sandbox.

The finding belongs to no command, so local user rules never waive it: a rule trusts a
command, not what the sandbox put where that command looks. Accepting the writes (``agent-
runner trust``, ``Session.trust_sandbox_writes()``) is how the user says yes. With no record
(``sandbox_written=None``: every session that is not AUTO, or whose record is empty)
nothing here runs: every other decision is unchanged.

This is the one part of the policy that looks at the file system: whether a file exists
in a ``PATH`` directory, where a git repository's root is, and where a link the sandbox
made leads.
"""

from __future__ import annotations

import os

from agent_runner.policy import tools
from agent_runner.policy.analysis import Analysis, SandboxWritten, View
from agent_runner.policy.ids import WRITTEN
from agent_runner.policy.paths import Cwd
from agent_runner.policy.tools.project import CODE_RUNNERS, SHELL_BUILTINS, ProjectUse
from agent_runner.policy.words import Word

__all__ = [
    "SandboxWritten",
    "command",
    "finish",
    "project_code",
    "run_file",
    "run_module",
    "source_file",
    "write_through",
]


def command(
    analysis: Analysis, view: View, head: Word, name: str, texts: list[str | None], cwd: Cwd
) -> None:
    """Check one simple command against the record (its program, its project, its code)."""
    written = analysis.written
    assert written is not None
    assert head.text is not None
    if "/" in head.text:
        found = run_file(analysis, view, head, 0, cwd)
        if found is not None and any(_in_workspace(analysis, path) for path in found):
            project_code(analysis, view)
        return
    if name in SHELL_BUILTINS:
        return
    if written.search_path:
        _search(analysis, view, head.text, cwd)
    use = tools.project_use(name, texts)
    if use is not None:
        _project(analysis, view, use, texts, cwd)
    if (name in CODE_RUNNERS or name in tools.INTERPRETERS) and not tools.queries_only(texts):
        project_code(analysis, view)


def run_file(
    analysis: Analysis, view: View, word: Word, offset: int, cwd: Cwd, verb: str = "runs"
) -> list[str] | None:
    """Record a finding when the file ``word[offset:]`` that ``view`` runs is sandbox-written
    (or known only at run time); returns where the file is."""
    written = analysis.written
    assert written is not None
    found = analysis.workspace.resolve(word, offset, cwd)
    if found is None:
        what = "a file known only at run time, and the sandbox wrote files not yet accepted"
        analysis.find(WRITTEN, view.text, f"{verb} {what}")
        return None
    for path in found:
        shown = written.covering(path)
        if shown is not None:
            analysis.find(WRITTEN, view.text, f"{verb} {shown}")
            break
    return found


def source_file(analysis: Analysis, view: View, word: Word, cwd: Cwd) -> None:
    """``source x``/``. x``: bash looks for a name without ``/`` in ``PATH`` first."""
    mark = len(analysis.findings)
    if word.text is not None and "/" not in word.text and analysis.written is not None:
        _search(analysis, view, word.text, cwd, "sources")
    if len(analysis.findings) == mark:
        run_file(analysis, view, word, 0, cwd, "sources")


def run_module(analysis: Analysis, view: View, module: str, cwd: Cwd) -> None:
    """``python -m module`` imports ``module`` from the cwd first."""
    written = analysis.written
    assert written is not None
    top = module.split(".", 1)[0]
    for directory in cwd or ():
        for candidate in (f"{top}.py", top):
            shown = written.covering(os.path.join(directory, candidate))
            if shown is not None:
                analysis.find(WRITTEN, view.text, f"runs {shown}")
                return


def stdin_file(analysis: Analysis, word: Word, cwd: Cwd) -> str | None:
    """How the reason shows the sandbox-written file ``word`` names (``< x``, ``cat x |``)."""
    written = analysis.written
    if written is None or word.text is None:
        return None
    for path in analysis.workspace.resolve(word, 0, cwd) or []:
        shown = written.covering(path)
        if shown is not None:
            return shown
    return None


def project_code(analysis: Analysis, view: View) -> None:
    """``view`` runs the project's code; :func:`finish` says so if the sandbox wrote some."""
    if analysis.runs_project is None:
        analysis.runs_project = view


def finish(analysis: Analysis) -> None:
    """After the walk: the finding for running the project's code comes last, so that a
    more precise one (``runs x.py``, ``uses Makefile``) is the reason shown."""
    written, view = analysis.written, analysis.runs_project
    if written is None or view is None:
        return
    shown = written.code()
    if shown is not None:
        what = f"runs the project's code, and the sandbox wrote some of it ({shown})"
        analysis.find(WRITTEN, view.text, what)


def write_through(
    analysis: Analysis,
    text: str,
    word: Word | None,
    offset: int,
    cwd: Cwd,
    stop: str = "",
    removes: bool = False,
) -> None:
    """A write inside the workspace to a path the sandbox wrote (or under a directory it
    made) lands where its symbolic links lead: a finding when that is outside
    (``notes.md -> ../../.bashrc``). Removing a link removes the link, not its target."""
    written = analysis.written
    assert written is not None
    workspace = analysis.workspace
    found = sorted(cwd or ()) if word is None else workspace.resolve(word, offset, cwd, stop)
    for path in found or ():
        shown = written.covering(path)
        if shown is None:
            continue
        parent, name = os.path.split(path)
        real = os.path.join(os.path.realpath(parent), name) if removes else os.path.realpath(path)
        if not workspace.inside(real):
            analysis.find(WRITTEN, text, f"writes to {real} through {shown}")
            return


def _in_workspace(analysis: Analysis, path: str) -> bool:
    root = analysis.workspace.path
    return path == root or path.startswith(root.rstrip("/") + "/")


def _search(analysis: Analysis, view: View, name: str, cwd: Cwd, verb: str = "runs") -> None:
    """A command name found through ``PATH``, as bash finds it: the first directory with it."""
    written = analysis.written
    assert written is not None
    for directory in written.search_path:
        places = [directory] if directory.startswith("/") else _joined(directory, cwd)
        for place in places:
            candidate = os.path.join(place, name)
            if not os.path.lexists(candidate):
                continue
            shown = written.covering(candidate)
            if shown is not None:
                analysis.find(WRITTEN, view.text, f"{verb} {shown}")
                return
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return


def _joined(directory: str, cwd: Cwd) -> list[str]:
    """A relative ``PATH`` entry (``.``, ``bin``, or empty) in each place the cwd may be."""
    return [os.path.normpath(os.path.join(place, directory or ".")) for place in cwd or ()]


def _project(
    analysis: Analysis, view: View, use: ProjectUse, texts: list[str | None], cwd: Cwd
) -> None:
    """A tool that reads its configuration and hooks from the project it runs in."""
    written = analysis.written
    assert written is not None
    project = use.project
    directories: Cwd = cwd
    for opt in use.directories:
        word = view.words[opt.index + 1]
        found = analysis.workspace.resolve(word, opt.offset, directories)
        directories = None if found is None else frozenset(found)
    if directories is None:
        what = "uses a project known only at run time, and the sandbox wrote files not yet accepted"
        analysis.find(WRITTEN, view.text, what)
        return
    for opt in use.files:
        run_file(analysis, view, view.words[opt.index + 1], opt.offset, directories, "uses")
    for directory in sorted(directories):
        root = _root(directory, project.root) if project.root else directory
        shown = _configuration(analysis, root, project.files, project.trees, project.anywhere)
        if shown is not None:
            analysis.find(WRITTEN, view.text, f"uses {shown}")
            break
    if project.runs_code:
        project_code(analysis, view)


def _configuration(
    analysis: Analysis,
    root: str,
    files: tuple[str, ...],
    trees: tuple[str, ...],
    anywhere: frozenset[str],
) -> str | None:
    """The first sandbox-written configuration of a project rooted at ``root``: its files
    there or in a parent (``npm`` and ``pytest`` look upwards), its trees, and the names it
    reads anywhere under it (``conftest.py`` also in the parents)."""
    written = analysis.written
    assert written is not None
    above = [name for name in anywhere if not name.startswith("*")]
    for place in _upwards(root, analysis.workspace.path):
        for name in (*files, *above):
            shown = written.covering(os.path.join(place, name))
            if shown is not None:
                return shown
    for tree in trees:
        shown = written.under(os.path.join(root, tree))
        if shown is not None:
            return shown
    return written.under(root, anywhere) if anywhere else None


def _upwards(directory: str, workspace: str) -> list[str]:
    """``directory`` and its parents inside the workspace (only itself when outside it)."""
    places = [directory]
    prefix = workspace.rstrip("/") + "/"
    while directory.startswith(prefix):
        directory = os.path.dirname(directory)
        places.append(directory)
    return places


def _root(directory: str, marker: str) -> str:
    """The nearest of ``directory`` and its parents that holds ``marker`` (else itself)."""
    place = directory
    while True:
        if os.path.lexists(os.path.join(place, marker)):
            return place
        parent = os.path.dirname(place)
        if parent == place:
            return directory
        place = parent
