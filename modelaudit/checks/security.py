"""MA4xx: security and auditability — the known attacks on Keras model loading, seen from structure.

Nothing here runs, imports, unmarshals or unpickles anything a file holds. One walk over the whole raw
config (every object at any depth, not only `layers`; the compile/training config too) records what it
sees as `Sighting`s; each rule turns its kind of sighting into findings. The container facts (zip
members, HDF5 links, oversized datasets) come from the readers as `SourceFacts`.

Severity never depends on the `keras_version` a file declares: the attacker writes that too.
"""

from __future__ import annotations

import binascii
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from modelaudit.engine import Rule, Severity, register

# ---- what Keras itself writes, and what it never should ------------------------------------------

# Packages whose modules Keras's own configs name (Keras 3 resolves only the first four by import).
KERAS_FAMILY = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp", "tensorflow", "tf_keras"})

# Modules whose import or whose callables give a loader process execution, files, network or reflection.
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "shutil", "socket", "socketserver", "ssl",
    "importlib", "imp", "runpy", "sys", "pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle",
    "joblib", "shelve", "dbm", "ctypes", "_ctypes", "cffi", "pty", "code", "codeop", "commands", "popen2",
    "platform", "webbrowser", "urllib", "urllib2", "urllib3", "requests", "httpx", "aiohttp", "http",
    "ftplib", "smtplib", "telnetlib", "poplib", "imaplib", "nntplib", "xmlrpc", "asyncio", "multiprocessing",
    "concurrent", "threading", "_thread", "signal", "tempfile", "pathlib", "glob", "io", "_io", "fileinput",
    "zipimport", "pkgutil", "types", "inspect", "operator", "functools", "gc", "pdb", "bdb", "trace", "timeit",
    "cProfile", "profile", "tkinter", "antigravity", "ensurepip", "pip", "setuptools", "distutils", "venv",
    "site", "zipfile", "tarfile", "sqlite3", "mmap", "resource", "pwd", "grp", "fcntl", "select", "selectors",
    "__builtin__",
})
# Python builtins that evaluate, import, open files or reach into objects. Keras 3 writes
# `"module": "builtins"` for plain functions (a Lambda's named function, a loss given as a function), so
# the module alone is normal; the name decides.
DANGEROUS_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "input", "breakpoint", "exit", "quit", "help", "__build_class__", "memoryview", "__loader__",
})
# Callables that run commands, touch files or the network, whatever module claims them.
DANGEROUS_CALLABLES = frozenset({
    "system", "popen", "popen2", "popen3", "popen4", "spawnl", "spawnle", "spawnlp", "spawnv", "spawnve",
    "spawnvp", "spawnvpe", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "fork", "forkpty", "kill", "killpg", "unlink", "rmtree", "removedirs", "chmod", "chown", "symlink",
    "putenv", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput", "eval", "exec",
    "__import__", "import_module", "run_module", "run_path", "urlopen", "urlretrieve", "create_connection",
})
# Keras's (and TensorFlow's) own functions that are not modeling operations: fetching or writing files,
# loading other models, flipping global state such as safe mode (CVE-2025-8747, CVE-2025-9906), and the
# layers that load code from elsewhere (TFSMLayer: a SavedModel at a path; TorchModuleWrapper: a pickle).
KERAS_GADGETS = frozenset({
    "get_file", "enable_unsafe_deserialization", "set_global_attribute", "load_model", "load_weights",
    "save_model", "save_weights", "model_from_json", "model_from_yaml", "model_from_config",
    "deserialize_keras_object", "register_keras_serializable", "func_load", "load_img", "save_img",
    "image_dataset_from_directory", "text_dataset_from_directory", "audio_dataset_from_directory",
    "clear_session", "extract_archive", "write_file", "read_file",
    "WriteFile", "ReadFile", "py_function", "numpy_function", "py_func", "eager_py_func", "PyFunc",
    "EagerPyFunc", "PyFuncStateless", "load_op_library", "load_library", "GFile",
})
# Module path components under which nothing is a modeling object.
GADGET_NAMESPACES = frozenset({
    "saving", "global_state", "file_utils", "python_utils", "gfile", "file_io", "io_ops", "gen_io_ops",
    "script_ops", "gen_script_ops", "saved_model", "load_library",
})
GADGET_MODULES = frozenset({"keras.config", "keras.src.backend.config", "tf_keras.config"})
GADGET_CLASSES = frozenset({"TFSMLayer", "TorchModuleWrapper"})
# tf_keras registers some of its own classes under the default "Custom>" package.
TF_KERAS_REGISTERED = frozenset(
    "Custom>" + n for n in (
        "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Adafactor", "Ftrl", "Lion", "Nadam", "RMSprop",
        "SGD", "SharpnessAwareMinimization", "CustomScaleLayer",
    )
)
# Config keys whose string value Keras (or keras_hub) opens as a file or fetches (CVE-2025-12058:
# StringLookup's `vocabulary` read with tf.io.gfile, which also speaks http/gs/hdfs).
LOADER_KEYS = frozenset({
    "vocabulary", "merges", "proto", "spm_proto", "filepath", "file_path", "fname", "origin", "cache_dir",
    "cache_subdir", "directory", "handle", "export_dir", "saved_model_dir", "vocabulary_file", "path",
})
# Lists of data, not references: their tokens ("../", "http://") are words, not paths.
DATA_KEYS = frozenset({"vocabulary", "merges", "stop_words", "idf_weights", "value", "mean", "variance"})
# A Keras 2 Lambda config keeps each function in three keys: value, type, module.
FUNCTION_SLOTS = (("function", "function_type", "module"), ("output_shape", "output_shape_type", "output_shape_module"),
                  ("mask", "mask_type", "mask_module"))

