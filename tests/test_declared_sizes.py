"""MA408 on what a config makes Keras allocate: the recomputed weights of every layer, in its
variable dtype, against `max-weight-bytes` (default 64 GiB); Keras's own variables are the truth."""

from __future__ import annotations

import pytest

import modelaudit


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras

    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, dtype="float64")(inp)
    x = L.BatchNormalization(dtype="mixed_float16")(x)  # float32 variables, float16 compute
    x = L.Flatten()(x)
    inner = keras.Sequential([keras.Input((144,)), L.Dense(5, dtype="bfloat16")], name="inner")
    model = keras.Model(inp, L.Dense(2)(inner(x)))
    path = str(tmp_path_factory.mktemp("sizes") / "model.keras")
    model.save(path)
    return model, path


def _ma408(path, bound):
    config = {"rules": {"oversized-declared-shape": {"max-weight-bytes": bound}}}
    return [f for f in modelaudit.audit(path, config).findings if f.code == "MA408"]


def test_bound_is_the_bytes_keras_allocates(saved):
    model, path = saved
    allocated = sum(v.numpy().nbytes for v in model.weights)  # each variable in its own dtype
    assert not _ma408(path, allocated)
    (over,) = _ma408(path, allocated - 1)
    assert f"create {allocated:,} bytes of weights" in over.message and "max-weight-bytes" in over.message
    assert not [f for f in modelaudit.audit(path).findings if f.code == "MA408"]  # 64 GiB by default


def test_bound_must_be_an_integer(saved):
    from modelaudit.errors import ConfigError

    _, path = saved
    with pytest.raises(ConfigError, match="max-weight-bytes"):
        _ma408(path, "64GiB")
