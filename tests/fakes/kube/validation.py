"""What the apiserver refuses (422) and fills in (defaulting) before anything is stored.

A small, deliberate part of k8s.io/kubernetes/pkg/apis/core/validation and
k8s.io/apimachinery/pkg/util/validation: object names (DNS-1123 subdomain, or label for
namespaces), label keys and values, annotations size, and the pod spec mistakes a
backend can make (no containers, a container without name or image, duplicate names,
a volumeMount naming no volume, a bad restartPolicy, unparsable resource quantities,
changes to an immutable pod spec). Messages are the upstream ones, so a test that prints
them shows what a real cluster would say. Defaults are those of pkg/apis/core/v1/defaults.go
that a reader of the object would notice (restartPolicy, terminationGracePeriodSeconds,
dnsPolicy, imagePullPolicy, ...).
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.kube import status
from tests.fakes.kube.status import Cause

Object = dict[str, Any]

DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + ")*"
_LABEL_RE = re.compile(f"^{DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN}$")
QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(f"^{QUALIFIED_NAME}$")
_LABEL_VALUE_RE = re.compile(f"^({QUALIFIED_NAME})?$")

LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{DNS1123_LABEL}')"
)
SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{DNS1123_SUBDOMAIN}')"
)
QUALIFIED_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    f"used for validation is '{QUALIFIED_NAME}')"
)
LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '({QUALIFIED_NAME})?')"
)


def dns_label(value: str, path: str) -> list[Cause]:
    causes = []
    if len(value) > 63:
        causes.append(status.invalid_value(path, value, "must be no more than 63 characters"))
    if not _LABEL_RE.match(value):
        causes.append(status.invalid_value(path, value, LABEL_ERROR))
    return causes


def dns_subdomain(value: str, path: str) -> list[Cause]:
    causes = []
    if len(value) > 253:
        causes.append(status.invalid_value(path, value, "must be no more than 253 characters"))
    if not _SUBDOMAIN_RE.match(value):
        causes.append(status.invalid_value(path, value, SUBDOMAIN_ERROR))
    return causes


def qualified_name(key: str, path: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        causes.append(status.invalid_value(path, key, "prefix part " + SUBDOMAIN_ERROR))
    if not name:
        causes.append(status.invalid_value(path, key, "name part must be non-empty"))
    elif len(name) > 63:
        causes.append(
            status.invalid_value(path, key, "name part must be no more than 63 characters")
        )
    elif not _QUALIFIED_RE.match(name):
        causes.append(status.invalid_value(path, key, QUALIFIED_ERROR))
    return causes


def metadata(obj: Object, namespaced_name_is_label: bool) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        causes.append(status.required("metadata.name", "name or generateName is required"))
    elif name:
        check = dns_label if namespaced_name_is_label else dns_subdomain
        causes += check(name, "metadata.name")
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(status.invalid_value("metadata.labels", str(labels), "must be a map"))
        labels = {}
    for key, value in labels.items():
        causes += qualified_name(key, "metadata.labels")
        if not isinstance(value, str):
            causes.append(status.invalid_value("metadata.labels", str(value), "must be a string"))
        elif len(value) > 63:
            causes.append(
                status.invalid_value("metadata.labels", value, "must be no more than 63 characters")
            )
        elif not _LABEL_VALUE_RE.match(value):
            causes.append(status.invalid_value("metadata.labels", value, LABEL_VALUE_ERROR))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += qualified_name(key.lower(), "metadata.annotations")
    total = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if total > 256 * 1024:
        causes.append(
            Cause(
                "FieldValueTooLong",
                f"Too long: may not be more than {256 * 1024} bytes",
                "metadata.annotations",
            )
        )
    return causes


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_FACTORS = {
    None: 1,
    "m": 0.001,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
QUANTITY_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def quantity(value: Any) -> float | None:
    """A resource.Quantity as a number (``"64Mi"`` -> 67108864, ``"500m"`` -> 0.5)."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number, suffix = match.groups()
    try:
        base = float(number)
    except ValueError:
        return None
    if suffix and suffix[0] in "eE":
        return base * 10 ** int(suffix[1:])
    return base * _FACTORS[suffix]


