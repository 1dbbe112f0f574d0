"""One hostile input never takes down a batch: a batch mixing good and hostile inputs completes,
every good input's files are written, and every hostile one is a coded error (never E999)."""
import json

import pytest

import graphmie
from conftest import shared

WORDS = " ".join(f"word{i}" for i in range(159))


def _form(entities):
    return {"form": [{"id": i, "label": lab, "box": box, "text": f"t{i}", "words": [], "linking": []}
                     for i, (lab, box) in enumerate(entities)]}


FORMS = {
    "huge_box": (_form([("question", [29_990, 10, 30_000, 20]), ("answer", [0, 0, 10, 10])]), None),
    "beyond_limit": (_form([("question", [1e7, 10, 1e7 + 10, 20])]), "E032"),
    "negative": (_form([("question", [-50, -50, -10, -10])]), "E009"),
    "nan_box": ('{"form": [{"id": 0, "label": "answer", "box": [NaN, 0, 1, 1]}]}', "E009"),
    "list_id": ({"form": [{"id": [1], "label": "answer", "box": [0, 0, 1, 1]}]}, "E019"),
    "same_ids": ({"form": [{"id": 3, "label": "answer", "box": [0, 0, 1, 1]},
                           {"id": "3", "label": "question", "box": [0, 0, 1, 1]}]}, "E012"),
    "label_int": ({"form": [{"id": 0, "label": 5, "box": [0, 0, 1, 1]}]}, "E019"),
    "too_many": (_form([("other", [i, 0, i + 1, 1]) for i in range(401)]), "E032"),
    "surrogate": ('{"form": [{"id": 0, "label": "answer", "box": [0, 0, 9, 9], "text": "a\\ud800b"}]}', None),
}


def _write(folder, name, content):
    p = folder / f"{name}.json"
    p.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return p


def _check(report, out, expected):
    got = {e["input"].rsplit("/", 1)[-1][:-5]: e["code"] for e in report.failed}
    assert "E999" not in got.values(), report.failed
    assert got == {k: v for k, v in expected.items() if v}, got
    for name, code in expected.items():
        assert (out / f"{name}.json").exists() == (code is None), name


def test_form_batch_with_hostile_inputs(tmp_path):
    good = shared("funsd", "training_data", "annotations")
    inputs = [sorted(good.glob("*.json"))[0]]
    expected = {inputs[0].stem: None}
    for name, (content, code) in FORMS.items():
        inputs.append(_write(tmp_path, name, content))
        expected[name] = code
    report = graphmie.load("form").extract(inputs, tmp_path / "out", progress=False)
    _check(report, tmp_path / "out", expected)
    doc = json.loads((tmp_path / "out" / "surrogate.json").read_text(encoding="utf-8"))
    assert doc["entities"][0]["text"] == "a\ufffdb" and doc["meta"]["text_repairs"]["replaced"] == {"text": 1}
    assert (tmp_path / "out" / "huge_box.png").stat().st_size > 0


POSTS = {
    "good": ({"text": "Taylor Swift and Ed Sheeran sang at Wembley in London ."}, None),
    "surrogate": ({"text": "Taylor Swift \ud800 in London .", "pairs": [["Taylor Swift", "London"]]}, None),
    "long_caption": ({"text": WORDS + " Ann met Bob", "caption": "Two people on a stage.",
                      "pairs": [["Ann", "Bob"]]}, None),
    "whitespace_span": ({"text": "Ann  met Bob", "entities": [{"start": 3, "end": 5}]}, "E007"),
    "nan_detection": ('{"text": "Ann met Bob", "detections": [{"box": [NaN, 0, 0.5, 0.5]}]}', "E009"),
    "over_limit": ({"text": "x" * 1_000_001}, "E032"),
    "outside_boxes": ({"text": "Ann met Bob .", "pairs": [["Ann", "Bob"]], "image": "pic.png",
                       "detections": [{"box": [2, 2, 20, 20]}, {"box": [50, 50, 60, 60]}]}, None),
}


def test_post_batch_with_hostile_inputs(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), "white").save(tmp_path / "pic.png")
    inputs, expected = [], {}
    for name, (content, code) in POSTS.items():
        inputs.append(_write(tmp_path, name, content))
        expected[name] = code
    report = graphmie.load("post").extract(inputs, tmp_path / "out", progress=False)
    _check(report, tmp_path / "out", expected)
    doc = json.loads((tmp_path / "out" / "outside_boxes.json").read_text(encoding="utf-8"))
    assert len(doc["regions"]) == 1 and doc["meta"]["detections_fixed"] == {"outside_image": 1}
