"""A TensorFlow.js Layers model.json (modelTopology + weightsManifest): placeholder, being written."""

from __future__ import annotations

from typing import Any

from modelaudit.errors import ModelReadError
from modelaudit.graph import ModelGraph


def is_layers_model(data: Any) -> bool:
    """A parsed model.json written by the TensorFlow.js converter or `tfjs.layers.save`."""
    return isinstance(data, dict) and ("modelTopology" in data or data.get("format") == "layers-model")


def read(path: str, data: dict, file_size: int) -> ModelGraph:
    raise ModelReadError("TensorFlow.js models are not read yet")
