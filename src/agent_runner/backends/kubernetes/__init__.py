"""SANDBOX on Kubernetes: one restricted pod per session, its executor over one ``pods/exec``.

``backend`` is where (which pod, set up how, released when), ``shell`` is how (the
executor shell, reconnecting when a stream drops), ``connection`` and ``stream`` are the
exec websocket and the executor's bootstrap over it, ``manifests`` and ``models`` what the
cluster is asked for, ``pod_pool`` and ``claims`` the two provisioners (plain pods with a
warm pool; kubernetes-sigs/agent-sandbox claims), ``lease`` and ``reaper`` the cleanup
that survives a dead runner, ``pods`` a pod's life, ``cluster`` the API clients.
"""

from agent_runner.backends.kubernetes.backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
