"""Security cases: callables by any spelling in any config slot, unsafe flags in any spelling (issue 14
items 1 and 2). Nesting depth (item 5) is tests/test_depth.py.

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.
The spellings are those Keras's own deserializers resolve: keras/src/saving/serialization_lib.py
(`module + "." + name`, registered names), tf_keras/src/saving/serialization_lib.py (any module
imported, the registered name looked up in it, one `Outer.inner` attribute), and Keras 3's legacy .h5
loader (a layer's class_name looked up in `keras.src.layers.__dict__`).
"""

from __future__ import annotations

from tests.security.kit import Case, fn_ref, h5_config, h5_training, k3, set_at



def _nested_dense(out) -> str:
    """A Dense inside a Sequential inside a Functional model, saved by Keras 3."""
    import keras

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="deep")], name="inner")
    inp = keras.Input((4,), name="x")
    path = str(out / "k3_nested_dense.keras")
    keras.Model(inp, keras.layers.Dense(2, name="out")(inner(inp)), name="outer").save(path)
    return path


BASES: dict = {"k3_nested_dense": _nested_dense}
NESTED_DENSE = ["config", "layers", 1, "config", "layers", 1, "config"]

ACTIVATION = ["config", "layers", 1, "config", "activation"]
INITIALIZER = ["config", "layers", 1, "config", "kernel_initializer"]
ARGUMENTS = ["config", "layers", 1, "config", "arguments"]


def obj(module, class_name, config=None, registered=None) -> dict:
    return {"module": module, "class_name": class_name, "config": {} if config is None else config,
            "registered_name": registered}


def k3_at(path, attack, benign):
    """(make, twin) for one slot of the Keras 3 base: the attack's value and the benign one."""
    return k3(set_at(path, attack)), k3(set_at(path, benign))


def legacy_class(name):
    """A tf_keras .h5 whose Dense layer's class_name is `name` (Keras 3's legacy loader looks it up in
    keras.src.layers.__dict__)."""
    return h5_config(lambda cfg: cfg["config"]["layers"][1].update(class_name=name))


RELU = obj("keras.activations", "function", "relu")
HE = obj("keras.initializers", "HeNormal", {"seed": None})
CASES: list = []


def add(id, base, pair, code, layer, where):
    make, twin = pair
    CASES.append(Case(id, base, make, code, layer, where, twin=twin))


# ---- item 1: a dotted path split between module and name, and Keras's internal paths ------------
add("module-keras-name-utils-get-file", "k3_dense", k3_at(ACTIVATION, fn_ref("keras", "utils.get_file"),
    fn_ref("keras", "activations.relu")), "MA404", "dense", "`keras.utils.get_file` at `config.layers[1].config.activation`")
add("keras-src-datasets-load-data", "k3_dense", k3_at(ACTIVATION, fn_ref("keras.src.datasets.mnist", "load_data"),
    fn_ref("keras.src.activations.activations", "relu")), "MA404", "dense", "`keras.src.datasets.mnist.load_data`")
add("plot-model-as-loss", "k3_dense", k3_at(["compile_config", "loss"], fn_ref("keras.utils", "plot_model"),
    fn_ref("keras.losses", "mean_squared_error")), "MA404", None, "`keras.utils.plot_model` at `compile_config.loss`")
add("class-name-split-tfsmlayer", "k3_dense", k3_at(["config", "layers", 2], {
    "module": "keras", "class_name": "src.export.tfsm_layer.TFSMLayer", "config": {"name": "out"}, "registered_name": None},
    {"module": "keras.layers", "class_name": "Dense", "config": {"name": "out", "units": 2}, "registered_name": None}),
    "MA404", "out", "`src.export.tfsm_layer.TFSMLayer` at `config.layers[2]`")
add("schedule-nested-in-optimizer", "k3_dense", k3_at(["compile_config", "optimizer", "config", "learning_rate"],
    obj("keras", "datasets.cifar10.load_data"),
    obj("keras.optimizers.schedules", "ExponentialDecay",
        {"initial_learning_rate": 0.01, "decay_steps": 10, "decay_rate": 0.9, "staircase": False, "name": None})),
    "MA404", None, "`keras.datasets.cifar10.load_data` at `compile_config.optimizer.config.learning_rate`")
add("shorthand-string-activation", "k3_dense", k3_at(ACTIVATION, "keras.utils.get_file", "relu"),
    "MA404", "dense", "`keras.utils.get_file` at `config.layers[1].config.activation`")
add("metrics-list-of-strings", "k3_dense", k3_at(["compile_config", "metrics"], ["mae", "keras.saving.load_model"],
    ["mae", "mse"]), "MA404", None, "`keras.saving.load_model` at `compile_config.metrics[1]`")
add("tf-keras-h5-loss-split", "k2_dense", (
    h5_training(lambda cfg: cfg.update(loss=fn_ref("tf_keras", "utils.get_file"))),
    h5_training(lambda cfg: cfg.update(loss=fn_ref("tf_keras.losses", "mean_squared_error")))),
    "MA404", None, "`tf_keras.utils.get_file` at `training_config.loss`")
