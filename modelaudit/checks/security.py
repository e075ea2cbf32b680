"""MA4xx: security and auditability — the known attacks on Keras model loading, seen from structure.

Nothing here runs, imports, unmarshals or unpickles anything a file holds. One walk over the whole raw
config (every object at any depth, not only `layers`; the compile/training config too) records what it
sees as `Sighting`s; each rule turns its kind of sighting into findings. The container facts (zip
members, HDF5 links, oversized datasets) come from the readers as `SourceFacts`.

Severity never depends on the `keras_version` a file declares: the attacker writes that too.
"""

from __future__ import annotations

import binascii
import functools
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from modelaudit.engine import Rule, Severity, register
from modelaudit.options import Option, positive, whole

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
# The gadgets: functions and classes that are not modeling operations and that, called while a model
# loads, download, read or write files, load other models, flip safe mode off (CVE-2025-8747,
# CVE-2025-9906) or load code from elsewhere (TFSMLayer: a SavedModel at a path; TorchModuleWrapper: a
# pickle). One list of dotted names; "a.b.*" is everything under a.b. A Keras entry matches every
# spelling Keras resolves to it: `keras.src.*` and `tf_keras.src.*` internal paths (matched by the last
# name, or by the namespace anywhere in the path), the module and name split at any dot, and the names
# Keras 3's legacy .h5 loader takes from `keras.src.layers.__dict__` (`deserialize`, `serialize` ...).
# An entry outside Keras is a MA403 error (an import the file chooses), whatever its registered name.
GADGETS = frozenset({
    # Keras's own non-modeling APIs (NON_MODELING_APIS in keras/src/saving/serialization_lib.py, and more)
    "keras.utils.get_file", "keras.utils.plot_model", "keras.utils.model_to_dot", "keras.utils.load_img",
    "keras.utils.save_img", "keras.utils.image_dataset_from_directory", "keras.utils.text_dataset_from_directory",
    "keras.utils.audio_dataset_from_directory", "keras.utils.timeseries_dataset_from_array",
    "keras.utils.clear_session", "keras.utils.extract_archive", "keras.utils.func_load",
    "keras.utils.deserialize_keras_object", "keras.utils.serialize_keras_object",
    "keras.utils.register_keras_serializable", "keras.utils.get_registered_object",
    "keras.models.load_model", "keras.models.save_model", "keras.models.model_from_json",
    "keras.models.model_from_yaml", "keras.models.model_from_config", "keras.models.clone_model",
    "keras.layers.deserialize", "keras.layers.serialize", "keras.layers.serialization_lib",
    "keras.layers.keras_export", "keras.layers.TFSMLayer", "keras.layers.TorchModuleWrapper",
    "keras.export.TFSMLayer", "keras.export.ExportArchive", "keras.utils.TorchModuleWrapper",
    "keras.config.enable_unsafe_deserialization", "keras.config.set_backend", "keras.config.set_floatx",
    "keras.config.set_dtype_policy", "keras.config.set_image_data_format", "keras.config.set_epsilon",
    "keras.backend.clear_session", "keras.backend.set_global_attribute",
    "keras.preprocessing.image.load_img", "keras.preprocessing.image.save_img",
    "keras.preprocessing.image_dataset_from_directory", "keras.preprocessing.text_dataset_from_directory",
    "keras.datasets.*", "keras.saving.*", "keras.global_state.*", "keras.file_utils.*",
    "keras.python_utils.*", "keras.io_utils.*", "keras.saved_model.*", "keras.legacy.saving.*",
    "keras.callbacks.*", "keras.distribution.*",
    # TensorFlow's file, process and library ops, reachable as tf.* functions
    "tensorflow.io.gfile.*", "tensorflow.io.read_file", "tensorflow.io.write_file", "tensorflow.io.matching_files", "tensorflow.file_io.*", "tensorflow.io_ops.*",
    "tensorflow.gen_io_ops.*", "tensorflow.script_ops.*", "tensorflow.gen_script_ops.*",
    "tensorflow.load_library.*", "tensorflow.saved_model.*", "tensorflow.py_function", "tensorflow.numpy_function",
    "tensorflow.py_func", "tensorflow.eager_py_func", "tensorflow.load_op_library", "tensorflow.write_file",
    "tensorflow.read_file", "tensorflow.WriteFile", "tensorflow.ReadFile", "tensorflow.PyFunc",
    "tensorflow.EagerPyFunc", "tensorflow.PyFuncStateless", "tensorflow.GFile",
    # outside Keras: loaders of pickles and code, documentation servers, the process and the network
    "torch.load", "torch.hub.*", "torch.jit.load", "torch.serialization.*", "numpy.load", "numpy.lib.npyio.*",
    "numpy.lib._npyio_impl.*", "numpy.fromfile", "numpy.memmap", "pandas.read_pickle", "pydoc.*", "importlib.*", "runpy.*", "builtins.eval", "builtins.exec",
    "builtins.open", "builtins.__import__", "posix.*", "nt.*", "os.*", "subprocess.*", "shutil.*", "socket.*",
    "webbrowser.*", "pickle.*", "marshal.*", "ctypes.*", "code.*", "pty.*", "urllib.*", "requests.*",
})
_KERAS_ROOTS = ("keras", "tensorflow")  # the roots GADGETS spells Keras's and TensorFlow's entries under
# Keras's and TensorFlow's internal path components, dropped before matching: keras.src.utils.file_utils
# -> keras.utils.file_utils; tensorflow.python.ops.script_ops -> tensorflow.ops.script_ops
_INTERNAL_PARTS = frozenset({"src", "python", "api", "_api", "v1", "v2", "compat", "_tf_keras", "internal",
                             "__internal__", "ops", "platform", "lib"})
