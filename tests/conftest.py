import os

# Quiet TensorFlow's start-up chatter in test logs; it changes nothing that is asserted.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import gc  # noqa: E402

import pytest  # noqa: E402


# Session caches emptied after the last test that uses their fixture (directly or through another
# fixture), not at the end of the run: the 40 applications' records and the zoo's Keras models would
# otherwise stay alive through every later test file, and the run's peak memory with them.
_RELEASED: dict = {}  # fixture name -> the dict it fills
_LAST_USER: dict = {}  # fixture name -> node id of the last collected test that uses it


def pytest_collection_finish(session):
    """Everything alive once the test modules are imported (TensorFlow's and Keras's modules among
    them, 300,000+ objects) is moved out of the garbage collector's reach: it lives for the whole run
    anyway, and each full collection (Keras runs one in every clear_session() and in quantize()) then
    skips it instead of taking a quarter of a second. Garbage made later is collected as before."""
    for item in session.items:  # the final selection, after -k and deselection
        for name in getattr(item, "fixturenames", ()):
            _LAST_USER[name] = item.nodeid
    gc.collect()  # only live objects are frozen: nothing collectable is kept
    gc.freeze()


def pytest_runtest_teardown(item, nextitem):
    for name, cache in _RELEASED.items():
        if cache and _LAST_USER.get(name) == item.nodeid:
            cache.clear()
            # what was frozen with the cache goes back to the collector, so that any cycle in it is freed
            gc.unfreeze()
            gc.collect()
            gc.freeze()


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """Every zoo model built once and saved in every format: {name: (model, {format: path})}."""
    import keras
    import tf_keras

    from tests import zoo as zoo_module

    folder = str(tmp_path_factory.mktemp("zoo"))
    out = _RELEASED["zoo"] = {}
    for name, builder in zoo_module.KERAS3.items():
        model = builder(keras)
        out[name] = (model, zoo_module.save_all(name, model, folder, keras2=False))
    for name, builder in zoo_module.KERAS2.items():
        model = builder(tf_keras)
        out[name] = (model, zoo_module.save_all(name, model, folder, keras2=True))
    _freeze_survivors()
    return out


def _freeze_survivors() -> None:
    """A session cache just built: its garbage collected, what lives on frozen (as at collection)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory):
    """The samples rebuilt by samples/make_samples.py into a fresh folder (not the committed ones)."""
    from samples import make_samples

    folder = str(tmp_path_factory.mktemp("samples"))
    for name in make_samples.SAMPLES:
        make_samples.build(name, folder)
    _freeze_survivors()
    return folder


@pytest.fixture(scope="session")
def application(tmp_path_factory):
    """`application(name)`: keras.applications.<name>(weights=None), built once per test session.

    Building all 40 takes most of a minute, so each is built on first use, recorded (Keras's per-node
    counts and shapes, our live graph, and for the small ones our graphs of its saved .keras and .h5)
    and freed; every later test reads the record (tests/differential/test_applications.py). Only the
    saved ones are built with weight values, so no application's weights (up to 1.4 GB) are ever held.
    """
    from tests.differential.test_applications import build_application

    built = _RELEASED["application"] = {}

    def get(name: str):
        if name not in built:
            built[name] = build_application(name, tmp_path_factory.mktemp(name))
            # The records stay until their last test (_RELEASED): frozen like the modules (the builder's
            # clear_session has just collected the model), each later collection skips them: the 40
            # builds' collections took 9 s when each traversed the records before it.
            gc.freeze()
        return built[name]

    return get