RESTART_POLICIES = ["Always", "OnFailure", "Never"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]


def pod_spec(spec: Any, path: str = "spec") -> list[Cause]:
    if not isinstance(spec, dict):
        return [status.required(path)]
    causes: list[Cause] = []
    volumes = spec.get("volumes") or []
    volume_names: set[str] = set()
    for index, volume in enumerate(volumes):
        name = volume.get("name", "")
        where = f"{path}.volumes[{index}].name"
        if not name:
            causes.append(status.required(where))
        else:
            causes += dns_label(name, where)
            if name in volume_names:
                causes.append(status.duplicate(where, name))
            volume_names.add(name)
    containers = spec.get("containers") or []
    if not containers:
        causes.append(status.required(f"{path}.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            where = f"{path}.{group}[{index}]"
            causes += _container(container, where, seen, volume_names)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in RESTART_POLICIES:
        causes.append(status.unsupported_value(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        causes.append(
            status.invalid_value(
                f"{path}.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    return causes


def _container(
    container: Object, where: str, seen: set[str], volume_names: set[str]
) -> list[Cause]:
    causes: list[Cause] = []
    name = container.get("name", "")
    if not name:
        causes.append(status.required(f"{where}.name"))
    else:
        causes += dns_label(name, f"{where}.name")
        if name in seen:
            causes.append(status.duplicate(f"{where}.name", name))
        seen.add(name)
    if not container.get("image"):
        causes.append(status.required(f"{where}.image"))
    pull = container.get("imagePullPolicy")
    if pull is not None and pull not in PULL_POLICIES:
        causes.append(status.unsupported_value(f"{where}.imagePullPolicy", pull, PULL_POLICIES))
    for index, mount in enumerate(container.get("volumeMounts") or []):
        mount_name = mount.get("name", "")
        if mount_name not in volume_names:
            causes.append(status.not_found_field(f"{where}.volumeMounts[{index}].name", mount_name))
        if not mount.get("mountPath"):
            causes.append(status.required(f"{where}.volumeMounts[{index}].mountPath"))
    for index, variable in enumerate(container.get("env") or []):
        if not variable.get("name"):
            causes.append(status.required(f"{where}.env[{index}].name"))
    for section in ("limits", "requests"):
        for resource, value in ((container.get("resources") or {}).get(section) or {}).items():
            if quantity(value) is None:
                causes.append(
                    status.invalid_value(
                        f"{where}.resources.{section}[{resource}]", str(value), QUANTITY_ERROR
                    )
                )
    return causes


MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def pod_update(old: Object, new: Object) -> list[Cause]:
    """Pod specs are immutable but for images, activeDeadlineSeconds and tolerations."""

    def comparable(spec: Object) -> Object:
        spec = {k: v for k, v in spec.items() if k not in MUTABLE_POD_SPEC}
        spec["containers"] = [
            {k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []
        ]
        spec["initContainers"] = [
            {k: v for k, v in c.items() if k != "image"} for c in spec.get("initContainers") or []
        ]
        return spec

    if comparable(old.get("spec") or {}) == comparable(new.get("spec") or {}):
        return []
    return [
        status.forbidden_field(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative)",
        )
    ]


def default_pod(pod: Object) -> None:
    """The defaults an object read back from a real apiserver carries."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            image = str(container.get("image", ""))
            tag = image.rpartition("/")[2]
            latest = ":" not in tag or tag.endswith(":latest")
            digest = "@" in image
            container.setdefault(
                "imagePullPolicy", "Always" if latest and not digest else "IfNotPresent"
            )
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
    for volume in spec.get("volumes") or []:
        if "emptyDir" in volume and volume["emptyDir"] is None:
            volume["emptyDir"] = {}
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def qos_class(spec: Object) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get("cpu")
        and (r.get("limits") or {}).get("memory")
        and (r.get("requests") or r.get("limits")) == r.get("limits")
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"
