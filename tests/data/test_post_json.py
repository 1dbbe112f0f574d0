"""The post JSON format: fields, entities and pairs, and a coded error for each problem."""
import json

import pytest
from PIL import Image

from graphmie.data.post_json import post_document, read_post
from graphmie.errors import GraphmieError


def test_read_post_with_image_caption_detections_entities_pairs(tmp_path):
    Image.new("RGB", (40, 30), "white").save(tmp_path / "pic.png")
    (tmp_path / "dets.json").write_text(json.dumps([{"box": [1, 2, 20, 25], "label": "person"}]))
    (tmp_path / "p.json").write_text(json.dumps({
        "text": "Ann met Bob in Rome .", "image": "pic.png", "caption": "Two people.", "detections": "dets.json",
        "entities": ["Ann", {"start": 8, "end": 11, "label": "PER"}], "pairs": [["Ann", "Rome"], ["Bob", "Ann"]]}))
    doc = read_post(tmp_path / "p.json")
    assert doc.id == "p" and doc.kind == "post" and doc.source == str(tmp_path / "p.json")
    assert doc.image == str(tmp_path / "pic.png") and doc.caption == "Two people."
    assert doc.meta["detections"] == [{"box": [1, 2, 20, 25], "label": "person"}]
    assert doc.meta["detections_file"] == str(tmp_path / "dets.json")
    assert [(e.id, e.text, e.label, e.span) for e in doc.entities] == [
        ("e0", "Ann", "ENT", (0, 3)), ("e1", "Bob", "PER", (8, 11)), ("e2", "Rome", "ENT", (15, 19))]
    assert doc.meta["pairs"] == [["e0", "e2"], ["e1", "e0"]]
    assert all(e.provenance.model == "user" and e.provenance.span == e.span for e in doc.entities)


def test_inline_post_keeps_its_name_and_reads_paths_from_base(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "i.png")
    doc = post_document({"text": "Hi Bob", "image": "i.png"}, "inline:0123abcd", tmp_path)
    assert doc.id == "inline:0123abcd" and doc.image == str(tmp_path / "i.png") and not doc.entities


@pytest.mark.parametrize("post, code", [
    ({"caption": "no text"}, "E018"),
    ({"text": 3}, "E019"),
    ({"text": "  "}, "E007"),
    ({"text": "Hi Bob", "caption": ["x"]}, "E019"),
    ({"text": "Hi Bob", "image": "nope.jpg"}, "E001"),
    ({"text": "Hi Bob", "image": "bad.json"}, "E005"),
    ({"text": "Hi Bob", "detections": "missing.json"}, "E001"),
    ({"text": "Hi Bob", "entities": ["Alice"]}, "E014"),
    ({"text": "Hi Bob", "entities": [{"start": 3, "end": 40}]}, "E014"),
    ({"text": "Hi Bob", "entities": [7]}, "E004"),
    ({"text": "Hi Bob", "pairs": [["Bob"]]}, "E004"),
    ({"text": "Hi Bob", "pairs": [["Bob", "Alice"]]}, "E014"),
])
def test_bad_posts_have_coded_errors(tmp_path, post, code):
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(GraphmieError, match=code):
        post_document(post, "p.json", tmp_path)


def test_read_post_needs_an_object(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(GraphmieError, match="E004"):
        read_post(tmp_path / "list.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(GraphmieError, match="E003"):
        read_post(tmp_path / "broken.json")
    with pytest.raises(GraphmieError, match="E001"):
        read_post(tmp_path / "none.json")


def test_post_text_repaired_spans_trimmed_and_limits(tmp_path, monkeypatch):
    doc = post_document({"text": "Ann \ud800 met  Bob", "entities": [{"start": 0, "end": 4}, " Bob"],
                         "pairs": [["Ann", "Bob"]]}, "p.json", tmp_path)
    assert doc.text == "Ann \ufffd met  Bob" and doc.meta["text_repairs"]["replaced"] == {"text": 1}
    assert [(e.text, e.span) for e in doc.entities] == [("Ann", (0, 3)), ("Bob", (11, 14))]
    with pytest.raises(GraphmieError, match="E007"):
        post_document({"text": "Ann  Bob", "entities": [{"start": 3, "end": 5}]}, "p.json", tmp_path)
    with pytest.raises(GraphmieError, match="E004"):
        post_document({"text": "Ann Bob", "entities": [{"start": True, "end": 3}]}, "p.json", tmp_path)
    with pytest.raises(GraphmieError) as e:
        post_document({"text": "Ann Bob", "image": "nope.png"}, "p.json", tmp_path)
    assert e.value.code == "E001" and "p.json" in str(e.value) and "nope.png" in str(e.value)
    with pytest.raises(GraphmieError, match="E032"):
        post_document({"text": "x" * 1_000_001}, "p.json", tmp_path)
    monkeypatch.setenv("GRAPHMIE_MAX_POST_PAIRS", "1")
    with pytest.raises(GraphmieError, match="E032.*GRAPHMIE_MAX_POST_PAIRS"):
        post_document({"text": "Ann Bob", "pairs": [["Ann", "Bob"], ["Bob", "Ann"]]}, "p.json", tmp_path)