_GADGET_NAMES = {}  # root -> last names the root's entries end with
_GADGET_SPACES = {}  # root -> namespaces ("a.b.*": "b") anywhere under the root
for _entry in GADGETS:
    _root, *_rest = _entry.split(".")
    if _rest[-1] == "*":
        _GADGET_SPACES.setdefault(_root, set()).add(_rest[-2] if len(_rest) > 1 else "*")
    else:
        _GADGET_NAMES.setdefault(_root, set()).add(_rest[-1])
# Class names Keras writes itself with two leading underscores; any other (`__builtins__`, `__loader__`)
# is a name Keras 3's legacy loader looks up in a module's __dict__, not a modeling object.
KERAS_SPECIAL = frozenset({"__lambda__", "__typespec__", "__keras_tensor__", "__tensor__", "__numpy__",
                           "__bytes__", "__ellipsis__", "__slice__", "__passive_serialization__"})
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
_TYPE_KEYS = frozenset(t for _, t, _ in FUNCTION_SLOTS)
# The keys that make `_Walk.object` look at a dict that has no class name.
_OBJECT_KEYS = frozenset({"safe_mode", "value"} | _TYPE_KEYS)
_BENIGN_MAX = 65_536  # (key, string) pairs remembered per walk: a bound on memory, not on what is checked

# A string in a callable slot, a dotted name: `keras.utils.get_file`, `os.system`.
DOTTED = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+$")
CALLABLE_KEYS = frozenset({"activation", "recurrent_activation", "loss", "losses", "metrics", "weighted_metrics",
                           "optimizer", "inner_activation"})
CALLABLE_SUFFIXES = ("_initializer", "_regularizer", "_constraint", "_activation", "_fn", "_function")
# The readers bound JSON depth (formats/json_config.MAX_DOCUMENT_DEPTH, 3,272: models nested 1,024 deep);
# a live model's config is bounded here. The walk is iterative: the bound is on work, not on the stack.
MAX_WALK_DEPTH = 3400
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,15}://\S")
PATH = re.compile(r"^(?:/[^/\s]+(?:/[^/\s]*)+|[A-Za-z]:[\\/]\S*|\\\\[^\\\s]+\\\S*|~[\\/]\S*|file:\S+)$|(?:^|[\\/])\.\.(?:[\\/]|$)")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _canonical(path: str) -> list:
    """A dotted path as GADGETS spells it: tf_keras, keras_hub ... and tensorflow.keras read as keras,
    tf as tensorflow, and Keras's and TensorFlow's internal components (`src`, `python` ...) dropped."""
    parts = [p for p in path.split(".") if p]
    if not parts:
        return parts
    root = parts[0]
    if root in ("tensorflow", "tf") and "keras" in parts[1:4]:
        parts = parts[parts.index("keras", 1):]
    elif root == "tf":
        parts = ["tensorflow"] + parts[1:]
    elif root in KERAS_FAMILY and root != "tensorflow":
        parts = ["keras"] + parts[1:]
    if parts[0] in _KERAS_ROOTS:
        parts = parts[:1] + [p for p in parts[1:] if p not in _INTERNAL_PARTS]
    return parts


def gadget(path: str) -> Optional[str]:
    """The root of the GADGETS entry a dotted path resolves to ("keras", "torch" ...), or None."""
    parts = _canonical(path)
    if not parts:
        return None
    root, rest = parts[0], parts[1:]
    spaces, names = _GADGET_SPACES.get(root, ()), _GADGET_NAMES.get(root, ())
    if "*" in spaces or (rest and rest[-1] in names) or any(p in spaces for p in rest):
        return root
    return None


@functools.lru_cache(maxsize=4096)  # a config names the same few dozen paths thousands of times
def threat(path: str) -> Optional[str]:
    """What a dotted path (a module and the name looked up in it) reaches: "gadget" (Keras's or
    TensorFlow's own non-modeling functions, MA404), "dangerous" (a module or callable that runs
    commands, imports, or touches files and the network, MA403), or None."""
    parts = [p for p in path.split(".") if p]
    if not parts:
        return None
    root = parts[0]
    if root in ("builtins", "__builtin__"):
        return "dangerous" if any(p in DANGEROUS_BUILTINS for p in parts[1:]) else None
    hit = gadget(path)
    if hit in _KERAS_ROOTS:
        return "gadget"
    if hit is not None or root in DANGEROUS_MODULES:
        return "dangerous"
    if root not in KERAS_FAMILY and any(p in DANGEROUS_CALLABLES for p in parts[1:]):
        return "dangerous"
    return None


def _unsafe_flag(value: Any) -> bool:
    """A safe_mode value that turns safe mode off somewhere: Keras tests it as `if safe_mode:` (so 0,
    null, "" and [] do) or `is not False`; a string spelling false is an unmistakable request."""
    if value is True:
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("", "false", "0", "no", "off", "none", "null", "n", "f")
    if isinstance(value, (int, float)) and value == 0:
        return True
    return value is None or value is False or (isinstance(value, (list, dict)) and not value)


