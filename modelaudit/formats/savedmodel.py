"""A SavedModel folder (saved_model.pb, keras_metadata.pb, variables/): placeholder, being written."""

from __future__ import annotations

import os

from modelaudit.errors import ModelReadError
from modelaudit.graph import ModelGraph

SAVED_MODEL_PB = "saved_model.pb"


def is_savedmodel(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SAVED_MODEL_PB))


def read(path: str, scan=None) -> ModelGraph:
    raise ModelReadError("SavedModel folders are not read yet")
