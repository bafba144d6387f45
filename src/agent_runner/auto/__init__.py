"""AUTO mode's trust boundary: what a sandboxed command may hand to the host, and what not.

In an AUTO session the host shell and the sandbox act as one shell, and with the ``bind``
workspace the sandbox writes the host's workspace directly. Both are channels for code the
sandbox wrote to run on the host: a variable such as ``BASH_ENV`` or ``LD_PRELOAD`` that a
sandboxed command exports, or a script, Makefile or git hook it writes that a later local
command runs. This package closes them; nothing the sandbox wrote runs on the host until
the user accepts it.

- :mod:`~.variables`: which variables a sandboxed command set may reach the host shell (plain
  data only; the dangerous families are named in the reason of the command that set them).
- :mod:`~.snapshot`: what a sandboxed command created or changed in the workspace, from
  host-side snapshots taken around it (bounded; beyond the bound it fails safe).
- :mod:`~.written`: the record of sandbox-written paths, and the view of it the AUTO policy
  asks (:class:`agent_runner.policy.written.SandboxWritten`).
- :mod:`~.store`: that record on disk, per machine, so it outlives a session and a CLI call.
- :mod:`~.quarantine`: what a session calls around each command, and to accept writes.

The user guide and the threat model are ``docs/sandbox/auto-mode.md``.
"""