# A registration as Keras writes it: "Package>Name" (register_keras_serializable), or the name itself
# (a library that fills get_custom_objects(), as QKeras and Larq do: registered_name "QDense").
REGISTERED = re.compile(r"^[^>\s]+>[^>\s]+$")


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
    try:
        text = value if isinstance(value, str) else json.dumps(value)
    except (RecursionError, ValueError):  # a value nested deeper than the encoder goes (a hostile config)
        text = f"a {type(value).__name__} nested too deep to show"
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Walk:
    def __init__(self):
        self.out: list[Sighting] = []
        self.benign: set = set()  # (key, string) pairs that `value` found nothing in

    def see(self, kind, location, layer, subject, detail, severity=None):
        self.out.append(Sighting(kind, _render(location), layer, subject, detail, severity))

    def run(self, root: Any, label: str) -> None:
        # Iterative and depth-bounded: a hostile nesting cannot exhaust the stack.
        # (node, location, depth, enclosing layer path, inside serialized bytecode, key holding it, owner class)
        stack = [(root, label, 0, None, False, None, None)]
        benign = self.benign
        while stack:
            node, loc, depth, layer, quiet, held_by, owner = stack.pop()
            if depth > MAX_WALK_DEPTH:
                self.see("too-deep", loc, layer, "the config",
                         f"nested deeper than {MAX_WALK_DEPTH} levels: not audited below", Severity.WARNING)
                continue
            children = []
            if isinstance(node, dict):
                cn = node.get("class_name")
                if isinstance(cn, str):
                    owner = cn
                    self.object(node, loc, layer, quiet)
                elif not _OBJECT_KEYS.isdisjoint(node):  # flags and Keras 2 function slots need no class
                    self.object(node, loc, layer, quiet)
                hushed = quiet or cn == "__lambda__"
                code_slots = () if _TYPE_KEYS.isdisjoint(node) else {
                    f for f, t, _ in FUNCTION_SLOTS if node.get(t) == "lambda"}
                # Hot loop (every value of the config): locations stay (parent, key) links, and a
                # string already seen under the same key with nothing to report is not looked at again.
                for key, value in node.items():
                    if isinstance(value, (dict, list)):
                        children.append((value, (loc, key), depth + 1, layer, hushed or key in code_slots, key, owner))
                    elif isinstance(value, str) and value and (key, value) not in benign:
                        hush = hushed or key in code_slots
                        # only what was looked at in full (not hushed) is known to hold nothing
                        if not self.value(value, key, (loc, key), layer, hush, owner) and not hush \
                                and len(benign) < _BENIGN_MAX and len(value) <= 256:
                            benign.add((key, value))
            elif isinstance(node, list) and held_by in DATA_KEYS:  # tokens: only bytecode matters here
                for i, item in enumerate(node):
                    if isinstance(item, (dict, list)):
                        keep = held_by if isinstance(item, list) else None
                        children.append((item, (loc, i), depth + 1, layer, quiet, keep, owner))
                    elif not quiet and isinstance(item, str) and item[:1] in _CODE_FIRST and carries_code(item):
                        self.bytecode_string((loc, i), layer)
            elif isinstance(node, list):
                slot = held_by if _callable_slot(held_by) else None  # a list of callables (`metrics`) keeps its key
                layers = held_by == "layers"
                for i, item in enumerate(node):
                    if isinstance(item, (dict, list)):
                        item_layer = layer
                        if layers and isinstance(item, dict) and _layer_name(item):
                            item_layer = f"{layer}/{_layer_name(item)}" if layer else _layer_name(item)
                        keep = held_by if isinstance(item, list) else None
                        children.append((item, (loc, i), depth + 1, item_layer, quiet, keep, owner))
                    elif isinstance(item, str) and item and (slot, item) not in benign:
                        if not self.value(item, slot, (loc, i), layer, quiet, owner) and not quiet \
                                and len(benign) < _BENIGN_MAX and len(item) <= 256:
                            benign.add((slot, item))
            stack.extend(reversed(children))

    # -- leaves --

    def bytecode_string(self, loc, layer) -> None:
        self.see("bytecode", loc, layer, "a string that decodes to a marshalled Python code object", BYTECODE)

    def value(self, value: Any, key: Any, loc: str, layer, quiet: bool, owner: Optional[str]) -> bool:
        """Report what a leaf string is; True when it was anything."""
        if not isinstance(value, str) or not value:
            return False
        if not quiet and carries_code(value):
            self.bytecode_string(loc, layer)
            return True
        if key in LOADER_KEYS:
            why = ("Keras reads this vocabulary through tf.io.gfile while loading, from the loading machine's "
                   "files or the network (CVE-2025-12058)") if key == "vocabulary" else (
                   "a file path or URL handed to code that opens or fetches it while loading")
            self.see("path", loc, layer, f"{owner or 'an object'} `{key}` {_short(value)!r}", why)
        elif len(value) <= 4096 and (URL.match(value) or PATH.search(value)):
            self.see("path", loc, layer, f"the string {_short(value)!r}",
                     "a file path or URL; a model config has no business pointing outside the file", Severity.WARNING)
        elif "." in value and _callable_slot(key) and DOTTED.match(value):
            # a shorthand string where Keras looks a callable up by name: `"activation": "os.system"`
            return self.threat(threat(value), loc, layer, f"`{value}`")
        else:
            return False
        return True

    def threat(self, kind: Optional[str], loc, layer, subject: str) -> bool:
        if kind == "gadget":
            self.see("gadget", loc, layer, subject, GADGET)
        elif kind == "dangerous":
            self.see("dangerous", loc, layer, subject, "a known-dangerous module or callable; " + IMPORTED)
        return kind is not None

    # -- objects --

    def flags(self, d: dict, loc, layer) -> None:
        """safe_mode in any falsy spelling (a Lambda's `arguments` for load_model, a from_config call), and
        set_global_attribute's ("safe_mode_saving", falsy) pair."""
        if "safe_mode" in d and _unsafe_flag(d["safe_mode"]):
            self.see("gadget", _join(loc, "safe_mode"), layer, f"`safe_mode: {_short(d['safe_mode'])}`",
                     "asks the function that receives it to turn Keras's safe mode off (CVE-2025-9906)")
        if d.get("name") in ("safe_mode_saving", "safe_mode") and "value" in d and _unsafe_flag(d["value"]):
            self.see("gadget", _join(loc, "value"), layer, f"`{d['name']}` set to `{_short(d['value'])}`",
                     "Keras's global safe-mode switch, turned off (CVE-2025-9906)")

    def object(self, d: dict, loc: str, layer, quiet: bool) -> None:
        cn = d.get("class_name") if isinstance(d.get("class_name"), str) else None
        if "safe_mode" in d or "value" in d:
            self.flags(d, loc, layer)
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
        last = cn.rsplit(".", 1)[-1] if cn else None
        if last == "TFSMLayer":
            self.see("gadget", loc, layer, f"`{cn}`",
                     "loads a TensorFlow SavedModel from the path in its config, whatever safe_mode says (CVE-2026-1462)")
            return
        if last == "TorchModuleWrapper":
            self.see("gadget", loc, layer, f"`{cn}`", "unpickles the torch module its config carries")
            return
        if cn in ("TFOpLambda", "SlicingOpLambda") and isinstance(d.get("config"), dict):
            fn = d["config"].get("function")
            touches = tf_file_function(fn, d) if isinstance(fn, str) else None
            if touches is not None:  # MA409's: a TensorFlow op on files or processes
                self.see("tf-file-op", _join(_join(loc, "config"), "function"), layer, f"{cn} calling `tf.{fn}`",
                         touches)
            elif isinstance(fn, str) and threat("tensorflow." + fn) == "gadget":
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
                if not self.names(name, d.get("registered_name"), loc, layer):
                    self.custom(loc, layer, name, f"module null, registered as {d.get('registered_name')!r}")
            elif isinstance(module, str):
                self.reference(module, name, d.get("registered_name"), loc, layer, function=cn == "function")
            else:
                self.see("foreign", loc, layer, f"module {_short(module)}", "not a module name; " + IMPORTED)
            return
        registered = d.get("registered_name")
        if cn.startswith("__") and cn not in KERAS_SPECIAL:
            # no module: Keras 3's legacy loader looks the name up in keras.src.layers.__dict__
            self.see("dangerous", loc, layer, f"`{cn}`", "a module attribute, not a modeling object; " + IMPORTED)
        elif self.threat(threat(cn if "." in cn else "keras.layers." + cn), loc, layer, f"`{cn}`"):
            return  # `deserialize`, `serialize` ... as a layer class; a dotted path as a class name
        elif ">" in cn and cn not in TF_KERAS_REGISTERED:  # tf_keras names registered classes "Package>Name"
            if not self.names(cn, registered, loc, layer):
                self.custom(loc, layer, cn, "a registered class")

    def names(self, name: Optional[str], registered: Any, loc, layer) -> bool:
        """A registered name, or a name with no module, that spells a dangerous or gadget path
        ("os>system", "subprocess.Popen"): reported, and True."""
        for text in (name, registered):
            if isinstance(text, str) and (">" in text or "." in text):
                if self.threat(threat(text.replace(">", ".")), loc, layer, f"`{text}`"):
                    return True
        return False

    def custom(self, loc, layer, name, how) -> None:
        self.see("custom", loc, layer, f"custom object `{name}` ({how})",
                 "loading it needs user code; where modelaudit has no spec for it, its shapes come from the "
                 "file's records")

    def reference(self, module: str, name: Optional[str], registered: Any, loc: str, layer, slot=None,
                  function: bool = False) -> None:
        """A module, and the name looked up in it, that a loader may import. `slot`: set for a Keras 2
        Lambda's function ("function" or "lambda"), whose module only lends the function its globals.

        Every name a loader looks up counts: the name (split at any dot: Keras 3 resolves `module` +
        "." + name, tf_keras follows one `Outer.inner` attribute), and a registered name that is not
        "Package>Name" (tf_keras looks it up in the module when the name is not there)."""
        root = module.split(".")[0]
        reg = registered if isinstance(registered, str) and registered else None
        lookups = [name] + ([reg] if reg is not None and reg != name and ">" not in reg else [])
        for looked in lookups:
            path = f"{module}.{looked}" if looked else module
            if root == "__main__" and looked:  # the loading script's globals: `os.system` is its `os` module's
                path = looked
            if self.threat(threat(path), loc, layer, f"`{module}.{looked}`" if looked else f"module `{module}`"):
                return
        if self.names(None, reg, loc, layer):
            return
        if not module or root == "__main__":
            if not slot and name:
                self.custom(loc, layer, name, "defined in the saving script")
            return
        if root in KERAS_FAMILY:
            return
        qual = f"`{module}.{name}`" if name else f"module `{module}`"
        if root == "builtins":
            if not slot and not function:  # a class Keras wrote from code run without a module (exec)
                self.custom(loc, layer, name, f"registered as {registered!r}")
            return
        if slot == "function":
            self.custom(loc, layer, f"{module}.{name}" if name else module, "a Keras 2 Lambda's function")
        elif slot == "lambda":
            return  # the bytecode's own globals: MA401 already reports the bytecode
        elif reg is not None and (REGISTERED.match(reg) or reg == name):
            self.custom(loc, layer, f"{module}.{name}", f"registered as {registered!r}")
        elif reg is not None:
            self.see("foreign", loc, layer, qual, f"registered_name {_short(reg)!r} is not a registration "
                     "(`Package>Name`, or the name itself): tf_keras looks it up as a name in that module; " + IMPORTED)
        else:
            self.see("foreign", loc, layer, qual, "a module outside the Keras family, with no registered name; "
                     + IMPORTED)


