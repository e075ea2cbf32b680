"""`--scan-weights`: the one place where weight data is read.

A reader that is handed a WeightScan runs it while its weights file is open: every variable of the
model (not the optimizer's) is read in bounded chunks, straight from the file (for a `.keras`, from
the zip member in place), and reduced to facts — how many NaN, +Inf and -Inf values it holds, and
whether every value is zero. The facts are kept per stored path; the rules (MA108, MA110) read them
from `Inferred.weight_scan` and never open a file.

Never read: datasets behind an external link, with external storage or a virtual mapping (their
data lives outside the model file), and datasets declaring more bytes than the file can hold.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from modelaudit.errors import exception_text
from modelaudit.graph import ModelGraph, Weight

# Bytes read per slice: a few MB, so memory stays flat whatever the size of one variable.
CHUNK_BYTES = 4 << 20


@dataclass
class WeightFacts:
    """What the data of one stored variable holds."""

    path: str
    shape: tuple
    dtype: str
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    all_zero: bool = False  # holds at least one value, and every value is 0
    skipped: Optional[str] = None  # why the data was not read (then the counts mean nothing)

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf


@dataclass
class WeightScan:
    """One file's scan: filled in by its reader, read by the rules."""

    progress: Any = None  # a terminal stream to draw a progress bar on, or None
    label: str = ""
    facts: dict = field(default_factory=dict)  # stored path -> WeightFacts
    bytes_read: int = 0
    seconds: float = 0.0

    def run_h5(self, h5, weights: Iterable[Weight], skip: dict) -> None:
        """Scan `weights` (paths in the open h5py File `h5`); `skip` maps paths never to read to why."""
        todo = []
        for w in weights:
            if w.path in self.facts:
                continue
            facts = self.facts[w.path] = WeightFacts(w.path, tuple(w.shape), w.dtype)
            if w.path in skip:
                facts.skipped = skip[w.path]
            else:
                todo.append(facts)
        bar = Progress(self.progress, sum(_nbytes(f) for f in todo), self.label)
        t0 = time.perf_counter()
        try:
            for facts in todo:
                try:
                    dset = h5[facts.path]
                    _scan_dataset(dset, facts, bar)
                except Exception as exc:  # a damaged dataset: recorded, the others are still read
                    facts.skipped = f"unreadable ({exception_text(exc)})"
        finally:
            bar.close()
        self.bytes_read += bar.done
        self.seconds += time.perf_counter() - t0

    def run_arrays(self, items: Iterable[tuple[Weight, Any]]) -> None:
        """Scan (Weight, chunks) pairs, where chunks yields numpy arrays (the .npz reader's case)."""
        t0 = time.perf_counter()
        for w, chunks in items:
            facts = self.facts[w.path] = WeightFacts(w.path, tuple(w.shape), w.dtype)
            try:
                _Reducer(facts).feed_all(chunks)
            except Exception as exc:  # a damaged or refused array: recorded, the others are still read
                facts.skipped = f"unreadable ({exception_text(exc)})"
        self.seconds += time.perf_counter() - t0


def model_weights(graph: ModelGraph) -> list[Weight]:
    """The model's own variables: every layer's at every depth, and those no layer claims."""
    out = []
    for _, layer, _ in graph.walk():
        out.extend(layer.weights or ())
    out.extend(graph.unassigned_weights)
    return out


def npy_header(stream):
    """(shape, numpy dtype) of an .npy stream, its header read (formats/npz.py) and nothing more; the
    stream is left at the data. An object or record dtype is refused: its data is a pickle."""
    import numpy as np

    from modelaudit.formats.npz import read_header

    header = read_header(stream)
    if header.dtype in ("object", "structured") or not isinstance(header.descr, str):
        raise ValueError("an object array (pickled data) is never read")
    return header.shape, np.dtype(header.descr)


