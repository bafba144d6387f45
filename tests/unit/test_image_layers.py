"""A layer's name is a hash of everything that changes it, and nothing else."""

import re

import pytest

from agent_runner import Settings
from agent_runner.errors import ImageNotFound
from agent_runner.images import layers
from agent_runner.images.client import Client
from agent_runner.images.layers import LayerPlan, layer_key, layer_tag, plan_layer
from agent_runner.requirements import Requirements

BASE_ID = "sha256:" + "a" * 64


class FakeErrors:
    class APIError(Exception):
        pass

    class ImageNotFound(APIError):
        pass


class FakeApi:
    def __init__(self, images):
        self.images = images

    def inspect_image(self, reference):
        if reference not in self.images:
            raise FakeErrors.ImageNotFound(reference)
        return self.images[reference]


def client(user="1000:1000"):
    images = {"base:1": {"Id": BASE_ID, "Config": {"User": user, "Labels": {}}}}
    return Client(FakeApi(images), FakeErrors)


@pytest.fixture
def requirements(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("six==1.16.0\n")
    return Requirements.read(path)


@pytest.fixture
def ca(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return path


def settings(ca_bundle=None):
    return Settings.defaults(sandbox={"ca_bundle": ca_bundle} if ca_bundle else {})


def test_the_same_inputs_give_the_same_tag(requirements, ca):
    first = plan_layer(client(), settings(ca), "base:1", requirements)
    again = plan_layer(client(), settings(ca), "base:1", Requirements.read(requirements.path))
    assert first.tag == again.tag
    assert re.fullmatch(r"stigmer/agent-sandbox-layer:[0-9a-f]{16}", first.tag)
    assert first.tag == layer_tag(first.key)


def test_every_input_changes_the_key():
    base = layer_key(BASE_ID, "r" * 64, "c" * 64)
    assert layer_key("sha256:" + "b" * 64, "r" * 64, "c" * 64) != base  # another base image
    assert layer_key(BASE_ID, "s" * 64, "c" * 64) != base  # other file bytes
    assert layer_key(BASE_ID, "r" * 64, "d" * 64) != base  # another CA bundle
    assert layer_key(BASE_ID, "r" * 64, None) != base  # no CA bundle at all


def test_the_recipe_and_its_install_options_are_in_the_key(monkeypatch):
    dockerfile_only = layers.hashlib.sha256(layers.DOCKERFILE.encode()).hexdigest()
    assert dockerfile_only != layers.RECIPE, "the install options are hashed with the Dockerfile"
    before = layer_key(BASE_ID, "r" * 64, None)
    monkeypatch.setattr(layers, "RECIPE", "another recipe")
    assert layer_key(BASE_ID, "r" * 64, None) != before


def test_the_base_is_named_by_id_so_a_retag_cannot_slip_in(requirements):
    plan = plan_layer(client(), settings(), "base:1", requirements)
    assert plan.dockerfile().startswith(f"FROM {BASE_ID}\n")
    assert plan.labels["stigmer.layer.base"] == BASE_ID
    assert plan.labels["stigmer.layer.base-ref"] == "base:1"


def test_the_ca_bundle_is_given_to_pip_only_when_there_is_one(requirements, ca, monkeypatch):
    with_ca = plan_layer(client(), settings(ca), "base:1", requirements)
    install = next(line for line in with_ca.dockerfile().splitlines() if "PIP_BREAK" in line)
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert f"{variable}=/tmp/stigmer-layer/ca-bundle.crt " in install
    assert with_ca.ca == ca.read_bytes()
    monkeypatch.setattr(layers, "HOST_CA_BUNDLE", ca.parent / "absent.crt")
    without = plan_layer(client(), settings(), "base:1", requirements)
    assert without.ca is None
    assert "ca-bundle.crt" not in without.dockerfile()
    assert without.labels["stigmer.layer.ca-sha"] == "none"


def test_the_host_bundle_is_the_default(requirements, ca, monkeypatch):
    monkeypatch.setattr(layers, "HOST_CA_BUNDLE", ca)
    assert plan_layer(client(), settings(), "base:1", requirements).ca == ca.read_bytes()


def test_the_layer_installs_as_root_and_gives_the_image_its_user_back(requirements):
    dockerfile = plan_layer(client("1000:1000"), settings(), "base:1", requirements).dockerfile()
    lines = dockerfile.splitlines()
    assert lines[1] == "USER 0:0"
    assert "USER 1000:1000" in lines
    assert "python3 -m pip install --no-cache-dir" in dockerfile
    assert "rm -rf /tmp/stigmer-layer /root/.cache" in dockerfile
    root = plan_layer(client(""), settings(), "base:1", requirements).dockerfile()
    assert "USER 0:0" in root.splitlines()[-2]


def test_labels_say_what_it_is_made_of(requirements):
    plan = plan_layer(client(), settings(), "base:1", requirements)
    label_line = plan.dockerfile().splitlines()[-1]
    assert label_line.startswith("LABEL ")
    assert f'stigmer.layer.key="{plan.key}"' in label_line
    assert plan.labels["stigmer.image"] == "layer"
    assert plan.labels["stigmer.layer.requirements"] == str(requirements.path)
    assert plan.labels["stigmer.layer.requirements-sha"] == requirements.sha256


def test_a_missing_base_or_an_odd_user_is_one_line(requirements):
    with pytest.raises(ImageNotFound, match="not present, so no layer can be built on it"):
        plan_layer(client(), settings(), "other:2", requirements)
    with pytest.raises(ImageNotFound, match="a layer cannot restore"):
        plan_layer(client("1000\nRUN evil"), settings(), "base:1", requirements)


def test_a_failed_install_shows_pip_s_last_lines_with_the_host_path(requirements):
    from agent_runner.images.build import BuildFailed

    plan = LayerPlan("base:1", BASE_ID, "", requirements, None)
    lines = [f"noise {n}" for n in range(10)] + [
        "ERROR: Invalid requirement: 'x y' (from line 1 of /tmp/stigmer-layer/requirements.txt)"
    ]
    error = layers._refusal(plan, BuildFailed("returned a non-zero code: 1", "Step 4/6", lines, 1))
    assert error.message == (
        f"cannot install requirements file {requirements.path} on base:1 (pip exited with 1); "
        "pip's last lines:"
    )
    assert len(error.details) == layers.SHOWN_LINES
    assert error.details[-1].endswith(f"(from line 1 of {requirements.path})")
    no_pip = layers._refusal(plan, BuildFailed("code: 98", "Step 4/6", [], layers.NO_PIP))
    assert "base:1 has no pip" in no_pip.message
    no_python = layers._refusal(plan, BuildFailed("code: 97", "Step 4/6", [], layers.NO_PYTHON))
    assert "base:1 has no python3" in no_python.message