def _callable_slot(key: Any) -> bool:
    """Config keys whose string value Keras resolves to a callable by name."""
    return isinstance(key, str) and (key in CALLABLE_KEYS or key.endswith(CALLABLE_SUFFIXES))


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


def scan(model) -> Scan:
    """Every sighting in the model's configs, computed once per model however many rules ask."""
    return model.derived(_scan)


def _scan(model) -> Scan:
    graph = model.graph
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
    return Scan(walk.out, owner)


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
        # A loss or metric function of the user's is saved by its bare name (a legacy .h5 writes
        # loss="dice_coef_loss"): no module names it, so the walk above sees nothing to report.
        from modelaudit.losses import custom_by_name

        for kind, name in custom_by_name(model.graph.objective):
            yield self.finding(
                None,
                f"the compile config names the {kind} {_short(name)!r}, which is not a Keras {kind}: a custom "
                f"function saved by its name only, so loading needs it (custom_objects) and the objective rules "
                f"cannot check it",
                fix=f"pass it to load_model in custom_objects, or register it with "
                "keras.saving.register_keras_serializable",
            )


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
    summary = ("The .keras zip holds unexpected, absolute, `..`, duplicate or linked members, a zip-bomb ratio, "
               "lying local headers, a comment, or a metadata.json Keras would not write")
    options = {"max_compression_ratio": Option(100.0, positive), "min_inflated_bytes": Option(1 << 20, whole)}

    def check(self, model):
        yield from self._members(model)
        yield from self._container(model.graph.source)
        yield from self._metadata(model.graph.source)

    def _container(self, source):
        for name, mode in source.member_modes:
            yield self.finding(None, f"zip member {name!r} is {_file_type(mode)} (Unix mode {mode:o} in its external "
                               "attributes): an extractor that honours it (unzip, bsdtar) writes through it outside "
                               "the extraction folder; Keras writes plain files")
        for name, how in source.header_mismatches:
            yield self.finding(None, f"zip member {name!r}: {how}: a tool that reads local headers (a streaming "
                               "unzip, some scanners) sees another archive than Python's zipfile and Keras")
        if source.archive_comment:
            pickled = dict(source.hidden_pickles).get("comment")
            # Keras never writes a comment: any is reported, as a warning unless it holds code
            severity, what = hidden_content(source.archive_comment, pickled) or (Severity.WARNING, "text")
            yield self.finding(None, f"the archive comment ({len(source.archive_comment):,} bytes) is {what}; "
                               "Keras never writes a comment, so it was added after saving", severity)

    def _metadata(self, source):
        if source.metadata_problem is not None:
            yield self.finding(None, f"metadata.json is not what Keras writes ({source.metadata_problem}); Keras "
                               "never reads it, so the model loads and is audited without it, but a tool that "
                               "shows it is misled", Severity.WARNING)
            return
        if source.metadata is None:
            return
        if not isinstance(source.metadata, dict):
            yield self.finding(None, "metadata.json is not a JSON object (Keras writes keras_version and "
                               "date_saved); Keras never reads it, but a tool that shows it is misled", Severity.WARNING)
        walk = _Walk()
        walk.run(source.metadata, "metadata.json")
        for s in walk.out:
            if s.kind in ("bytecode", "dangerous", "foreign", "gadget"):
                yield self.finding(None, f"{s.message}; metadata.json is a member Keras writes but never reads, "
                                   "so this is there for another tool to load")

    def _members(self, model):
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


