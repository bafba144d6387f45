"""Pod Security Admission, enforce mode, for the ``baseline`` and ``restricted`` levels.

Mirrors k8s.io/pod-security-admission/policy: a namespace labelled
``pod-security.kubernetes.io/enforce: restricted`` (or ``baseline``) rejects, with 403
Forbidden, every pod that fails a check of that level; the message lists each failed
check with its forbidden fields, in the upstream check order (the baseline checks first,
then the restricted ones, a restricted check replacing the baseline check it overrides):

    pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation
    != false (container "main" must set securityContext.allowPrivilegeEscalation=false), ...

Only the checks a sandbox pod can plausibly trip are emulated: host namespaces,
privileged, capabilities, hostPath and other restricted volume types, hostPort,
allowPrivilegeEscalation, runAsNonRoot, runAsUser=0, seccompProfile. AppArmor, SELinux,
procMount and sysctls are not checked. One level for every version: the
``enforce-version`` label only changes the text of the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.kube.status import ApiError, forbidden

Object = dict[str, Any]
Check = Callable[[Object], str | None]

ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
ALLOWED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_VOLUME_SOURCES = (
    *ALLOWED_VOLUMES,
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "portworxVolume",
    "photonPersistentDisk",
    "scaleIO",
    "storageos",
    "image",
)


def _containers(pod: Object) -> list[Object]:
    spec = pod.get("spec") or {}
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _names(noun: str, names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{noun}s {quoted}" if len(names) > 1 else f"{noun} {quoted}"


def _context(container: Object) -> Object:
    return container.get("securityContext") or {}


def _host_namespaces(pod: Object) -> str | None:
    spec = pod.get("spec") or {}
    used = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    return f"host namespaces ({', '.join(used)})" if used else None


def _privileged(pod: Object) -> str | None:
    bad = [c["name"] for c in _containers(pod) if _context(c).get("privileged")]
    if not bad:
        return None
    return f"privileged ({_names('container', bad)} must not set securityContext.privileged=true)"


def _host_ports(pod: Object) -> str | None:
    bad, ports = [], []
    for container in _containers(pod):
        used = [p["hostPort"] for p in container.get("ports") or [] if p.get("hostPort")]
        if used:
            bad.append(container["name"])
            ports += [str(p) for p in used]
    if not bad:
        return None
    return f"hostPort ({_names('container', bad)} uses {'hostPorts' if len(ports) > 1 else 'hostPort'} {', '.join(ports)})"


def _allow_privilege_escalation(pod: Object) -> str | None:
    bad = [
        c["name"]
        for c in _containers(pod)
        if _context(c).get("allowPrivilegeEscalation") is not False
    ]
    if not bad:
        return None
    return (
        f"allowPrivilegeEscalation != false ({_names('container', bad)} must set "
        "securityContext.allowPrivilegeEscalation=false)"
    )


def _capabilities(pod: Object) -> str | None:
    missing_drop, added = [], []
    for container in _containers(pod):
        capabilities = _context(container).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(container["name"])
        extra = [c for c in capabilities.get("add") or [] if c != "NET_BIND_SERVICE"]
        if extra:
            added.append((container["name"], extra))
    parts = []
    if missing_drop:
        parts.append(
            f'{_names("container", missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    for name, extra in added:
        caps = ", ".join(f'"{c}"' for c in extra)
        parts.append(
            f'container "{name}" must not include {caps} in securityContext.capabilities.add'
        )
    return f"unrestricted capabilities ({'; '.join(parts)})" if parts else None


def _baseline_capabilities(pod: Object) -> str | None:
    baseline = {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }  # fmt: skip
    parts = []
    for container in _containers(pod):
        extra = [
            c
            for c in (_context(container).get("capabilities") or {}).get("add") or []
            if c not in baseline
        ]
        if extra:
            caps = ", ".join(f'"{c}"' for c in extra)
            parts.append(
                f'container "{container["name"]}" must not include {caps} in securityContext.capabilities.add'
            )
    return f"non-default capabilities ({'; '.join(parts)})" if parts else None


def _volume_type(volume: Object) -> str:
    return next((s for s in _VOLUME_SOURCES if s in volume), "unknown")


def _host_path(pod: Object) -> str | None:
    bad = [v["name"] for v in (pod.get("spec") or {}).get("volumes") or [] if "hostPath" in v]
    return f"hostPath volumes ({_names('volume', bad)})" if bad else None


def _restricted_volumes(pod: Object) -> str | None:
    bad = [
        (v["name"], _volume_type(v))
        for v in (pod.get("spec") or {}).get("volumes") or []
        if _volume_type(v) not in ALLOWED_VOLUMES
    ]
    if not bad:
        return None
    kinds = sorted({kind for _, kind in bad})
    uses = "uses restricted volume type" if len(bad) == 1 else "use restricted volume types"
    return (
        f"restricted volume types ({_names('volume', [n for n, _ in bad])} {uses} "
        f"{', '.join(f'{chr(34)}{k}{chr(34)}' for k in kinds)})"
    )


def _run_as_non_root(pod: Object) -> str | None:
    pod_level = ((pod.get("spec") or {}).get("securityContext") or {}).get("runAsNonRoot")
    parts, unset = [], []
    if pod_level is False:
        parts.append("pod must not set securityContext.runAsNonRoot=false")
    explicit_false = []
    for container in _containers(pod):
        value = _context(container).get("runAsNonRoot")
        if value is False:
            explicit_false.append(container["name"])
        elif value is None and pod_level is not True:
            unset.append(container["name"])
    if explicit_false:
        parts.append(
            f"{_names('container', explicit_false)} must not set securityContext.runAsNonRoot=false"
        )
    if unset and pod_level is not False:
        parts.append(
            f"pod or {_names('container', unset)} must set securityContext.runAsNonRoot=true"
        )
    return f"runAsNonRoot != true ({'; '.join(parts)})" if parts else None


def _run_as_user(pod: Object) -> str | None:
    parts = []
    if ((pod.get("spec") or {}).get("securityContext") or {}).get("runAsUser") == 0:
        parts.append("pod must not set runAsUser=0")
    bad = [c["name"] for c in _containers(pod) if _context(c).get("runAsUser") == 0]
    if bad:
        parts.append(f"{_names('container', bad)} must not set runAsUser=0")
    return f"runAsUser=0 ({'; '.join(parts)})" if parts else None


def _seccomp(pod: Object) -> str | None:
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = (
        ((pod.get("spec") or {}).get("securityContext") or {}).get("seccompProfile") or {}
    ).get("type")
    parts, unset, wrong = [], [], []
    if pod_type is not None and pod_type not in allowed:
        parts.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    for container in _containers(pod):
        kind = (_context(container).get("seccompProfile") or {}).get("type")
        if kind is None and pod_type not in allowed:
            unset.append(container["name"])
        elif kind is not None and kind not in allowed:
            wrong.append((container["name"], kind))
    for name, kind in wrong:
        parts.append(
            f'container "{name}" must not set securityContext.seccompProfile.type to "{kind}"'
        )
    if unset and pod_type is None:
        parts.append(
            f'pod or {_names("container", unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        )
    elif unset:
        parts.append(
            f'{_names("container", unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        )
    return f"seccompProfile ({'; '.join(parts)})" if parts else None


BASELINE: list[Check] = [
    _host_namespaces,
    _privileged,
    _baseline_capabilities,
    _host_path,
    _host_ports,
]
RESTRICTED: list[Check] = [
    _host_namespaces,
    _privileged,
    _host_ports,
    _allow_privilege_escalation,
    _capabilities,
    _restricted_volumes,
    _run_as_non_root,
    _run_as_user,
    _seccomp,
]
"""``capabilities_restricted`` replaces ``capabilities_baseline``, ``restrictedVolumes``
replaces ``hostPathVolumes`` (their ``OverrideCheckIDs`` upstream)."""


def violations(level: str, pod: Object) -> list[str]:
    checks = {"restricted": RESTRICTED, "baseline": BASELINE}.get(level, [])
    return [found for check in checks if (found := check(pod))]


def enforce(namespace: Object, pod: Object) -> None:
    """Raise the 403 a real apiserver answers when ``pod`` breaks its namespace's level."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE, "privileged")
    found = violations(level, pod)
    if not found:
        return
    version = labels.get(ENFORCE_VERSION, "latest")
    name = (pod.get("metadata") or {}).get("name") or ""
    error: ApiError = forbidden(
        "", "pods", name, f'violates PodSecurity "{level}:{version}": {", ".join(found)}'
    )
    raise error
