"""File -> ModelGraph. Never imports keras; never executes anything a file contains."""

from __future__ import annotations

from modelaudit.errors import ModelReadError, exception_text
from modelaudit.graph import ModelGraph


def read(path: str, scan=None) -> ModelGraph:
    """Read any supported model file, chosen by its content. Raises ModelReadError with one line.

    `scan`: a formats.scan.WeightScan, filled in while the weights are open (--scan-weights); a JSON
    config has no weights and leaves it empty."""
    import os

    from modelaudit.formats.detect import HDF5, JSON, SAVED_MODEL_PB, ZIP, detect, is_savedmodel

    extra = {"scan": scan} if scan is not None else {}
    try:
        if os.path.isdir(path):
            if is_savedmodel(path):
                from modelaudit.formats import savedmodel

                return savedmodel.read(path, **extra)
        elif os.path.basename(path) == SAVED_MODEL_PB:  # a SavedModel's file named instead of its folder
            from modelaudit.formats import savedmodel

            return savedmodel.read(os.path.dirname(path) or ".", **extra)
        kind = detect(path)
        if kind == ZIP:
            from modelaudit.formats import keras_v3

            return keras_v3.read(path, **extra)
        if kind == HDF5:
            from modelaudit.formats import legacy_h5

            return legacy_h5.read(path, **extra)
        if kind == JSON:
            from modelaudit.formats import json_config

            return json_config.read(path)
    except RecursionError:
        raise ModelReadError("structure nested too deeply") from None
    except MemoryError:
        raise ModelReadError("structure too large to read") from None
    except ModelReadError:
        raise
    except Exception as exc:  # fail closed: a damaged file the readers did not foresee is one line, not a traceback
        raise ModelReadError(f"damaged or unexpected content ({type(exc).__name__}: {exception_text(exc)})") from None
    raise ModelReadError("unknown format")  # pragma: no cover - detect() returns one of the three