def _file_type(mode: int) -> str:
    kind = mode & 0o170000
    return {0o120000: "a symbolic link", 0o020000: "a character device", 0o060000: "a block device",
            0o010000: "a named pipe", 0o140000: "a socket"}.get(kind, f"of file type {kind:o}")


# -- bytes a loader skips: a prefix before the container, an archive comment --

EXECUTABLES = ((b"MZ", "a Windows executable"), (b"\x7fELF", "an ELF executable"),
               (b"\xcf\xfa\xed\xfe", "a Mach-O executable"), (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
               (b"\xca\xfe\xba\xbe", "a Mach-O or Java executable"),
               (b"\x89HDF\r\n\x1a\n", "an HDF5 file, which loaders that open the file as HDF5 (h5py; Keras given a "
                "`.h5` name) read instead, unaudited"))
SCRIPT = re.compile(
    r"^#!|^\s*(?:import\s+\w|from\s+[\w.]+\s+import\s)|\b(?:exec|eval|__import__|compile|system|popen|spawn\w*|"
    r"check_output|run_path|getattr)\s*\(|\b(?:subprocess|os|posix|nt|builtins|importlib)\.\w+|<script\b|<\?php|"
    r"\b(?:powershell|cmd\.exe|/bin/(?:ba)?sh|curl\s+\S|wget\s+\S|rm\s+-rf|chmod\s+\+x|base64\s+-d)", re.M)
TEXT_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13}