MAX_WALK_DEPTH = 256  # the readers bound JSON depth to 200; a live model's config is bounded here
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,15}://\S")
PATH = re.compile(r"^(?:/[^/\s]+(?:/[^/\s]*)+|[A-Za-z]:[\\/]\S*|\\\\[^\\\s]+\\\S*|~[\\/]\S*|file:\S+)$|(?:^|[\\/])\.\.(?:[\\/]|$)")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


# ---- marshalled code, recognised by its header bytes (never unmarshalled) ------------------------


def looks_like_code_object(data: bytes) -> bool:
    """marshal's code-object header: type 'c' (0x63, or 0xE3 with FLAG_REF), a small argcount, then the
    bytecode as a bytes object ('s', 0x73/0xF3) after 4 (Python 2), 5 (3.0-3.7, 3.11+) or 6 (3.8-3.10)
    little-endian int32 fields."""
    if len(data) < 18 or data[0] not in (0x63, 0xE3):
        return False
    if int.from_bytes(data[1:5], "little") > 255:  # argcount
        return False
    return any(len(data) > at and data[at] in (0x73, 0xF3) for at in (17, 21, 25))


_CODE_FIRST = frozenset("4Yc\xe3 \t\r\n")


def carries_code(text: str) -> bool:
    """A string that is base64 of a marshalled code object (how Keras's func_dump writes a lambda), or the
    raw marshal bytes themselves (func_load falls back to those when base64 fails)."""
    if text[:1] not in _CODE_FIRST:  # the common case, decided by one character
        return False
    head = text.lstrip()
    if not head:
        return False
    if head[0] in "4Y":  # the base64 of 0xE3 / 0x63
        compact = "".join(head[:64].split())
        if len(compact) < 24:
            return False
        try:
            prefix = binascii.a2b_base64(compact[: len(compact) // 4 * 4])
        except (binascii.Error, ValueError):
            return False
        return looks_like_code_object(prefix) and BASE64.match(text) is not None
    if head[0] in "c\xe3" and len(head) >= 18 and all(ord(ch) < 256 for ch in head[:32]):
        return looks_like_code_object(head[:32].encode("latin-1"))
    return False


# ---- one walk over the whole config ------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """Something the walk saw: its kind, where (JSON location, enclosing layer path), and what it is."""

    kind: str  # bytecode | lambda | dangerous | foreign | gadget | path | custom | too-deep
    location: str
    layer: Optional[str]
    subject: str  # what sits there, e.g. "`os.system`"
    detail: str  # why it matters
    severity: Optional[Severity] = None  # None: the rule's own

    @property
    def message(self) -> str:
        return f"{self.subject} at `{self.location or '(root)'}`: {self.detail}"


BYTECODE = "loading it with safe_mode off runs it, and legacy .h5 loading ignored safe_mode (CVE-2025-9905)"
IMPORTED = "a loader that imports it runs code the file chooses (CVE-2025-1550)"
GADGET = ("not a modeling operation; called while loading, it can fetch or write files, load another model or "
          "turn safe mode off (CVE-2025-8747, CVE-2025-9906)")


def _join(loc, key):
    """A child's location, kept as (parent, key) links and rendered only for a sighting: the walk
    visits every value, and building every path as a string would cost more than the checks."""
    return (loc, key)


def _render(loc) -> str:
    """(parent, key) links -> `config.layers[3].config.function`."""
    keys = []
    while isinstance(loc, tuple):
        loc, key = loc
        keys.append(key)
    text = loc
    for key in reversed(keys):
        if isinstance(key, int):
            text += f"[{key}]"
        elif str(key).isidentifier():
            text = f"{text}.{key}" if text else str(key)
        else:
            text += f"[{json.dumps(str(key))}]"
    return text


def _layer_name(item: dict) -> Optional[str]:
    cfg = item.get("config")
    name = item.get("name", cfg.get("name") if isinstance(cfg, dict) else None)
    return name if isinstance(name, str) and name else None


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Walk:
    def __init__(self):
        self.out: list[Sighting] = []

    def see(self, kind, location, layer, subject, detail, severity=None):
        self.out.append(Sighting(kind, _render(location), layer, subject, detail, severity))

    def run(self, root: Any, label: str) -> None:
        # Iterative and depth-bounded: a hostile nesting cannot exhaust the stack.
        # (node, location, depth, enclosing layer path, inside serialized bytecode, key holding it, owner class)
        stack = [(root, label, 0, None, False, None, None)]
        while stack:
            node, loc, depth, layer, quiet, held_by, owner = stack.pop()
            if depth > MAX_WALK_DEPTH:
                self.see("too-deep", loc, layer, "the config",
                         f"nested deeper than {MAX_WALK_DEPTH} levels: not audited below", Severity.WARNING)
                continue
            children = []
            if isinstance(node, dict):
                self.object(node, loc, layer, quiet)
                cn = node.get("class_name")
                owner = cn if isinstance(cn, str) else owner
                code_slots = {f for f, t, _ in FUNCTION_SLOTS if node.get(t) == "lambda"}
                for key, value in node.items():
                    child = _join(loc, key)
                    hush = quiet or cn == "__lambda__" or key in code_slots
                    if isinstance(value, (dict, list)):
                        children.append((value, child, depth + 1, layer, hush, key, owner))
                    else:
                        self.value(value, key, child, layer, hush, owner)
            elif isinstance(node, list) and held_by in DATA_KEYS:  # tokens: only bytecode matters here
                for i, item in enumerate(node):
                    if isinstance(item, (dict, list)):
                        keep = held_by if isinstance(item, list) else None
                        children.append((item, (loc, i), depth + 1, layer, quiet, keep, owner))
                    elif not quiet and isinstance(item, str) and item[:1] in _CODE_FIRST and carries_code(item):
                        self.bytecode_string((loc, i), layer)
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    child = (loc, i)
                    item_layer = layer
                    if held_by == "layers" and isinstance(item, dict) and _layer_name(item):
                        item_layer = f"{layer}/{_layer_name(item)}" if layer else _layer_name(item)
                    if isinstance(item, (dict, list)):
                        keep = held_by if isinstance(item, list) else None
                        children.append((item, child, depth + 1, item_layer, quiet, keep, owner))
                    else:
                        self.value(item, None, child, layer, quiet, owner)
            stack.extend(reversed(children))

    # -- leaves --

    def bytecode_string(self, loc, layer) -> None:
        self.see("bytecode", loc, layer, "a string that decodes to a marshalled Python code object", BYTECODE)

    def value(self, value: Any, key: Any, loc: str, layer, quiet: bool, owner: Optional[str]) -> None:
        if key == "safe_mode" and value is False:
            self.see("gadget", loc, layer, "`safe_mode: false`",
                     "asks the function that receives it to turn Keras's safe mode off (CVE-2025-9906)")
            return
        if not isinstance(value, str) or not value:
            return
        if not quiet and carries_code(value):
            self.bytecode_string(loc, layer)
            return
        if key in LOADER_KEYS:
            why = ("Keras reads this vocabulary through tf.io.gfile while loading, from the loading machine's "
                   "files or the network (CVE-2025-12058)") if key == "vocabulary" else (
                   "a file path or URL handed to code that opens or fetches it while loading")
            self.see("path", loc, layer, f"{owner or 'an object'} `{key}` {_short(value)!r}", why)
        elif len(value) <= 4096 and (URL.match(value) or PATH.search(value)):
            self.see("path", loc, layer, f"the string {_short(value)!r}",
                     "a file path or URL; a model config has no business pointing outside the file", Severity.WARNING)

    # -- objects --

    def object(self, d: dict, loc: str, layer, quiet: bool) -> None:
        cn = d.get("class_name") if isinstance(d.get("class_name"), str) else None
        if cn == "__lambda__" and not quiet:
            self.see("bytecode", loc, layer, "a Keras 3 `__lambda__` object (marshalled Python bytecode)", BYTECODE)
        for fkey, tkey, mkey in FUNCTION_SLOTS:  # a Keras 2 Lambda config: value, type and module per function
            if tkey not in d:
                continue
            kind = d.get(tkey)
            if kind == "lambda" and fkey in d and not quiet:
                self.see("bytecode", _join(loc, fkey), layer,
                         f"a Keras 2 lambda (`{tkey}: \"lambda\"`, marshalled Python bytecode)", BYTECODE)
            if isinstance(d.get(mkey), str):  # the module whose globals the function sees, or it is looked up in
                name = d.get(fkey) if kind == "function" and isinstance(d.get(fkey), str) else None
                self.reference(d[mkey], name, None, _join(loc, mkey if name is None else fkey), layer,
                               slot="function" if kind == "function" else "lambda")
        if cn == "Lambda" and isinstance(d.get("config"), dict) and not _lambda_bytecode(d["config"]):
            self.see("lambda", loc, layer, f"Lambda layer calling `{_describe_function(d['config'])}`",
                     "its computation and output shape cannot be audited, and loading it needs that function's code")
        if cn == "TFSMLayer":
            self.see("gadget", loc, layer, "`TFSMLayer`",
                     "loads a TensorFlow SavedModel from the path in its config, whatever safe_mode says (CVE-2026-1462)")
        elif cn == "TorchModuleWrapper":
            self.see("gadget", loc, layer, "`TorchModuleWrapper`", "unpickles the torch module its config carries")
        if cn in ("TFOpLambda", "SlicingOpLambda") and isinstance(d.get("config"), dict):
            fn = d["config"].get("function")
            if isinstance(fn, str) and _gadget_parts(fn.split(".")):
                self.see("gadget", _join(_join(loc, "config"), "function"), layer, f"{cn} calling `tf.{fn}`", GADGET)
        if cn is None:
            return
        if "module" in d:  # a Keras 3 serialized object
            name = cn
            if cn == "function" and isinstance(d.get("config"), str):
                name = d["config"]
            elif cn == "__typespec__" and isinstance(d.get("spec_name"), str):
                name = d["spec_name"]
            module = d["module"]
            if module is None:
                self.custom(loc, layer, name, f"module null, registered as {d.get('registered_name')!r}")
            elif isinstance(module, str):
                self.reference(module, name, d.get("registered_name"), loc, layer, function=cn == "function")
            else:
                self.see("foreign", loc, layer, f"module {_short(module)}", "not a module name; " + IMPORTED)
        elif ">" in cn and cn not in TF_KERAS_REGISTERED:  # tf_keras names registered classes "Package>Name"
            self.custom(loc, layer, cn, "a registered class")

    def custom(self, loc, layer, name, how) -> None:
        self.see("custom", loc, layer, f"custom object `{name}` ({how})",
                 "loading it needs user code; where modelaudit has no spec for it, its shapes come from the "
                 "file's records")

    def reference(self, module: str, name: Optional[str], registered: Any, loc: str, layer, slot=None,
                  function: bool = False) -> None:
        """A module, and the name looked up in it, that a loader may import. `slot`: set for a Keras 2
        Lambda's function ("function" or "lambda"), whose module only lends the function its globals."""
        qual = f"`{module}.{name}`" if name else f"module `{module}`"
        root = module.split(".")[0]
        if not module or root == "__main__":
            if not slot and name:
                self.custom(loc, layer, name, "defined in the saving script")
            return
        if root in KERAS_FAMILY:
            if module in GADGET_MODULES or name in KERAS_GADGETS or _gadget_parts(module.split(".")[1:]):
                self.see("gadget", loc, layer, qual, GADGET)
            return
        if root == "builtins":
            if name in DANGEROUS_BUILTINS:
                self.see("dangerous", loc, layer, qual, "a Python builtin that evaluates code, imports or opens files; "
                         + IMPORTED)
            elif not slot and not function:  # a class Keras wrote from code run without a module (exec)
                self.custom(loc, layer, name, f"registered as {registered!r}")
            return
        if root in DANGEROUS_MODULES or name in DANGEROUS_CALLABLES:
            self.see("dangerous", loc, layer, qual, "a known-dangerous module or callable; " + IMPORTED)
        elif slot == "function":
            self.custom(loc, layer, f"{module}.{name}" if name else module, "a Keras 2 Lambda's function")
        elif slot == "lambda":
            return  # the bytecode's own globals: MA401 already reports the bytecode
        elif isinstance(registered, str) and registered:
            self.custom(loc, layer, f"{module}.{name}", f"registered as {registered!r}")
        else:
            self.see("foreign", loc, layer, qual, "a module outside the Keras family, with no registered name; "
                     + IMPORTED)


def _gadget_parts(parts: list) -> bool:
    return bool(parts) and (parts[-1] in KERAS_GADGETS or any(p in GADGET_NAMESPACES for p in parts))


def _lambda_bytecode(cfg: dict) -> bool:
    fn = cfg.get("function")
    if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
        return True
    if cfg.get("function_type") == "lambda":
        return True
    items = fn if isinstance(fn, list) else [fn]
    return any(isinstance(x, str) and carries_code(x) for x in items)


def _describe_function(cfg: dict) -> str:
    fn = cfg.get("function")
    if isinstance(fn, dict):
        name = fn.get("config") if isinstance(fn.get("config"), str) else fn.get("class_name")
        module = fn.get("module")
    else:
        name, module = fn, cfg.get("module")
    if not isinstance(name, str):
        return "a function the config names"
    return f"{module}.{name}" if isinstance(module, str) and module else name


# ---- one scan per model, shared by the rules ----------------------------------------------------


@dataclass
class Scan:
    sightings: list
    weight_owner: dict  # HDF5 dataset path -> layer path


_CACHE: dict = {}


def scan(model) -> Scan:
    """Every sighting in the model's configs, computed once per model however many rules ask."""
    graph = model.graph
    hit = _CACHE.get(id(graph))
    if hit is not None and hit[0] is graph:
        return hit[1]
    walk = _Walk()
    if graph.config:
        walk.run(graph.config, "")
    # The compile config: inside the config for .keras and JSON; beside it in a legacy .h5.
    inside = graph.config.get("compile_config") if isinstance(graph.config, dict) else None
    raw = graph.objective.raw if graph.objective is not None else None
    training = graph.source.training_config
    for extra in (training, raw if raw is not training else None):
        if extra and extra is not inside:
            walk.run(extra, "training_config" if graph.format == "keras-h5" else "compile_config")
    owner = {}
    for path, layer, _ in graph.walk():
        for w in layer.weights or ():
            owner[w.path] = path
    result = Scan(walk.out, owner)
    # One model at a time: the rules of a file run together, and a multi-file run must not keep
    # earlier files' graphs alive.
    _CACHE.clear()
    _CACHE[id(graph)] = (graph, result)
    return result


class _SightingRule(Rule):
    """A rule that reports one or more kinds of sighting from the shared config walk."""

    kinds: tuple = ()

    def check(self, model) -> Iterator:
        for s in scan(model).sightings:
            if s.kind in self.kinds:
                yield self.finding(s.layer, s.message, s.severity)


# ---- the rules -----------------------------------------------------------------------------------


@register
class LambdaBytecode(_SightingRule):
    code = "MA401"
    name = "lambda-bytecode"
    severity = Severity.ERROR
    summary = "Serialized Python bytecode in the config: loading with safe_mode off runs it"
    kinds = ("bytecode",)


@register
class LambdaLayer(_SightingRule):
    code = "MA402"
    name = "lambda-layer"
    severity = Severity.WARNING
    summary = "A Lambda layer by reference: its computation and shape cannot be audited"
    kinds = ("lambda",)


@register
class ForeignModuleReference(_SightingRule):
    code = "MA403"
    name = "foreign-module-reference"
    severity = Severity.ERROR
    summary = "A config object names a module outside the Keras family or a known-dangerous callable"
    kinds = ("dangerous", "foreign", "too-deep")


@register
class DangerousKerasFunction(_SightingRule):
    code = "MA404"
    name = "dangerous-keras-function"
    severity = Severity.ERROR
    summary = "A config references Keras functions usable as gadgets, or file paths and URLs"
    kinds = ("gadget", "path")


@register
class CustomObject(_SightingRule):
    code = "MA407"
    name = "custom-object"
    severity = Severity.INFO
    summary = "A custom class or function: loading needs user code"
    kinds = ("custom",)

    def check(self, model) -> Iterator:
        # One finding per custom class, however many layers and slots name it: a QKeras model names
        # its quantizer and constraint classes in every layer, and one line says what there is to know.
        groups: dict[str, list[Sighting]] = {}
        for s in scan(model).sightings:
            if s.kind in self.kinds:
                groups.setdefault(s.subject, []).append(s)
        for subject, seen in groups.items():
            first = seen[0]
            if len(seen) == 1:
                yield self.finding(first.layer, first.message, first.severity)
            else:
                yield self.finding(first.layer, _grouped(subject, seen), first.severity)


def _grouped(subject: str, seen: list) -> str:
    """`subject`, N times in M layers: a, b, c and K more (first at `location`): why."""
    layers = list(dict.fromkeys(s.layer for s in seen if s.layer))
    where = f"{len(seen)} times"
    if layers:
        shown = ", ".join(layers[:GROUP_SHOWN]) + (f" and {len(layers) - GROUP_SHOWN} more" if len(layers) > GROUP_SHOWN else "")
        where += f" in {len(layers)} layer{'s' if len(layers) != 1 else ''} ({shown})"
    return f"{subject}, {where}, first at `{seen[0].location or '(root)'}`: {seen[0].detail}"


GROUP_SHOWN = 3  # layers named in a grouped MA407 line


# -- the container --

KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"})
EXECUTABLE_SUFFIXES = (
    ".py", ".pyc", ".pyo", ".pyw", ".pth", ".so", ".dll", ".dylib", ".pyd", ".exe", ".sh", ".bash", ".bat",
    ".cmd", ".ps1", ".vbs", ".js", ".jar", ".whl", ".egg", ".pkl", ".pickle", ".joblib", ".dill",
)


def member_problems(name: str) -> list[str]:
    """What is wrong with one zip member name against the `.keras` layout (empty if nothing)."""
    problems = []
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        problems.append("an absolute path")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        problems.append("a `..` path that climbs out of the extraction folder")
    if "\\" in name:
        problems.append("a backslash, a path separator on Windows")
    if any(ord(ch) < 32 for ch in name):
        problems.append("control characters in its name")
    if name.lower().endswith(EXECUTABLE_SUFFIXES) or posixpath.basename(name) == "__main__.py":
        problems.append("an executable, source or pickle file")
    if not problems and name not in KERAS_MEMBERS and not name.startswith("assets/"):
        problems.append("outside the `.keras` layout (config.json, metadata.json, model.weights.h5|npz, assets/)")
    return problems


@register
class ArchiveAnomaly(Rule):
    code = "MA405"
    name = "archive-anomaly"
    severity = Severity.ERROR
    summary = "The .keras zip holds unexpected, absolute, `..` or duplicate members, or a zip-bomb ratio"
    options = {"max_compression_ratio": 100.0, "min_inflated_bytes": 1 << 20}

    def check(self, model):
        members = model.graph.source.members
        spellings: dict[str, list] = {}  # casefolded name -> every spelling, in order (one pass: linear)
        for name, *_ in members:
            spellings.setdefault(name.casefold(), []).append(name)
        seen: dict[str, int] = {}
        for name, compressed, size, _method in members:
            key = name.casefold()
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 2:
                same = spellings[key]
                how = "twice" if len(set(same)) == 1 else f"as {', '.join(repr(n) for n in dict.fromkeys(same))}"
                yield self.finding(
                    None,
                    f"zip member {name!r} appears {how}: Python's zipfile (and so Keras) reads the last entry, "
                    "while other tools show the first",
                )
            if seen[key] > 1:
                continue
            problems = member_problems(name)
            if problems:
                yield self.finding(None, f"zip member {name!r}: {'; '.join(problems)}")
            ratio_bound = float(self.opts["max_compression_ratio"])
            if size >= int(self.opts["min_inflated_bytes"]) and size > ratio_bound * max(compressed, 0):
                ratio = size / compressed if compressed else float("inf")
                yield self.finding(
                    None,
                    f"zip member {name!r} inflates {compressed:,} bytes to {size:,} (ratio {ratio:,.0f}, bound "
                    f"{ratio_bound:g}): a decompression bomb; Keras stores members uncompressed",
                )


def _weight_layer(model, path: str) -> Optional[str]:
    owner = scan(model).weight_owner
    if path in owner:
        return owner[path]
    # a link is not followed, so no layer owns it: the layer whose weights sit next to it
    best, best_len = None, 0
    for wpath, layer in owner.items():
        common = posixpath.commonpath([wpath, path]) if wpath and path else ""
        if common and len(common) > best_len and path.startswith(common + "/"):
            best, best_len = layer, len(common)
    return best


@register
class Hdf5ExternalReference(Rule):
    code = "MA406"
    name = "hdf5-external-reference"
    severity = Severity.ERROR
    summary = "An HDF5 external link, external storage or virtual dataset in a weights file"

    def check(self, model):
        for path, kind in model.graph.source.hdf5_links:
            layer = _weight_layer(model, path)
            if kind.startswith("soft link") or kind == "virtual dataset mapping .":
                # inside the file: nothing is read from elsewhere, but Keras never writes either
                yield self.finding(layer, f"HDF5 `{path}`: {kind}; Keras never writes one: a weight read "
                                   "through it is another object's data", Severity.WARNING)
            else:
                yield self.finding(layer, f"HDF5 `{path}`: {kind}; loading reads data from outside the model "
                                   "file, such as the loading machine's secrets (CVE-2026-1669)")


@register
class OversizedDeclaredShape(Rule):
    code = "MA408"
    name = "oversized-declared-shape"
    severity = Severity.ERROR
    summary = "A dataset declares far more bytes than the file can hold"

    def check(self, model):
        source = model.graph.source
        for path, declared in source.oversized:
            yield self.finding(
                _weight_layer(model, path),
                f"HDF5 dataset `{path}` declares {declared:,} bytes in a {source.file_size:,}-byte file: loading "
                "allocates the declared size (memory exhaustion, CVE-2026-0897)",
            )
