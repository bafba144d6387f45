"""What AUTO mode knows about individual tools.

The walk (:mod:`agent_runner.policy.walker`, :mod:`agent_runner.policy.commands`) handles
the shell syntax; this package answers questions about one simple command given its words:
is ``pip`` here installing something, which arguments of ``cp`` are written to, where does
the command wrapped by ``timeout 5`` start. Words are passed as ``str`` when their text is
known before the command runs and ``None`` when it is not (a variable, a command
substitution), so every answer can fail closed.

Nothing here parses shell syntax or touches the file system.

- :mod:`~.options`: telling options from operands (GNU style), the base of every answer.
- :mod:`~.tables`: the tables, by tool (only data).
- :mod:`~.classify`: the tool a name runs; installs packages? administers? host access?
- :mod:`~.writes`: the paths a command writes, downloads save, ``find`` changes and
  containers mount.
- :mod:`~.project`: what tools read from the project they run in, and which files are code
  (for rule ``sandbox-written``).

The walk uses this package's names as ``tools.X``; they are re-exported here.
"""

from agent_runner.policy.tools.classify import (
    administers,
    container_host_access,
    installs_packages,
    normalize,
)
from agent_runner.policy.tools.options import Args, Opt, OptSpec, Parsed, opts, parse_options
from agent_runner.policy.tools.project import (
    CODE_RUNNERS,
    Project,
    ProjectUse,
    is_code,
    project_use,
    queries_only,
)
from agent_runner.policy.tools.tables import (
    CONTAINER_TOOLS,
    DETACHERS,
    FETCHERS,
    INTERPRETERS,
    NEUTRAL,
    PACKAGE_TOOLS,
    PRIVILEGED,
    PRIVILEGED_CODE_OPTIONS,
    SHELL_OPTIONS,
    SHELLS,
    WRAPPERS,
    WRITERS,
    XARGS_REPLACE,
    Interpreter,
    PackageTool,
    Wrapper,
    Writer,
)
from agent_runner.policy.tools.writes import (
    CWD,
    FindPlan,
    Loc,
    container_mounts,
    downloads,
    find_plan,
    url_file_name,
    write_locations,
)

__all__ = [
    "CODE_RUNNERS",
    "CONTAINER_TOOLS",
    "CWD",
    "DETACHERS",
    "FETCHERS",
    "INTERPRETERS",
    "NEUTRAL",
    "PACKAGE_TOOLS",
    "PRIVILEGED",
    "PRIVILEGED_CODE_OPTIONS",
    "SHELLS",
    "SHELL_OPTIONS",
    "WRAPPERS",
    "WRITERS",
    "XARGS_REPLACE",
    "Args",
    "FindPlan",
    "Interpreter",
    "Loc",
    "Opt",
    "OptSpec",
    "PackageTool",
    "Parsed",
    "Project",
    "ProjectUse",
    "Wrapper",
    "Writer",
    "administers",
    "container_host_access",
    "container_mounts",
    "downloads",
    "find_plan",
    "installs_packages",
    "is_code",
    "normalize",
    "opts",
    "parse_options",
    "project_use",
    "queries_only",
    "url_file_name",
    "write_locations",
]
