"""A pod's first container as a Docker container: what the kubelet asks the runtime for.

Mirrors pkg/kubelet/kuberuntime (generateContainerConfig, the Linux security context,
resources and mounts): ``command``/``args`` replace the image's ENTRYPOINT/CMD,
``env`` (plain values and the downward-API fields a sandbox uses), ``workingDir``, the
user from ``runAsUser``/``runAsGroup`` (container over pod), ``fsGroup`` and
``supplementalGroups`` as extra groups, ``readOnlyRootFilesystem``,
``capabilities.add/drop``, ``allowPrivilegeEscalation: false`` as no-new-privileges,
``privileged``, ``seccompProfile: Unconfined``, ``limits.memory``/``limits.cpu``, and
``emptyDir`` volumes as tmpfs mounts bounded by ``sizeLimit`` (the kubelet puts a
disk-backed emptyDir on the node's disk; here every emptyDir is memory-backed). The
pod's hostname is its name, as on a node.

Also the kubelet's ``runAsNonRoot`` verification (verifyRunAsNonRoot): a container
that would run as uid 0, or as a non-numeric image user without ``runAsUser``, is not
started (``CreateContainerConfigError``).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.kube.validation import quantity

Object = dict[str, Any]
LABEL = "stigmer.test-fake"
INSTANCE_LABEL = "stigmer.test-fake.instance"
POD_LABEL = "stigmer.test-fake.pod"
UID_LABEL = "stigmer.test-fake.pod-uid"

SERVICE_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}


def security(pod: Object, container: Object, key: str) -> Any:
    """A security setting, the container's overriding the pod's (as the kubelet merges)."""
    value = (container.get("securityContext") or {}).get(key)
    if value is None:
        value = ((pod.get("spec") or {}).get("securityContext") or {}).get(key)
    return value


def _field_value(pod: Object, path: str, node: str) -> str:
    meta = pod.get("metadata") or {}
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": node,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", ""),
    }
    if path.startswith("metadata.labels['"):
        return str((meta.get("labels") or {}).get(path[17:-2], ""))
    if path.startswith("metadata.annotations['"):
        return str((meta.get("annotations") or {}).get(path[22:-2], ""))
    return str(values.get(path, ""))


def environment(pod: Object, container: Object, node: str) -> list[str]:
    env = dict(SERVICE_ENV)
    for variable in container.get("env") or []:
        source = variable.get("valueFrom") or {}
        if "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"].get("fieldPath", ""), node)
        else:
            value = str(variable.get("value", ""))
        env[variable["name"]] = value
    return [f"{k}={v}" for k, v in env.items()]


def _tmpfs(volume: Object) -> str:
    options = ["rw", "exec", "nosuid", "nodev", "mode=0777"]
    limit = (volume.get("emptyDir") or {}).get("sizeLimit")
    if limit is not None and (size := quantity(limit)):
        options.append(f"size={int(size)}")
    return ",".join(options)


def docker_config(
    pod: Object, instance: str, node: str, network: str, image_config: Object
) -> Object:
    spec = pod["spec"]
    meta = pod["metadata"]
    container = spec["containers"][0]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    tmpfs, binds = {}, []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        path = mount["mountPath"]
        if "emptyDir" in volume:
            tmpfs[path] = _tmpfs(volume)
        elif "hostPath" in volume:
            mode = "ro" if mount.get("readOnly") else "rw"
            binds.append(f"{volume['hostPath']['path']}:{path}:{mode}")
    capabilities = (container.get("securityContext") or {}).get("capabilities") or {}
    host: Object = {
        "NetworkMode": "host" if spec.get("hostNetwork") else network,
        "ReadonlyRootfs": bool(security(pod, container, "readOnlyRootFilesystem")),
        "CapDrop": list(capabilities.get("drop") or []),
        "CapAdd": list(capabilities.get("add") or []),
        "Privileged": bool(security(pod, container, "privileged")),
        "SecurityOpt": [],
        "Tmpfs": tmpfs,
        "Binds": binds,
        "GroupAdd": [],
    }
    if security(pod, container, "allowPrivilegeEscalation") is False:
        host["SecurityOpt"].append("no-new-privileges")
    seccomp = (security(pod, container, "seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        host["SecurityOpt"].append("seccomp=unconfined")
    pod_security = spec.get("securityContext") or {}
    for group in [pod_security.get("fsGroup"), *(pod_security.get("supplementalGroups") or [])]:
        if group is not None:
            host["GroupAdd"].append(str(group))
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits and (memory := quantity(limits["memory"])):
        host["Memory"] = int(memory)
        host["MemorySwap"] = int(memory)
    if "cpu" in limits and (cpu := quantity(limits["cpu"])):
        host["NanoCpus"] = int(cpu * 1e9)
    config: Object = {
        "Image": container["image"],
        "Env": environment(pod, container, node),
        "Hostname": spec.get("hostname") or meta["name"][:63],
        "Labels": {
            LABEL: "kube",
            INSTANCE_LABEL: instance,
            POD_LABEL: f"{meta.get('namespace', '')}/{meta['name']}",
            UID_LABEL: meta["uid"],
        },
        "OpenStdin": bool(container.get("stdin")),
        "StdinOnce": bool(container.get("stdinOnce")),
        "Tty": bool(container.get("tty")),
        "HostConfig": host,
    }
    if container.get("command"):
        config["Entrypoint"] = list(container["command"])
        config["Cmd"] = list(container.get("args") or [])
    elif container.get("args"):
        config["Cmd"] = list(container["args"])
    if container.get("workingDir"):
        config["WorkingDir"] = container["workingDir"]
    user = run_as(pod, container, image_config)
    if user:
        config["User"] = user
    return config


def run_as(pod: Object, container: Object, image_config: Object) -> str:
    uid = security(pod, container, "runAsUser")
    gid = security(pod, container, "runAsGroup")
    if uid is None:
        return ""
    return f"{uid}:{gid}" if gid is not None else str(uid)


def non_root_error(pod: Object, container: Object, image_config: Object) -> str | None:
    """What the kubelet refuses when ``runAsNonRoot`` is set and it cannot prove it."""
    if security(pod, container, "runAsNonRoot") is not True:
        return None
    where = f'(pod: "{pod["metadata"]["name"]}_{pod["metadata"].get("namespace", "")}({pod["metadata"]["uid"]})", container: {container["name"]})'
    uid = security(pod, container, "runAsUser")
    if uid is not None:
        return f"container's runAsUser breaks non-root policy {where}" if uid == 0 else None
    image_user = str(image_config.get("User") or "").split(":")[0]
    if image_user in ("", "0"):
        return f"container has runAsNonRoot and image will run as root {where}"
    if not image_user.isdigit():
        return (
            f"container has runAsNonRoot and image has non-numeric user ({image_user}), "
            f"cannot verify user is non-root {where}"
        )
    return None
