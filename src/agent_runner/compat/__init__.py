"""Drop-ins for code written against other interfaces, implemented on this package.

- :mod:`agent_runner.compat.stigmer`: the Stigmer worker's ``SandboxManager``
  (``backend/services/agent-runner/worker/sandbox_manager.py`` in stigmer/stigmer), same
  constructor and methods, on the Daytona backend's lifecycle.

Nothing else in the package imports from here.
"""
