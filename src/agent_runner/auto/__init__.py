"""AUTO mode's trust boundary: what a sandboxed command may hand to the host, and what not.

In an AUTO session the host shell and the sandbox act as one shell. That is a channel for
code the sandbox chose to run on the host: a variable such as ``BASH_ENV`` or
``LD_PRELOAD`` that a sandboxed command exports reaches the next local command. This
package closes it.

- :mod:`~.variables`: which variables a sandboxed command set may reach the host shell (plain
  data only; the dangerous families are named in the reason of the command that set them).
- :mod:`~.written`: the record of sandbox-written paths, and the view of it the AUTO policy
  asks (:class:`agent_runner.policy.SandboxWritten`, rule ``sandbox-written``).

The user guide and the threat model are ``docs/sandbox/auto-mode.md``.
"""