def hidden_content(data: bytes, pickled: Optional[tuple] = None) -> Optional[tuple]:
    """(severity, what `data` is) for bytes a loader skips, or None for nothing to report: zeros, or
    plain text that is not code. `pickled`: the globals it names when the reader parsed it as a pickle."""
    if pickled is not None:
        named = f" naming {', '.join(f'`{g}`' for g in pickled[:4])}" if pickled else ""
        return Severity.ERROR, (f"a pickle{named}: `pickle.load`, `torch.load` or `joblib.load` handed this file "
                                "runs it")
    if looks_like_code_object(data[:64]):
        return Severity.ERROR, "marshalled Python bytecode: `marshal.load` handed this file builds code to run"
    for magic, what in EXECUTABLES:
        if data.startswith(magic):
            return Severity.ERROR, what if magic.startswith(b"\x89HDF") else f"{what}: the file runs as a program"
    if data.startswith(b"PK\x03\x04") and b"__main__.py" in data:
        return Severity.ERROR, "a zip archive holding `__main__.py`: `python` handed this file runs it"
    if data.startswith(b"PK\x03\x04"):
        return Severity.WARNING, ("zip members, which a reader that walks local headers (a streaming unzip) takes "
                                  "for the archive's")
    body = data.rstrip(b"\0")
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or any(ord(ch) in TEXT_CONTROLS for ch in text):
        return Severity.WARNING, ("binary data of unknown purpose: Keras writes nothing there, and what reads it "
                                  "cannot be told from the model")
    if carries_code(text.strip()):
        return Severity.ERROR, "base64 of marshalled Python bytecode"
    script = SCRIPT.search(text)
    if script is not None:
        return Severity.ERROR, (f"a script (`{_short(script.group(0).strip(), 40)}`): a shell or interpreter handed "
                                "this file runs it")
    return None


@register
class PolyglotPrefix(Rule):
    code = "MA411"
    name = "polyglot-prefix"
    severity = Severity.ERROR
    summary = ("Bytes before (or after) the zip archive or the HDF5 file (a user block): a pickle, a script, "
               "or binary data")

    def check(self, model):
        source = model.graph.source
        h5 = model.graph.format == "keras-h5"
        pickles = dict(source.hidden_pickles)
        for size, head, where, key in (
            (source.prefix_size, source.prefix_head,
             "before the HDF5 superblock (its user block)" if h5 else "before the zip archive", "prefix"),
            (source.suffix_size, source.suffix_head,
             "after the end of file the HDF5 superblock records" if h5 else "after the zip archive's end", "suffix"),
        ):
            seen = hidden_content(head, pickles.get(key)) if size > 0 else None
            if seen is None:
                continue
            severity, what = seen
            shown = "" if len(head) >= size else f" (the first {len(head):,} read)"
            yield self.finding(None, f"{size:,} bytes {where}{shown} are {what}; Keras's loader skips them and "
                               "loads the model, so the one file is two", severity)
        for member, size, head in source.member_prefixes:
            seen = hidden_content(head, pickles.get(member))
            if seen is not None:
                severity, what = seen
                yield self.finding(None, f"{size:,} bytes before the HDF5 superblock of zip member {member!r} (its "
                                   f"user block) are {what}; h5py skips them and Keras loads the weights", severity)


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
    summary = "Declared shapes far beyond what the file holds, or a config whose weights pass a memory bound"
    # what Keras may allocate building the model from its config, before any weight is read
    options = {"max_weight_bytes": Option(64 << 30, whole)}

    def check(self, model):
        source = model.graph.source
        size = source.file_size
        flagged = set()
        for path, declared in source.oversized:
            flagged.add(path)
            yield self.finding(
                _weight_layer(model, path),
                f"HDF5 dataset `{path}` declares {declared:,} bytes in a {size:,}-byte file: loading "
                "allocates the declared size (memory exhaustion, CVE-2026-0897)",
            )
        yield from self._stored(model, flagged)
        yield from self._recomputed(model)

    def _stored(self, model, flagged: set):
        """Every stored variable the model reads (an npz header's shape, a checkpoint entry's, an HDF5
        dataset's), alone and together, against the bytes the file holds."""
        if model.graph.format == "live":  # a model in memory: its variables exist already, no file declares them
            return
        size = model.graph.source.file_size
        bound = max(size, 1) * OVERSIZE_FACTOR
        total, count = 0, 0
        for layer, weight in _stored_weights(model.graph):
            declared = weight.size * dtype_bytes(weight.dtype)
            total, count = total + declared, count + 1
            if weight.path not in flagged and declared > bound and declared > OVERSIZE_FLOOR:
                flagged.add(weight.path)
                yield self.finding(layer, f"stored variable `{weight.path}` declares {declared:,} bytes (shape "
                                   f"{weight.shape}, {weight.dtype}) in a {size:,}-byte file: loading allocates the "
                                   "declared size (memory exhaustion, CVE-2026-0897)")
        if not flagged and total > bound and total > OVERSIZE_FLOOR:
            yield self.finding(None, f"the {count:,} stored variables declare {total:,} bytes together in a {size:,}-byte "
                               f"file (more than {OVERSIZE_FACTOR} times what it holds), each under the bound alone: "
                               "loading allocates every one (memory exhaustion)")

    def _recomputed(self, model):
        """The weights the config makes Keras create while it builds the model, whatever the file stores."""
        bound = int(self.opts["max_weight_bytes"])
        total, largest, largest_bytes = 0, None, 0
        for row in getattr(model, "rows", ()):
            if row.layer.submodel is not None or not row.expected_weights:
                continue
            itemsize = dtype_bytes(row.layer.dtypes[0] or "float32")
            n = sum(w.size for w in row.expected_weights if all(type(d) is int for d in w.shape)) * itemsize
            total += n
            if n > largest_bytes:
                largest, largest_bytes = row.path, n
        if total > bound:
            yield self.finding(largest, f"the config's layers create {total:,} bytes of weights ({largest_bytes:,} in "
                               f"`{largest}`), more than the {bound:,}-byte bound (max-weight-bytes): Keras allocates "
                               "them while it builds the model, before any weight is read (memory exhaustion)")


