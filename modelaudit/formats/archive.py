"""Opening a zip archive for reading: a `.keras` file, or the model.weights.npz inside one.

Both readers refuse the same way an archive zipfile cannot read or one with more members than their
bound; each words its own refusal. Kept apart from npz.py so that reading a `.keras` file with `.h5`
weights does not import the npz reader.
"""

from __future__ import annotations

import zipfile
from typing import Callable

from modelaudit.errors import ModelReadError


def open_zip(f, max_members: int, unreadable: Callable[[Exception], str],
             too_many: Callable[[int], str]) -> tuple:
    """(the open ZipFile over the file object `f`, its members), or ModelReadError(unreadable(exc))
    when zipfile cannot read it, ModelReadError(too_many(count)) past max_members members."""
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelReadError(unreadable(exc)) from None
    infos = zf.infolist()
    if len(infos) > max_members:
        zf.close()  # not handed to the caller, so closed here
        raise ModelReadError(too_many(len(infos)))
    return zf, infos