def npy_chunks(stream):
    """The array of an .npy stream in chunks of CHUNK_BYTES, from its raw bytes: never unpickled (an
    object array is refused), never whole in memory."""
    import numpy as np

    shape, dtype = npy_header(stream)
    if dtype.hasobject:
        raise ValueError("an object array (pickled data) is never read")
    left = dtype.itemsize
    for d in shape:
        left *= int(d)
    step = max(dtype.itemsize, CHUNK_BYTES - CHUNK_BYTES % max(dtype.itemsize, 1))
    carry = b""
    while left > 0:
        data = stream.read(min(step, left))
        if not data:
            raise ValueError("the array's data is truncated")
        left -= len(data)
        data = carry + data if carry else data
        usable = len(data) - len(data) % dtype.itemsize
        carry = data[usable:]
        if usable:
            yield np.frombuffer(data, dtype=dtype, count=usable // dtype.itemsize)


def _nbytes(facts: WeightFacts) -> int:
    n = _itemsize(facts.dtype)
    for d in facts.shape:
        n *= int(d)
    return n


def _itemsize(dtype: str) -> int:
    digits = "".join(ch for ch in dtype if ch.isdigit())
    if dtype.startswith(("float", "int", "uint", "complex")) and digits:
        return max(1, int(digits) // 8)
    return 1 if dtype == "bool" else 4


def _blocks(shape: tuple, itemsize: int, budget: int):
    """Selections (tuples of slices) covering an array in C order, each at most `budget` bytes where
    the shape allows: whole rows of the first axis when they fit, else one row at a time, recursively."""
    if not shape:
        yield ()
        return
    inner = itemsize
    for d in shape[1:]:
        inner *= d
    if inner <= budget or len(shape) == 1:
        if len(shape) == 1:
            step = max(1, budget // max(itemsize, 1))
        else:
            step = max(1, budget // max(inner, 1))
        for i in range(0, shape[0], step):
            yield (slice(i, min(i + step, shape[0])),)
        return
    for i in range(shape[0]):
        for rest in _blocks(shape[1:], itemsize, budget):
            yield (slice(i, i + 1),) + rest


def _scan_dataset(dset, facts: WeightFacts, bar: "Progress") -> None:
    import numpy as np

    dtype = dset.dtype
    if dtype.kind not in "fiub":
        facts.skipped = f"dtype {dtype} is not numeric"
        return
    reducer = _Reducer(facts)
    shape = tuple(int(d) for d in dset.shape) if dset.shape is not None else ()
    if any(d == 0 for d in shape):
        return
    for sel in _blocks(shape, dtype.itemsize, CHUNK_BYTES):
        chunk = np.asarray(dset[sel] if sel else dset[()])
        reducer.feed(chunk)
        bar.update(chunk.nbytes)
    reducer.finish()


class _Reducer:
    """isfinite and all-zero, one chunk at a time: min and max settle both for the common chunk
    (finite, so nothing to count; zero only if both are 0); exact counts only for a chunk that has
    a NaN or an Inf."""

    def __init__(self, facts: WeightFacts):
        self.facts = facts
        self.zero = True
        self.seen = 0

    def feed(self, chunk) -> None:
        import numpy as np

        if chunk.size == 0:
            return
        self.seen += chunk.size
        kind = chunk.dtype.kind
        if kind == "b":
            if self.zero and chunk.any():
                self.zero = False
            return
        lo, hi = chunk.min(), chunk.max()
        if kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
            nan = int(np.count_nonzero(np.isnan(chunk)))
            pos = int(np.count_nonzero(np.isposinf(chunk)))
            neg = int(np.count_nonzero(np.isneginf(chunk)))
            self.facts.nan += nan
            self.facts.posinf += pos
            self.facts.neginf += neg
            self.zero = False
            return
        if self.zero and (lo != 0 or hi != 0):
            self.zero = False

    def feed_all(self, chunks) -> None:
        for chunk in chunks:
            if chunk.dtype.kind not in "fiub":
                self.facts.skipped = f"dtype {chunk.dtype} is not numeric"
                return
            self.feed(chunk)
        self.finish()

    def finish(self) -> None:
        self.facts.all_zero = self.zero and self.seen > 0


class Progress:
    """A one-line progress bar on a terminal stream, drawn only once the scan has lasted a second."""

    DELAY = 1.0
    INTERVAL = 0.1
    WIDTH = 24

    def __init__(self, stream, total: int, label: str = ""):
        self.stream = stream if stream is not None and _isatty(stream) else None
        self.total, self.label, self.done = max(total, 1), label, 0
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def update(self, n: int) -> None:
        self.done += n
        if self.stream is None:
            return
        now = time.perf_counter()
        if now - self.t0 < self.DELAY or now - self.last < self.INTERVAL:
            return
        self.last = now
        self.draw(now)

    def draw(self, now: float) -> None:
        frac = min(1.0, self.done / self.total)
        fill = int(frac * self.WIDTH)
        rate = self.done / max(now - self.t0, 1e-9) / 1e6
        label = self.label if len(self.label) <= 40 else "…" + self.label[-39:]
        line = (f"\rscanning weights {label} [{'#' * fill}{'.' * (self.WIDTH - fill)}] {frac * 100:3.0f}% "
                f"{self.done / 1e6:,.0f}/{self.total / 1e6:,.0f} MB {rate:,.0f} MB/s")
        try:
            self.stream.write(line)
            self.stream.flush()
            self.drawn = True
        except (OSError, ValueError):
            self.stream = None

    def close(self) -> None:
        if self.stream is not None and self.drawn:
            try:
                self.stream.write("\r\x1b[2K")  # clear the line: the report follows on a clean terminal
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.stream = None


def _isatty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def default_progress_stream():
    """stderr when it is a terminal, else None (no bar in CI logs or pipes)."""
    return sys.stderr if _isatty(sys.stderr) else None