OVERSIZE_FACTOR = 16  # as formats/hdf5.py: more than 16 times the file's bytes cannot be real weights
OVERSIZE_FLOOR = 1 << 20  # and a megabyte or less is never worth a finding


def _stored_weights(graph):
    """(layer path or None, Weight) for every stored variable of the model, at every depth."""
    for path, layer, _ in graph.walk():
        for weight in layer.weights or ():
            yield path, weight
    for weight in graph.unassigned_weights:
        yield None, weight


_DIGITS = re.compile(r"(\d+)")


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a dtype name (float32: 4, int4: 1, bool: 1); a string, object or unknown
    dtype counts 1 (its size is its data's, which the file holds)."""
    if dtype.startswith(("float", "int", "uint", "complex", "bfloat", "qint", "quint")):
        found = _DIGITS.search(dtype)
        return max(1, int(found.group(1)) // 8) if found else 1
    return 8 if dtype in ("double",) else 1


# -- TensorFlow ops on files and processes (MA409) --

# TensorFlow's ops (tensorflow/core/ops/*.cc) that open, list, read or write files by a path the graph
# hands them, reach the network, or run Python code; what each does, in a few words.
_READS = "reads files"
_WRITES = "writes files"
TF_FILE_OPS = {
    **dict.fromkeys(("ReadFile", "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
                     "TFRecordReader", "TFRecordReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
                     "LMDBReader", "TextLineDataset", "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset",
                     "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "LMDBDataset",
                     "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset", "LoadDataset",
                     "SnapshotDatasetReader", "SnapshotNestedDatasetReader", "SnapshotChunkDataset",
                     "ListSnapshotChunksDataset", "LoadAndRemapMatrix"), _READS),
    **dict.fromkeys(("MatchingFiles", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset"),
                    "lists the files matching a pattern"),
    "ImmutableConst": "maps a file into memory",
    **dict.fromkeys(("WriteFile", "SaveDataset", "SaveDatasetV2", "DistributedSave", "DatasetToTFRecord",
                     "ExperimentalDatasetToTFRecord", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
                     "SnapshotDataset", "SnapshotDatasetV2"), _WRITES),
    "FileSystemSetConfiguration": "changes how TensorFlow reaches file systems",
    **dict.fromkeys(("DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary"),
                    "dumps tensors to files or a debug server"),
    **dict.fromkeys(("DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4",
                     "RegisterDataset", "RegisterDatasetV2"), "connects to a tf.data service over the network"),
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), "runs a Python function of the loading process"),
}
# The checkpoint's own ops: every SavedModel's saver functions write and restore its variables with
# them. Anywhere else (or reached from a signature) they write or read checkpoints at a path the graph
# chooses.
TF_SAVER_OPS = {
    **dict.fromkeys(("Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"), "writes checkpoint files"),
    **dict.fromkeys(("Restore", "RestoreV2", "RestoreSlice"), "reads checkpoint files"),
}
# Ops that read a file only when handed a literal path (a lookup table's vocabulary is otherwise the
# SavedModel's own asset file, which the loader hands it).
TF_LITERAL_FILE_OPS = {"InitializeTableFromTextFile": _READS, "InitializeTableFromTextFileV2": _READS}

# The same, as the tf.* Python functions a TFOpLambda names (its `function`, `tf.` dropped).
TF_FILE_FUNCTIONS = {
    "read_file": _READS,
    "matching_files": "lists the files matching a pattern",
    **dict.fromkeys(("load_op_library", "load_library", "load_file_system_library"), "loads a shared library's code"),
    **dict.fromkeys(("write_file", "write_graph", "create_file_writer", "create_file_writer_v2",
                     "export_meta_graph", "enable_dump_debug_info"), _WRITES),
    **dict.fromkeys(("py_function", "numpy_function", "py_func", "eager_py_func"),
                    "runs a Python function of the loading process"),
    **dict.fromkeys(("TextLineDataset", "TFRecordDataset", "FixedLengthRecordDataset", "CsvDataset", "SqlDataset",
                     "make_csv_dataset", "list_files", "Checkpoint", "CheckpointManager", "Saver", "latest_checkpoint",
                     "load_checkpoint", "load_variable", "list_variables", "init_from_checkpoint",
                     "import_meta_graph"), _READS),
}
# Namespaces whose every function touches files: tf.io.gfile (and compat.v1.gfile), tf.saved_model.
TF_FILE_NAMESPACES = {"gfile": "reads, writes, lists or deletes files", "saved_model": "loads or writes a SavedModel"}
MAX_KWARG_SEARCH = 10_000  # values looked at for a `print`'s output_stream


def tf_file_function(function: str, layer: dict) -> Optional[str]:
    """What a TFOpLambda's `function` does to files or processes, or None for a modeling op."""
    parts = function.split(".")
    for part in parts[:-1]:
        if part in TF_FILE_NAMESPACES:
            return TF_FILE_NAMESPACES[part]
    last = parts[-1]
    if last in TF_FILE_FUNCTIONS:
        return TF_FILE_FUNCTIONS[last]
    if parts[0] == "raw_ops" and last in {**TF_FILE_OPS, **TF_SAVER_OPS, **TF_LITERAL_FILE_OPS}:
        return {**TF_FILE_OPS, **TF_SAVER_OPS, **TF_LITERAL_FILE_OPS}[last]
    if last in ("print", "Print"):
        stream = _find_string(layer, "output_stream")
        if stream is not None and stream.startswith("file://"):
            return f"prints to the file {_short(stream[7:])!r}"
    return None


def _find_string(node: Any, key: str) -> Optional[str]:
    """The first string held under `key` anywhere in `node` (bounded, iterative)."""
    stack, budget = [node], MAX_KWARG_SEARCH
    while stack and budget > 0:
        item = stack.pop()
        budget -= 1
        if isinstance(item, dict):
            if isinstance(item.get(key), str):
                return item[key]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def graph_op_problem(op) -> Optional[str]:
    """What a SavedModel graph op (formats/tfgraph.GraphOp) does to files or processes, or None when it
    touches none, or is the saver's own checkpoint op where the saver runs it."""
    name = op.op
    if name in TF_FILE_OPS:
        return TF_FILE_OPS[name]
    if name in TF_SAVER_OPS:
        return TF_SAVER_OPS[name] if op.runs or not op.saver else None
    if name in TF_LITERAL_FILE_OPS:
        return f"{TF_LITERAL_FILE_OPS[name]} at a path the graph writes in" if op.detail else None
    if name == "PrintV2" and op.detail and op.detail.startswith("file://"):
        return "prints to a file"
    return None


@register
class TfGraphFileOp(Rule):
    code = "MA409"
    name = "tf-graph-file-op"
    severity = Severity.ERROR
    summary = "A TensorFlow op that reads or writes files, reaches the network or runs Python, in a graph or TFOpLambda"

    def check(self, model):
        for s in scan(model).sightings:
            if s.kind == "tf-file-op":
                yield self.finding(s.layer, f"{s.message}: the model does it whenever it is called; no model needs it")
        groups: dict[str, list] = {}
        for op in model.graph.source.graph_ops:
            what = graph_op_problem(op)
            if what is not None:
                groups.setdefault(op.op, []).append((op, what))
        for name, seen in groups.items():
            yield self.finding(None, _graph_op_message(name, seen))


def _graph_op_message(name: str, seen: list) -> str:
    first, what = seen[0]
    where = f"function `{first.function}`" if first.function else "the main graph"
    more = f" (and {len(seen) - 1} more place{'s' if len(seen) > 2 else ''})" if len(seen) > 1 else ""
    if any(op.runs for op, _ in seen):
        reach = "reached from a serving signature or the init op: running the model does it"
    elif first.saver:
        reach = "in the saver's functions, which the loader runs to restore the variables"
    else:
        reach = "in a function the SavedModel exposes, outside the saver's own"
    literal = f", given {first.detail!r}" if first.detail else ""
    return f"TensorFlow op `{name}` in {where}, node `{first.node}`{more}{literal}: {what}; {reach}"


# -- pickled npz arrays (MA410) --

# The globals Keras 3's NpzIOStore pickle names (numpy's array reconstruction; a Keras Variable of the
# TensorFlow backend and what it pickles through): unpickling them builds arrays and variables, nothing
# else. Any other global is called by a loader that unpickles (np.load with allow_pickle=True).
KERAS_NPZ_GLOBALS = frozenset({
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "numpy.ndarray", "numpy.dtype", "keras.src.backend.Variable",
    "keras.src.backend.tensorflow.core.Variable", "tensorflow.python.framework.dtypes.as_dtype",
    "tensorflow.python.ops.resource_variable_ops.ResourceVariable", "functools.partial",
})


@register
class PickledArray(Rule):
    code = "MA410"
    name = "pickled-array"
    severity = Severity.ERROR
    summary = "An npz weights member is an object array: a pickle, which loading with allow_pickle runs"

    def check(self, model):
        keras_layout = []
        for member, names in model.graph.source.pickled_members:
            foreign = [n for n in names if n not in KERAS_NPZ_GLOBALS]
            if not foreign:
                keras_layout.append(member)
                continue
            shown = ", ".join(f"`{n}`" for n in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            yield self.finding(None, f"npz member `{member}` is a pickle (an object array) calling {shown}: "
                               "np.load(allow_pickle=True), as Keras 3 loaded npz weights before it refused "
                               "pickles, runs it (code execution)")
        if keras_layout:
            shown = ", ".join(f"`{m}`" for m in keras_layout[:GROUP_SHOWN])
            more = f" and {len(keras_layout) - GROUP_SHOWN} more" if len(keras_layout) > GROUP_SHOWN else ""
            yield self.finding(None, f"{len(keras_layout)} npz member{'s are pickles' if len(keras_layout) > 1 else ' is a pickle'} "
                               f"(object arrays) of Keras variables ({shown}{more}): Keras now refuses to load them, and "
                               "a loader that unpickles them runs whatever an edit puts there", Severity.WARNING,
                               fix="save the weights as model.weights.h5 (Keras's default)")
