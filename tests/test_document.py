"""The typed document model: JSON round trip, schema version, box geometry, odd text."""
import json
import math

import pytest

from graphmie.document import (SCHEMA_VERSION, Box, Document, Entity, Grounding, Page, Provenance, Region,
                               Relation, Step, Token)


def _doc() -> Document:
    prov = Provenance(source="a.json", page=0, box=Box(1, 2, 3, 4), model="m", model_version="1", score=0.5)
    return Document(
        id="d1", kind="form", source="a.json", pages=[Page(0, 100, 200, "a.png")],
        tokens=[Token("Name", Box(1, 2, 3, 4), page=0), Token("Ann", Box(5, 2, 9, 4), page=0)],
        regions=[Region("r0", Box(0, 0, 10, 10), "line", page=0, children=["e0", "e1"])],
        entities=[Entity("e0", "Name", "question", [0], box=Box(1, 2, 3, 4), page=0, provenance=prov),
                  Entity("e1", "Ann", "answer", [1], box=Box(5, 2, 9, 4), page=0, provenance=prov)],
        relations=[Relation("l0", "e0", "e1", "question->answer", prov)],
        groundings=[Grounding("e1", "r0", Box(0, 0, 10, 10), "a.png", prov)],
        steps=[Step(0, "Mix.", tokens=[0])], meta={"k": [1, 2]})


def test_document_round_trips_through_json_with_its_schema_version():
    d = _doc()
    data = json.loads(json.dumps(d.to_dict()))
    assert data["schema_version"] == SCHEMA_VERSION and data["pages"][0]["unit"] == "px"
    back = Document.from_dict(data)
    assert back == d
    assert back.entity("e1").provenance.box == Box(1, 2, 3, 4)
    assert back.region("r0").children == ["e0", "e1"]
    with pytest.raises(KeyError):
        back.entity("nope")
    data.pop("schema_version")                               # documents written before versions: read as 1
    assert Document.from_dict(data) == d
    with pytest.raises(ValueError, match="newer"):
        Document.from_dict({**data, "schema_version": SCHEMA_VERSION + 1})


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 15, 15)
    assert a.area == 100 and a.center == (5, 5)
    assert a.intersection_area(b) == 25
    assert math.isclose(a.iou(b), 25 / 175)
    assert a.union(b) == Box(0, 0, 15, 15)
    assert Box(0, 0, 20, 20).contains(a) and not a.contains(b)
    assert Box.from_xywh(1, 2, 3, 4) == Box(1, 2, 4, 6)
    assert Box(-5, -5, 50, 50).clip(20, 30) == Box(0, 0, 20, 30)
    with pytest.raises(ValueError):
        Box(5, 0, 1, 1)
    with pytest.raises(ValueError):
        Box(0, 0, float("nan"), 1)


def test_document_json_keeps_lone_surrogates_lossless():
    from graphmie.pipeline import document_json

    d = Document(id="x", kind="post", source="s", text="bad \ud800 text é")
    back = Document.from_dict(json.loads(document_json(d)))
    assert back.text == d.text
    assert "é" in document_json(Document(id="y", kind="post", source="s", text="é")).decode("utf-8")
