"""What tools read from the project they run in, and which files are code.

When the sandbox of an AUTO session writes the host's workspace, a later local command
must not run what it wrote (:mod:`agent_runner.policy.written`). A command runs a file
directly (``./run.sh``, ``bash x.sh``), or it runs a tool that reads its configuration and
hooks from the project (``make`` reads the ``Makefile``, ``git`` runs ``.git/hooks/*``,
``npm test`` the scripts of ``package.json``, ``pytest`` every ``conftest.py``), or it
runs the project's code (an interpreter imports the modules beside the script, a test
runner the code under test). These tables say which tools do what, and which file names
hold code; only data and pure questions over it, no file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent_runner.policy.tools.options import (
    NO_VALUES,
    Args,
    Opt,
    OptSpec,
    opts,
    parse_options,
    word_set,
)


@dataclass(frozen=True)
class Project:
    """What a tool reads from the project directory it runs in (the cwd, or ``-C DIR``)."""

    files: tuple[str, ...] = ()
    """Configuration read from the project directory or the nearest parent that has it."""
    trees: tuple[str, ...] = ()
    """Directories of the project whose every file it may run or read (``.git``)."""
    anywhere: frozenset[str] = frozenset()
    """Names (or ``*.suffix``) it reads wherever they are under the project directory."""
    runs_code: bool = True
    """It runs the project's code (imports, builds and tests it, runs its scripts)."""
    spec: OptSpec = NO_VALUES
    """Its options before the subcommand (those with values)."""
    chdir: tuple[str, ...] = ()
    """Options whose value is the project directory (``make -C DIR``, ``git -C DIR``)."""
    file_options: tuple[str, ...] = ()
    """Options whose value is a configuration file it reads (``make -f FILE``)."""
    only: frozenset[str] | None = None
    """Only these subcommands count (None: every one but ``safe``)."""
    safe: frozenset[str] = frozenset()
    """Subcommands that read nothing of the project (``npm ls``, ``go version``)."""
    root: str = ""
    """A name that marks the project's root above the directory (``.git`` for git)."""
    permute: bool = True
    """Its options may follow the subcommand (``make test -C dir``; not so for git)."""


def _project(
    files: str = "",
    trees: str = "",
    anywhere: str = "",
    *,
    runs_code: bool = True,
    spec: OptSpec = NO_VALUES,
    chdir: str = "",
    file_options: str = "",
    only: str | None = None,
    safe: str = "",
    root: str = "",
    permute: bool = True,
) -> Project:
    return Project(
        tuple(files.split()),
        tuple(trees.split()),
        word_set(anywhere),
        runs_code,
        spec,
        tuple(chdir.split()),
        tuple(file_options.split()),
        None if only is None else word_set(only),
        word_set(safe),
        root,
        permute,
    )


_NODE_FILES = "package.json .npmrc .yarnrc .yarnrc.yml .pnpmfile.cjs bunfig.toml"
_NODE_SAFE = "ls list ll la view info show v search s help whoami ping root prefix bin outdated"
_NODE = _project(
    _NODE_FILES,
    ".yarn",
    spec=opts("C", "prefix cwd dir"),
    chdir="prefix cwd C dir",
    safe=_NODE_SAFE,
)
_PYTEST = _project(
    "pytest.ini .pytest.ini pyproject.toml setup.cfg tox.ini setup.py",
    anywhere="conftest.py",
    spec=opts("cp", "rootdir confcutdir"),
    chdir="rootdir",
)
_PY_PROJECT = "pyproject.toml setup.py setup.cfg"
_PY_RUNNER = _project(
    f"{_PY_PROJECT} uv.toml poetry.toml Pipfile", only="run pip sync install build"
)
_MAKE = _project(
    "GNUmakefile makefile Makefile",
    anywhere="*.mk",
    spec=opts("CfIjlWo", "directory file makefile include-dir"),
    chdir="C directory",
    file_options="f file makefile",
)
_GRADLE = _project(
    "build.gradle build.gradle.kts settings.gradle settings.gradle.kts gradle.properties gradlew",
    "gradle",
    spec=opts("p", "project-dir"),
    chdir="p project-dir",
)
_MAVEN = _project("pom.xml mvnw", ".mvn", spec=opts("f", "file"), file_options="f file")
_BAZEL = _project("WORKSPACE WORKSPACE.bazel MODULE.bazel .bazelrc .bazelversion BUILD BUILD.bazel")
_COMPOSE = "compose.yaml compose.yml docker-compose.yml docker-compose.yaml .env"

