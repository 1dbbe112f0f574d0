"""The procedure JSON input format: order, empty steps, images, tokens, bad structure."""
from __future__ import annotations

import json

import pytest

from graphmie.data.procedure_json import read_procedure
from graphmie.errors import GraphmieError


def _write(tmp_path, obj):
    p = tmp_path / "p.json"
    p.write_text(json.dumps(obj))
    return p


def test_procedure_json_bad_input(tmp_path):
    with pytest.raises(GraphmieError) as e:
        read_procedure(_write(tmp_path, {"steps": [{"index": 2, "text": "b"}, {"index": 1, "text": "a"}]}))
    assert e.value.code == "E012"
    with pytest.raises(GraphmieError) as e:
        read_procedure(_write(tmp_path, {"steps": [{"text": "a"}, {"text": "  "}]}))
    assert e.value.code == "E007" and "step 1" in str(e.value)
    with pytest.raises(GraphmieError) as e:
        read_procedure(_write(tmp_path, {"steps": [{"text": "a", "image": "nope.png"}]}))
    assert e.value.code == "E001" and "nope.png" in str(e.value)
    doc = read_procedure(_write(tmp_path, {"steps": [{"text": "Cut it.", "image": "nope.png"}]}),
                         missing_images="ignore")
    assert doc.steps[0].image is None and doc.meta["missing_images"][0]["image"] == "nope.png"
    doc = read_procedure(_write(tmp_path, {"title": "t", "steps": ["Cut the bread.", {"index": 1, "text": "x"}][:1]}))
    assert [t.text for t in doc.tokens] == ["Cut", "the", "bread", "."] and doc.tokens[2].span == (8, 13)


@pytest.mark.parametrize("obj,code", [
    ({"title": "t"}, "E004"),
    ([], "E004"),
    ({"steps": []}, "E007"),
    ({"steps": [3]}, "E004"),
    ({"steps": [{"text": 3}]}, "E019"),
    ({"steps": [{"text": "a", "image": 3}]}, "E019"),
    ({"steps": [{"text": "a", "index": 0}, {"text": "b"}]}, "E018"),
    ({"steps": [{"text": "a", "index": "0"}]}, "E019"),
])
def test_procedure_json_bad_structure(tmp_path, obj, code):
    with pytest.raises(GraphmieError) as e:
        read_procedure(_write(tmp_path, obj))
    assert e.value.code == code


def test_steps_indexed_from_one_and_unknown_missing_images_choice(tmp_path):
    doc = read_procedure(_write(tmp_path, {"steps": [{"index": 1, "text": "a"}, {"index": 2, "text": "b"}]}))
    assert [s.index for s in doc.steps] == [0, 1] and doc.text == "a\nb" and doc.id == "p"
    with pytest.raises(GraphmieError) as e:
        read_procedure(_write(tmp_path, {"steps": ["a"]}), missing_images="skip")
    assert e.value.code == "E022"


@pytest.mark.parametrize("obj, code", [
    ({"steps": [{"text": "Cut it.", "index": True}]}, "E019"),
    ({"steps": ["Cut it."] * 101}, "E032"),
    ({"steps": ["x" * 1001]}, "E032"),
    ({"steps": ["x" * 1000] * 11}, "E032"),
    ({"steps": ["Cut it."], "title": ["t"]}, "E019"),
])
def test_procedure_limits_and_types(tmp_path, obj, code):
    with pytest.raises(GraphmieError, match=code):
        read_procedure(_write(tmp_path, obj))


def test_procedure_text_repaired(tmp_path):
    doc = read_procedure(_write(tmp_path, {"title": "t\ud800", "steps": ["Cut the \ud800 onion ."]}))
    assert doc.steps[0].text == "Cut the \ufffd onion ." and doc.meta["title"] == "t\ufffd"
    assert doc.meta["text_repairs"]["replaced"] == {"steps": 1, "title": 1}
