"""Mermaid flowcharts in `check --format markdown` and for `diff` (report/mermaid.py): the whole graph
of a small model, the neighbourhood of each finding in a large one, inside the comment's budget, and
no name from the model can become Mermaid or HTML syntax. Truth: the Keras models' own layers."""

from __future__ import annotations

import re

import pytest

from modelaudit.api import Report, audit
from modelaudit.report import markdown, mermaid

NODE = re.compile(r'^ *(n\d+_\d+)\["([A-Za-z0-9 _.,:()+=*/#;<>·-]*)"\]$')
EDGE = re.compile(r"^ *(n\d+_\d+) (-->|-- ×\d+ -->) (n\d+_\d+)$")


def charts(text: str) -> list[list[str]]:
    blocks = re.findall(r"```mermaid\n(.*?)\n```", text, re.S)
    return [block.splitlines() for block in blocks]


def decoded_names(chart: list[str]) -> dict:
    """node id -> the layer name its box shows, entity codes decoded."""
    out = {}
    for line in chart:
        match = NODE.match(line)
        if match:
            first = match.group(2).split("<br/>")[0]
            out[match.group(1)] = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), first)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A shared Dense called twice, a nested Sequential, names that are markup, and a softmax
    trained with binary_crossentropy (MA201 on `probs`)."""
    import keras

    a, b = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    shared = keras.layers.Dense(8, name="<script>")
    joined = keras.layers.Add(name='x"]-->y')([shared(a), shared(b)])
    head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu", name='"]-->x')],
                            name="head")
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(head(joined))
    model = keras.Model([a, b], probs, name="small")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    path = str(tmp_path_factory.mktemp("mermaid") / "small.keras")
    model.save(path)
    return path, [layer.name for layer in model.layers], [layer.name for layer in head.layers]


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """80 Dense layers in a Sequential (too many to draw whole), its 3-way softmax output trained with
    binary_crossentropy: MA201 on the last layer."""
    import keras

    layers = [keras.Input((4,))] + [keras.layers.Dense(4, activation="relu", name=f"d{i}") for i in range(79)]
    model = keras.Sequential(layers + [keras.layers.Dense(3, activation="softmax", name="out")], name="deep")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    path = str(tmp_path_factory.mktemp("mermaid") / "deep.keras")
    model.save(path)
    return path, [layer.name for layer in model.layers]


def test_small_model_drawn_whole_and_escaped(small):
    path, layers, inner = small
    text = markdown.render(audit(path))
    [chart] = charts(text)
    names = decoded_names(chart)
    assert sorted(names.values()) == sorted(layers + inner)  # every layer, by its own name
    body = [line for line in chart[1:] if line.strip()]
    for line in body:  # each line is one of the statements we write, names only inside labels
        assert (NODE.match(line) or EDGE.match(line) or line.startswith(("  subgraph m", "  classDef ", "  class "))
                or line in ("  end", "  n0_4 -.- m1", "flowchart TD")), line
    for raw in ('"]-->x', "<script>", 'x"]-->y'):
        assert raw not in "\n".join(chart)
    by_name = {name: node for node, name in names.items()}
    edges = [EDGE.match(line).groups() for line in body if EDGE.match(line)]
    # left, right -> <script> (shared) -> joined (two connections, one edge) -> head -> probs
    assert {(names[a], names[b]) for a, _, b in edges} == {
        ("left", "<script>"), ("right", "<script>"), ("<script>", 'x"]-->y'), ('x"]-->y', "head"), ("head", "probs")}
    assert (by_name["<script>"], "-- ×2 -->", by_name['x"]-->y']) in edges
    assert f"  class {by_name['probs']} error" in chart


def test_large_model_draws_the_finding_neighbourhood(deep):
    path, layers = deep
    report = audit(path)
    assert [(f.code, f.layer) for f in report.findings if f.severity.value != "info"] == [("MA201", "out")]
    [chart] = charts(markdown.render(report))
    names = decoded_names(chart)
    assert sorted(names.values()) == sorted(layers[-3:])  # `out` and the two layers before it
    assert f"  %% {len(layers) - 3:,} more layers not drawn" in chart


def test_diff_api_neighbourhoods_with_marks(deep):
    """What `diff --format markdown` calls: the neighbourhoods of the changed layers, marked."""
    path, layers = deep
    inferred = audit(path).files[0].inferred
    text = mermaid.flowchart(inferred, {"d10", "d40"}, marks={"d10": "changed", "d40": "added"}, radius=1)
    [chart] = charts(text)
    names = decoded_names(chart)
    assert sorted(names.values()) == sorted(["d9", "d10", "d11", "d39", "d40", "d41"])
    by_name = {name: node for node, name in names.items()}
    assert f"  class {by_name['d10']} changed" in chart and f"  class {by_name['d40']} added" in chart
    assert mermaid.flowchart(inferred, {"d10"}, max_chars=40) == ""  # nothing fits: nothing, not half a chart


def test_charts_never_push_a_finding_out_of_the_comment(deep, monkeypatch):
    """A comment of many files fills with findings first; the charts take only the room left."""
    one = audit(deep[0])
    report = Report(one.files * 60, one.settings)
    with_charts = markdown.render(report)
    assert len(with_charts) <= markdown.MAX_CHARS
    monkeypatch.setattr(markdown._Diagram, "lines", lambda self, room: [])
    without = markdown.render(report)
    rows = lambda text: text.count("| error | [MA201]")  # noqa: E731
    assert rows(with_charts) == rows(without) > 0
    assert 0 < len(charts(with_charts)) < 60


@pytest.mark.parametrize("name", ['"]-->x', "```", "<script>", "%% comment", "a\nb", "#quot;", "end", "x;y&z",
                                  "click n0 call alert()", "`markdown`"])
def test_label_is_inert(name):
    text = mermaid.label(name)
    assert re.fullmatch(r"[A-Za-z0-9 _.,:()+=*/#;…-]*", text), text
    assert re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text).replace("\\n", "\n") == name