PROJECT_TOOLS: dict[str, Project] = {
    "make": _MAKE,
    "gmake": _MAKE,
    "git": _project(
        ".gitattributes .gitmodules",
        ".git",
        ".gitattributes",
        runs_code=False,
        spec=opts("Cc", "git-dir work-tree namespace exec-path config-env"),
        chdir="C",
        root=".git",
        permute=False,
    ),
    "npm": _NODE,
    "pnpm": _NODE,
    "yarn": _NODE,
    "bun": _NODE,
    "pytest": _PYTEST,
    "py.test": _PYTEST,
    "pip": _project(_PY_PROJECT, only="install download wheel"),
    "tox": _project("tox.ini pyproject.toml setup.cfg setup.py"),
    "nox": _project("noxfile.py"),
    "uv": _PY_RUNNER,
    "poetry": _PY_RUNNER,
    "pipenv": _PY_RUNNER,
    "pdm": _PY_RUNNER,
    "hatch": _PY_RUNNER,
    "direnv": _project(".envrc .env"),
    "cargo": _project(
        "Cargo.toml build.rs rust-toolchain rust-toolchain.toml", ".cargo", safe="version help"
    ),
    "go": _project(
        "go.mod go.work", spec=opts("C"), chdir="C", safe="version help env", permute=False
    ),
    "just": _project(
        "justfile Justfile .justfile",
        spec=opts("df", "working-directory justfile"),
        chdir="d working-directory",
        file_options="f justfile",
    ),
    "task": _project(
        "Taskfile.yml Taskfile.yaml taskfile.yml", spec=opts("d", "dir"), chdir="d dir"
    ),
    "rake": _project("Rakefile rakefile Rakefile.rb"),
    "bundle": _project("Gemfile", ".bundle"),
    "rspec": _project(".rspec Gemfile"),
    "gradle": _GRADLE,
    "gradlew": _GRADLE,
    "mvn": _MAVEN,
    "mvnw": _MAVEN,
    "ant": _project("build.xml"),
    "sbt": _project("build.sbt", "project"),
    "cmake": _project("CMakeLists.txt CMakePresets.json CMakeUserPresets.json", anywhere="*.cmake"),
    "meson": _project("meson.build meson_options.txt meson.options"),
    "ninja": _project("build.ninja"),
    "bazel": _BAZEL,
    "bazelisk": _BAZEL,
    "composer": _project("composer.json", only="run run-script exec test"),
    "pre-commit": _project(".pre-commit-config.yaml"),
    "terraform": _project(".terraformrc", ".terraform", "*.tf", safe="version fmt help"),
    "tofu": _project(".terraformrc", ".terraform", "*.tf", safe="version fmt help"),
    "docker": _project(_COMPOSE, runs_code=False, only="compose"),
    "docker-compose": _project(_COMPOSE, runs_code=False),
}
"""Tools that read configuration or hooks from the project (and mostly run its code)."""

CODE_RUNNERS = word_set(
    """
    python pypy node nodejs deno perl ruby php lua luajit java Rscript R julia elixir iex erl
    escript groovy kotlin scala dotnet swift tclsh wish ipython jupyter flask django-admin
    uvicorn gunicorn celery coverage hypothesis behave jest vitest mocha ava tsx ts-node
    webpack vite next nuxt eslint prettier gulp grunt rails irb prove phpunit ctest
    """
)
"""Tools that run or import the project's code however they are called (``python -c``
imports from the cwd, ``jest`` runs the tests and the code they import)."""

