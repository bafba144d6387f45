"""Sandbox images on a Docker engine: which one a sandbox uses, and making it present.

One module per job, each plain blocking code over docker-py (:mod:`.client`) that the
Docker backend runs on its engine's threads:

- :mod:`.resolve`: present -> pulled -> built locally, with the failure memory
  (:mod:`.memory`, in the cache directory of :mod:`.cache`);
- :mod:`.registry`: a pull with the user's credentials, bounded waiting, and one line for
  each kind of refusal;
- :mod:`.layers`: custom requirements as a content-hashed layer on the sandbox image;
- :mod:`.tiers`: the project's own tiers from ``sandbox/``; :mod:`.build`: any build's
  stream, its current step and last lines, and cleaning up after a failed one;
- :mod:`.check`: the image contract as a checklist; :mod:`.inventory`: ``ls`` and ``prune``;
- :mod:`.progress`: the events all of them report (the CLI renders them).
"""

from agent_runner.images.check import Checklist, Item
from agent_runner.images.client import Client
from agent_runner.images.inventory import ImageInfo, Pruned, list_images, prune_layers
from agent_runner.images.layers import LAYER_REPOSITORY, Layer, ensure_layer, layer_key
from agent_runner.images.memory import PullMemory
from agent_runner.images.progress import (
    BuildFinished,
    BuildOutput,
    BuildStarted,
    BuildStep,
    LayerProgress,
    ProgressCallback,
    ProgressEvent,
    PullFinished,
    PullStarted,
    Reporter,
    Step,
)
from agent_runner.images.resolve import Resolution, ensure_image, pull_image
from agent_runner.images.tiers import BASE_IMAGE_VARIABLE, OFFLINE_BASE, TIERS, build_tier

__all__ = [
    "BASE_IMAGE_VARIABLE",
    "LAYER_REPOSITORY",
    "OFFLINE_BASE",
    "TIERS",
    "BuildFinished",
    "BuildOutput",
    "BuildStarted",
    "BuildStep",
    "Checklist",
    "Client",
    "ImageInfo",
    "Item",
    "Layer",
    "LayerProgress",
    "ProgressCallback",
    "ProgressEvent",
    "Pruned",
    "PullFinished",
    "PullMemory",
    "PullStarted",
    "Reporter",
    "Resolution",
    "Step",
    "build_tier",
    "ensure_image",
    "ensure_layer",
    "layer_key",
    "list_images",
    "prune_layers",
    "pull_image",
]
