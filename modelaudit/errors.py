"""Errors a user can act on. Their message is one line and names no internals."""


class ModelReadError(Exception):
    """The file cannot be read as a Keras model. `str(exc)` is the reason, one line."""


class NotAModel(ModelReadError):
    """The file is readable and holds no model, by design: a weights checkpoint (`save_weights`, a
    Keras 3 `*.weights.h5`). It is skipped with one note, never an error: committing a checkpoint
    must not block a commit."""


WEIGHTS_ONLY = "weights only, no model config: skipped"


class NotKerasJSON(ModelReadError):
    """A JSON file that is no Keras model config at all (package.json, a schema, a TF.js graph model).
    Named on the command line it cannot be read; found by walking a folder it is passed over."""


class ConfigError(Exception):
    """The modelaudit configuration (pyproject.toml or flags) is wrong. One line."""


_BREAKS = frozenset(chr(c) for c in range(32)) | {"\x7f", "\x85", "\u2028", "\u2029"}


def one_line(text) -> str:
    """`text` as one line: control characters and line separators (a hostile layer name may hold
    any) are written as escapes (`\\n`, `\\x00`, `\\u2028`), so that a message stays one line."""
    text = str(text)
    if any(ch in _BREAKS for ch in text):
        text = "".join(repr(ch)[1:-1] if ch in _BREAKS else ch for ch in text)
    return text


def exception_text(exc: BaseException) -> str:
    """What an exception says, folded to one line of at most 200 characters (its class name when it
    says nothing): the reason in a "cannot read" line."""
    return " ".join(str(exc).split())[:200] or type(exc).__name__
