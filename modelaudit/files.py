"""Writing the tool's own outputs (a report's --output, a baseline): whole or not at all."""

from __future__ import annotations

import contextlib
import os


def write_whole(path: str, text: str, errors: str = "strict") -> None:
    """`text` into `path` as UTF-8 through a temporary file beside it and an atomic rename, so that a
    reader never sees half a file; raises OSError, with nothing left behind."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors=errors) as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
