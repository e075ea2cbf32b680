"""`--format html` opened in a real browser: headless Chromium (Debian's `chromium`, installed by
.ci/run) loads the page with the network cut off, runs its script, and hands back the DOM and a
screenshot from one start. Its command line (`--dump-dom` and `--screenshot` together) rather than
a driver such as Playwright or Selenium: one start per page gives both, and nothing else needs
installing (Playwright brings a browser build of its own, which cannot be fetched here). The truth
for every assertion is Keras's own model: its layers, its count_params() per layer, and the findings
the model was built to have."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from modelaudit.cli import app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,900",
         # belt and braces under the network namespace: no name resolves, every proxy is closed
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]
SCRIPT_NAME = "<script>"  # Keras refuses a "/" in a name: no closing tag, but an opening one
IMG_NAME = "<img src=x onerror=alert(1)>"
MERMAID_NAME = '"]-->x'


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def open_in_chromium(page: str, folder) -> tuple[list, bytes]:
    """One browser start: (the elements of the DOM after the page's script ran, the screenshot PNG).
    In a fresh network namespace (no interface but a down loopback) when the machine allows one."""
    profile = os.path.join(str(folder), "profile")
    shot = os.path.join(str(folder), "shot.png")
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--dump-dom",
               "file://" + os.path.abspath(page)]
    if _can_unshare():
        command = ["unshare", "--net", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(shot, "rb") as f:
        return elements(done.stdout), f.read()


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list = []
        self._text = None

    def handle_starttag(self, tag, attrs):
        self.found.append({"tag": tag, **{k: v or "" for k, v in attrs}})


def elements(dom: str) -> list:
    parser = _Elements()
    parser.feed(dom)
    return parser.found


def classes(e: dict) -> set:
    return set(e.get("class", "").split())


def png_pixels(data: bytes):
    """(width, height, an array of (height, width, 3) RGB bytes) of an 8-bit RGB/RGBA, non-interlaced
    PNG (what Chromium writes), decoded with zlib: PNG's row filters undone as the spec says."""
    import numpy as np

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, stride + 1)
    image = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].copy()
        if kind == 1:  # Sub: a running sum along each channel
            line = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(stride)
        elif kind == 2:  # Up
            line = line + previous
        elif kind in (3, 4):  # Average, Paeth: each byte needs the one just decoded on its left
            out, up = bytearray(line.tobytes()), previous.tobytes()
            for i in range(stride):
                left = out[i - bpp] if i >= bpp else 0
                corner = up[i - bpp] if i >= bpp else 0
                if kind == 3:
                    out[i] = (out[i] + (left + up[i]) // 2) & 255
                    continue
                p = left + up[i] - corner
                pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
                out[i] = (out[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner)) & 255
            line = np.frombuffer(bytes(out), np.uint8)
        image[y] = line
        previous = image[y]
    return width, height, image.reshape(height, width, bpp)[:, :, :3]


def assert_not_blank(png: bytes) -> set:
    """The screenshot is the window's size and shows a page, not one flat colour: returns its colours."""
    width, height, image = png_pixels(png)
    assert (width, height) == (1280, 900)
    inked = (image != image[0, 0]).any(axis=2).mean()
    assert inked > 0.02, f"only {inked:.1%} of the pixels differ from the background: a blank page?"
    return {tuple(int(c) for c in pixel) for pixel in image[::2, ::2].reshape(-1, 3)}


def assert_offline_page(found: list) -> None:
    """Everything inline: the page's script ran (it marks the body), it is the only script, and no
    element loads anything (no src, no stylesheet link, no frame); a CSP forbids the rest."""
    body = next(e for e in found if e["tag"] == "body")
    assert body.get("data-ready") == "1", "the page's script did not run"
    assert [e["tag"] for e in found].count("script") == 1
    assert not [e for e in found if "src" in e or e["tag"] in ("link", "iframe", "object", "embed", "img")]
    policy = next(e for e in found if e.get("http-equiv") == "Content-Security-Policy")["content"]
    assert policy.startswith("default-src 'none';")


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    """A Functional model with a shared layer (called twice), a nested Sequential, names that are
    markup (`<script>`, an `<img onerror>`, `"]-->x`), and a softmax output trained with binary_crossentropy (MA201, an error, on `probs`);
    saved by Keras 3. (path, {layer path: Keras's count_params()})."""
    import keras

    a, b = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    shared = keras.layers.Dense(8, name=SCRIPT_NAME)
    joined = keras.layers.Add(name=IMG_NAME)([shared(a), shared(b)])
    head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu", name=MERMAID_NAME)], name="head")
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(head(joined))
    model = keras.Model([a, b], probs, name="flagged")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    path = str(tmp_path_factory.mktemp("html") / "flagged.keras")
    model.save(path)
    params = {layer.name: layer.count_params() for layer in model.layers}
    params.update({f"head/{layer.name}": layer.count_params() for layer in head.layers})
    return path, params


def test_check_html_of_a_flagged_model_in_chromium(flagged, tmp_path):
    path, params = flagged
    page = str(tmp_path / "report.html")
    result = CliRunner().invoke(app, ["check", path, "--format", "html", "-o", page])
    assert result.exit_code == 1, result.output  # MA201 is an error
    found, png = open_in_chromium(page, tmp_path)
    assert_offline_page(found)

    nodes = {e["data-layer"]: e for e in found if e["tag"] == "g" and "node" in classes(e)}
    assert set(nodes) == set(params)  # every layer, the nested model's too, and the raw names survive
    assert nodes["probs"]["data-severity"] == "error" and "sev-error" in classes(nodes["probs"])
    flagged_rows = [e for e in found if e["tag"] == "tr" and "finding" in classes(e)]
    assert [r["data-severity"] for r in flagged_rows if r["id"] in nodes["probs"]["data-findings"].split()] == ["error"]
    assert all("data-severity" not in e for name, e in nodes.items() if name != "probs")
    assert "model" in classes(nodes["head"]) and nodes["head"]["data-scope"]
    assert any(e["tag"] == "details" and e.get("id") == nodes["head"]["data-scope"] for e in found)
    # the shared layer is one node with an edge from each input, and one edge (dashed: two
    # connections) to `joined`: left, right -> shared -> joined -> head -> probs
    edges = [e for e in found if e["tag"] == "path" and "edge" in classes(e)]
    assert len(edges) == 5 and [e for e in edges if "shared" in classes(e)] == [edges[2]]

    bars = {e["data-layer"]: int(e["data-params"]) for e in found if e["tag"] == "rect" and "bar" in classes(e)
            and "data-params" in e}
    layers_with_params = {p: n for p, n in params.items() if n and p != "head"}  # a model's own total is no bar
    assert bars == layers_with_params

    colours = assert_not_blank(png)
    assert (0xd7, 0x26, 0x3d) in colours  # the error colour is on screen (the flagged box, the pill)


@pytest.fixture(scope="module")
def resnet50():
    """keras.applications.ResNet50(weights=None) read live: (our graph, {layer: Keras's count_params()}).
    Built without variable values (the shapes are all a count needs), and not through the session's
    `application` fixture, which would keep all 40 applications' records until this late module."""
    import keras

    from modelaudit.formats import live

    try:
        with keras.StatelessScope(initialize_variables=False):
            model = keras.applications.ResNet50(weights=None)
            return live.read(model), {layer.name: layer.count_params() for layer in model.layers}
    finally:
        keras.backend.clear_session()


def test_html_of_resnet50_in_chromium(resnet50, tmp_path):
    """ResNet50: a node per layer, a bar per layer with params (Keras's counts), a page of a few
    hundred KB that Chromium lays out and paints."""
    from modelaudit.api import FileReport, Report, recompute
    from modelaudit.engine import Settings, run_rules
    from modelaudit.report import html

    graph, params = resnet50
    inferred = recompute(graph)
    settings = Settings()
    findings, internal = run_rules(inferred, settings, "resnet50")
    report = Report([FileReport("resnet50", "live", None, findings, internal, inferred)], settings)
    text = html.render(report)
    assert len(text.encode()) < 2_000_000
    page = tmp_path / "resnet50.html"
    page.write_text(text, encoding="utf-8")
    found, png = open_in_chromium(str(page), tmp_path)
    assert_offline_page(found)
    nodes = {e["data-layer"]: e for e in found if e["tag"] == "g" and "node" in classes(e)}
    assert set(nodes) == set(params) and len(params) == 177
    bars = {e["data-layer"]: int(e["data-params"]) for e in found if e["tag"] == "rect" and "bar" in classes(e)
            and "data-params" in e}
    assert bars == {name: n for name, n in params.items() if n}
    flagged = {f.layer: f.severity.value for f in findings if f.layer}
    assert {p: e["data-severity"] for p, e in nodes.items() if "data-severity" in e}.keys() == flagged.keys()
    assert_not_blank(png)


def test_summary_html_and_the_missing_extra(flagged, tmp_path, monkeypatch):
    path, params = flagged
    page = tmp_path / "summary.html"
    result = CliRunner().invoke(app, ["summary", path, "--format", "html", "-o", str(page)])
    assert result.exit_code == 0, result.output
    found = elements(page.read_text(encoding="utf-8"))
    assert {e["data-layer"] for e in found if e["tag"] == "g" and "node" in classes(e)} == set(params)
    monkeypatch.setitem(__import__("sys").modules, "igraph", None)  # as if the html extra were not installed
    for command in (["check", path], ["summary", path]):
        result = CliRunner().invoke(app, [*command, "--format", "html"])
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [
            'modelaudit: error: --format html needs the igraph package (graph layout): pip install '
            '"keras-modelaudit[html]" (or pip install igraph)']


def test_names_are_escaped_in_the_page(flagged):
    """The page's own text, before any browser: the markup names appear only escaped."""
    from modelaudit.api import audit
    from modelaudit.report import html

    text = html.render(audit(flagged[0]))
    assert text.count("<script>") == 1 and "&lt;script&gt;" in text
    assert IMG_NAME not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert '"]--&gt;x' not in text and "&quot;]--&gt;x" in text