# ---- item 1: registered_name never downgrades a foreign reference ---------------------------------
add("registered-name-not-a-registration", "k3_dense", k3_at(INITIALIZER, obj("evil_pkg.payload", "Boom", registered="Other"),
    HE), "MA403", "dense", "registered_name 'Other' is not a registration")
add("registered-name-looked-up-in-module", "k3_dense", k3_at(INITIALIZER,
    obj("tf_keras.src.utils.data_utils", "Nothing", registered="get_file"), obj("keras.initializers", "HeNormal", {"seed": None}, "HeNormal")),
    "MA404", "dense", "`tf_keras.src.utils.data_utils.get_file`")
add("registered-name-naming-subprocess", "k3_dense", k3_at(INITIALIZER, obj("acme.layers", "Launcher", registered="subprocess>Popen"),
    HE), "MA403", "dense", "`subprocess>Popen`")
add("torch-load-registered", "k3_dense", k3_at(ACTIVATION, fn_ref("torch", "load", "Acme>load"), RELU),
    "MA403", "dense", "`torch.load` at `config.layers[1].config.activation`")
add("torch-serialization-load", "k3_dense", k3_at(ACTIVATION, fn_ref("torch.serialization", "load", "Acme>load"), RELU),
    "MA403", "dense", "`torch.serialization.load`")
add("pydoc-locate-registered", "k3_dense", k3_at(ACTIVATION, fn_ref("pydoc", "locate", "Custom>locate"), RELU),
    "MA403", "dense", "`pydoc.locate`")
add("numpy-load-registered", "k3_dense", k3_at(ACTIVATION, fn_ref("numpy", "load", "Custom>load"), RELU),
    "MA403", "dense", "`numpy.load`")
add("webbrowser-open", "k3_dense", k3_at(ACTIVATION, fn_ref("webbrowser", "open", "Custom>open"), RELU),
    "MA403", "dense", "`webbrowser.open`")
add("main-module-os-system", "k3_dense", k3_at(ACTIVATION, fn_ref("__main__", "os.system"),
    fn_ref("builtins", "relu")), "MA403", "dense", "`__main__.os.system`")
add("builtins-eval-by-registered-name", "k3_dense", k3_at(INITIALIZER, obj("builtins", "Foo", registered="eval"),
    HE), "MA403", "dense", "`builtins.eval`")
# ---- item 1: Keras 3's legacy .h5 loader resolves a class name in keras.src.layers.__dict__ --------
add("legacy-class-deserialize", "k2_dense", (legacy_class("deserialize"), legacy_class("Dense")),
    "MA404", "dense", "`deserialize` at `config.layers[1]`")
add("legacy-class-dunder-builtins", "k2_dense", (legacy_class("__builtins__"), legacy_class("Dense")),
    "MA403", "dense", "`__builtins__` at `config.layers[1]`")
add("legacy-class-dotted-gadget", "k2_dense", (legacy_class("keras.utils.get_file"), legacy_class("Dense")),
    "MA404", "dense", "`keras.utils.get_file`")

# ---- item 2: safe_mode in every falsy spelling, where a called function receives it ---------------
for label, value, shown in (("false", False, "false"), ("zero", 0, "0"), ("null", None, "null"),
                            ("string-false", "false", "false"), ("empty", "", ""), ("off", "Off", "Off")):
    add(f"safe-mode-{label}", "k3_dense", k3_at(ARGUMENTS, {"compile": False, "safe_mode": value},
        {"compile": False, "safe_mode": True}),
        "MA404", "dense", f"`safe_mode: {shown}` at `config.layers[1].config.arguments.safe_mode`")
add("global-safe-mode-saving-zero", "k3_dense", k3_at(ARGUMENTS, {"name": "safe_mode_saving", "value": 0},
    {"name": "safe_mode_saving", "value": True}),
    "MA404", "dense", "`safe_mode_saving` set to `0` at `config.layers[1].config.arguments.value`")

# ---- item 1: any slot, at any depth -------------------------------------------------------------
add("regularizer-in-nested-model", "k3_nested_dense", k3_at(NESTED_DENSE + ["kernel_regularizer"],
    fn_ref("keras.src.saving.saving_api", "load_model"), obj("keras.regularizers", "L2", {"l2": 0.01})),
    "MA404", "inner/deep", "`keras.src.saving.saving_api.load_model` at `config.layers[1].config.layers[1].config.kernel_regularizer`")
add("constraint-split-at-module", "k3_nested_dense", k3_at(NESTED_DENSE + ["kernel_constraint"],
    obj("keras.src", "utils.file_utils.get_file"), obj("keras.constraints", "NonNeg")),
    "MA404", "inner/deep", "`keras.src.utils.file_utils.get_file` at `config.layers[1].config.layers[1].config.kernel_constraint`")
add("typespec-spec-name-split", "k3_dense", k3_at(["config", "layers", 1, "config", "note"],
    {"module": "keras", "class_name": "__typespec__", "spec_name": "utils.get_file", "config": [], "registered_name": None},
    {"module": "tensorflow", "class_name": "__typespec__", "spec_name": "TensorSpec", "config": [[None, 4], "float32", None],
     "registered_name": None}), "MA404", "dense", "`keras.utils.get_file` at `config.layers[1].config.note`")
