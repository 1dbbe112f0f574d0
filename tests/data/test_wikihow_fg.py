"""The wikiHow-FG reader: exact fixture, the shared corpus, BIO decoding and bad articles."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, shared
from graphmie.data.wikihow_fg import FLOW_LABELS, decode_bio, read_article, read_folder
from graphmie.errors import GraphmieError

ONION = REPO / "tests" / "fixtures" / "wikihow_fg" / "domain" / "onion.json"


def _article(tmp_path, steps, flows, name="a.json"):
    d = {"article_id": "x", "steps": [[{"token_id": i, "token": w, "ne_tag": t} for i, w, t in s] for s in steps],
         "flows": flows}
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def test_reader_fixture_exact():
    doc = read_article(ONION)
    assert doc.kind == "procedure" and doc.id == "1_chop-and-fry-an-onion"
    assert [s.text for s in doc.steps] == ["Chop the red onion with a knife .", "Fry it for 5 minutes ."]
    assert len(doc.tokens) == 14 and doc.tokens[2].span == (9, 12) and doc.tokens[8].step == 1
    assert [(e.step, e.text, e.label) for e in doc.entities] == [
        (0, "Chop", "Ae"), (0, "red onion", "I"), (0, "knife", "T"), (1, "Fry", "Ae"), (1, "it", "I"),
        (1, "5 minutes", "D")]
    assert all(e.provenance.model == "gold" for e in doc.entities)
    rel = {(doc.entity(r.head).text, doc.entity(r.tail).text, r.label) for r in doc.relations}
    assert rel == {("red onion", "Chop", "Targ"), ("knife", "Chop", "T-comp"), ("Chop", "it", "I-eq"),
                   ("it", "Fry", "Targ"), ("5 minutes", "Fry", "V-tm")}
    assert doc.meta["read_stats"] == {}


def test_reader_shared_corpus():
    data = shared("wikihow_fg", "data")
    docs = read_folder(data)
    assert len(docs) == 96
    assert sum(len(d.steps) for d in docs) == 666
    assert sum(len(d.relations) for d in docs) == 2918          # every released flow becomes a relation
    assert {r.label for d in docs for r in d.relations} == set(FLOW_LABELS)
    assert sum(len(d.entities) for d in docs) == 4880


def test_decode_bio_orphan_inside():
    spans, orphans = decode_bio(["B-I", "I-I", "O", "I-T", "I-T", "B-Ae", "I-I"])
    assert spans == [(0, 2, "I"), (3, 5, "T"), (5, 6, "Ae"), (6, 7, "I")] and orphans == 2


def test_steps_out_of_order(tmp_path):
    p = _article(tmp_path, [[("1-0-0", "Fry", "Ae-B")], [("0-0-0", "Chop", "Ae-B")]], [])
    with pytest.raises(GraphmieError) as e:
        read_article(p)
    assert e.value.code == "E012" and "out of order" in str(e.value) and "a.json" in str(e.value)


def test_dangling_untagged_inside_and_empty(tmp_path):
    p = _article(tmp_path, [[("0-0-0", "Chop", "Ae-B"), ("0-0-1", "red", "I-B"), ("0-0-2", "onion", "I-I"),
                             ("0-0-3", ".", "O")], []],
                 [["0-0-1", "0-0-0", "Targ"], ["0-0-2", "0-0-0", "Targ"], ["0-0-9", "0-0-0", "Targ"],
                  ["0-0-3", "0-0-0", "Dest"]])
    doc = read_article(p)
    st = doc.meta["read_stats"]
    assert st["empty_steps"] == 1 and len(doc.steps) == 2 and doc.steps[1].text == ""
    assert st["dangling_flows"] == 1 and st["flows_on_untagged"] == 1
    assert st["flows_remapped"] == 1 and st["duplicate_flows"] == 1     # 0-0-2 lies inside "red onion"
    assert len(doc.relations) == 1
    reasons = [s["reason"] for s in doc.meta["skipped_flows"]]
    assert any("0-0-9 does not exist" in r for r in reasons) and any("not inside an entity" in r for r in reasons)


@pytest.mark.parametrize("steps,flows,code", [
    ([[("0-0-0", "Chop", "Zz-B")]], [], "E013"),
    ([[("0-0-0", "Chop", "Ae-B")]], [["0-0-0", "0-0-0", "Nope"]], "E013"),
    ([[("0-0-0", "Chop", "Ae-B"), ("0-0-0", "it", "I-B")]], [], "E012"),
    ([[("0-0-1", "Chop", "Ae-B"), ("0-0-0", "it", "I-B")]], [], "E012"),
    ([[("zero", "Chop", "Ae-B")]], [], "E004"),
    ([[("0-0-0", 7, "Ae-B")]], [], "E019"),
    ([[("0-0-0", "Chop", "Ae-B")]], [["0-0-0", "0-0-0"]], "E004"),
])
def test_bad_articles(tmp_path, steps, flows, code):
    with pytest.raises(GraphmieError) as e:
        read_article(_article(tmp_path, steps, flows))
    assert e.value.code == code


@pytest.mark.parametrize("data,code", [
    ({"steps": "x"}, "E004"),
    ({"steps": [], "flows": {}}, "E019"),
    ({"steps": [{"token": "x"}]}, "E019"),
    ({"steps": [[{"token": "Chop"}]]}, "E018"),
    ({"steps": [["Chop"]]}, "E004"),
])
def test_bad_article_structure(tmp_path, data, code):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    with pytest.raises(GraphmieError) as e:
        read_article(p)
    assert e.value.code == code and "a.json" in str(e.value)


def test_read_folder_collects_errors(tmp_path):
    _article(tmp_path, [[("0-0-0", "Chop", "Ae-B")]], [], "good.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.json").write_text("{not json")
    errors = []
    docs = read_folder(tmp_path, errors)
    assert len(docs) == 1 and len(errors) == 1 and "E003" in errors[0] and "bad.json" in errors[0]


def test_folder_without_articles(tmp_path):
    with pytest.raises(GraphmieError) as e:
        read_folder(tmp_path)
    assert e.value.code == "E016"
    with pytest.raises(GraphmieError) as e:
        read_folder(tmp_path / "nope")
    assert e.value.code == "E001"