SHELL_BUILTINS = word_set(
    """
    echo printf cd pwd test [ true false : export unset set shift source . eval exec exit
    return read type command builtin hash alias unalias local declare typeset readonly let
    wait jobs fg bg kill trap umask ulimit getopts shopt history fc pushd popd dirs disown
    enable help logout mapfile readarray caller compgen complete compopt bind times
    """
)
"""Names bash runs itself, before looking in ``PATH``."""

_QUERIES = frozenset({"--version", "-V", "--help", "-h", "-v", "version", "help"})

CODE_SUFFIXES = word_set(
    """
    .sh .bash .zsh .ksh .fish .command .py .pyc .pyo .pyw .pyx .pth .so .dylib .dll .pyd .node
    .js .mjs .cjs .jsx .ts .mts .cts .tsx .vue .svelte .rb .rake .gemspec .ru .pl .pm .t .php
    .lua .r .jl .ex .exs .erl .go .rs .c .h .cc .cpp .cxx .hpp .m .mm .java .kt .kts .scala
    .groovy .gradle .class .jar .war .wasm .swift .cs .fs .vb .ps1 .bat .cmd .mk .cmake .ninja
    .bzl .bazel .nix .el .vim .awk .sed .tcl .tf .toml .cfg .ini
    """
)
"""Suffixes of files that hold code or configure tools that run code."""

_CONFIG_NAMES = frozenset(
    name for project in PROJECT_TOOLS.values() for name in project.files if not name.startswith("*")
)
CODE_NAMES = _CONFIG_NAMES | word_set(
    """
    Dockerfile Containerfile Jenkinsfile Vagrantfile Brewfile Procfile .babelrc .eslintrc
    .prettierrc .mocharc .envrc .bashrc .profile .zshrc .exrc .vimrc .pythonrc conftest.py
    """
)
"""File names that hold code or configure tools that run code, whatever their suffix."""


@dataclass(frozen=True)
class ProjectUse:
    """One command's use of a :data:`PROJECT_TOOLS` tool: where its project directory and
    configuration files are given (locations in its words, as option values)."""

    project: Project
    directories: list[Opt]
    files: list[Opt]


def project_use(name: str, args: Args) -> ProjectUse | None:
    """How ``name args...`` reads the project it runs in; None when it does not (not such a
    tool, or a subcommand that reads nothing: ``npm ls``, ``go version``)."""
    project = PROJECT_TOOLS.get(name)
    if project is None:
        return None
    parsed = parse_options(args, project.spec, permute=False)
    sub = args[parsed.operands[0]] if parsed.operands else None
    if project.only is not None and sub not in project.only:
        return None
    if sub in project.safe or (not parsed.operands and queries_only(args)):
        return None
    if project.permute:
        parsed = parse_options(args, project.spec)
    return ProjectUse(project, parsed.values(*project.chdir), parsed.values(*project.file_options))


def queries_only(args: Args) -> bool:
    """``tool --version``, ``tool --help``: nothing of the project runs."""
    return bool(args) and all(arg in _QUERIES for arg in args)


def is_code(path: str, executable: bool = False) -> bool:
    """Whether the file at ``path`` holds code, or configures a tool that runs code:
    by its name or suffix, its execute bit, or being under a ``.git`` directory."""
    if executable:
        return True
    base = os.path.basename(path)
    if base in CODE_NAMES or os.path.splitext(base)[1].lower() in CODE_SUFFIXES:
        return True
    return f"/{path}/".find("/.git/") >= 0


def matches(name: str, patterns: frozenset[str]) -> bool:
    """Whether the file name ``name`` is one of ``patterns`` (names, or ``*.suffix``)."""
    return name in patterns or any(
        pattern.startswith("*") and name.endswith(pattern[1:]) for pattern in patterns
    )
