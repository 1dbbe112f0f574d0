"""The FUNSD reader: link orientation, bad input, the fixed dev split."""
import json

import pytest

from graphmie.data.funsd import dev_split, gold_links, read_funsd
from graphmie.errors import GraphmieError


def _ent(i, box, text, label, linking=()):
    return {"id": i, "box": box, "text": text, "label": label, "linking": [list(p) for p in linking],
            "words": [{"box": box, "text": w} for w in text.split()[:1]]}


def tiny_form():
    return {"form": [
        _ent(0, [10, 10, 100, 30], "HEADER", "header", [(0, 1)]),
        _ent(1, [10, 50, 60, 70], "Name:", "question", [(0, 1), (1, 2)]),
        _ent(2, [80, 50, 200, 70], "Ann Lee", "answer", [(1, 2)]),
        _ent(3, [10, 90, 60, 110], "Date:", "question", [(4, 3)]),     # listed answer-first
        _ent(4, [80, 90, 200, 110], "1/2/99", "answer", [(4, 3), (3, 4)]),
        _ent(5, [10, 130, 60, 150], "Fax", "question"),
        _ent(6, [10, 160, 60, 180], "555-1234", "answer"),
    ]}


def write(tmp_path, obj, name="f.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_reader_orients_links_and_drops_header_links(tmp_path):
    doc = read_funsd(write(tmp_path, tiny_form()))
    assert doc.kind == "form" and len(doc.entities) == 7
    assert gold_links(doc) == {("e1", "e2"), ("e3", "e4")}
    assert doc.meta["read_stats"]["other_links"] == 1
    assert all(r.provenance.model == "gold" for r in doc.relations)


@pytest.mark.parametrize("content,code", [
    ("{not json", "E003"), ('{"form": [', "E003"), ('{"forms": []}', "E004"),
    ('{"form": [{"id": 0, "label": "question"}]}', "E018"), ('{"form": [{"id": 0, "box": [0, 0, 1, 1]}]}', "E018"),
    ('{"form": [{"id": 0, "box": [0, 0, 1, 1], "label": 3}]}', "E019"), ('{"form": [0]}', "E004"),
    ('{"form": [{"id": 0, "box": [0, 0, 1, 1], "label": "key"}]}', "E013"),
    ('{"form": [{"id": 0, "box": [0, "x", 1, 1], "label": "other"}]}', "E019"),
    ('{"form": [{"id": 0, "box": [0, 1, 2], "label": "other"}]}', "E019"),
    ('{"form": [{"id": 0, "box": [0, 0, 1e400, 1], "label": "other"}]}', "E009"),
    ('{"form": [{"id": 0, "box": [0, 0, 1, 1], "label": "other"}, {"id": 0, "box": [0, 0, 1, 1], "label": "other"}]}',
     "E012"), ("", "E007")])
def test_reader_bad_input(tmp_path, content, code):
    with pytest.raises(GraphmieError) as e:
        read_funsd(write(tmp_path, content))
    assert e.value.code == code and "f.json" in str(e.value)


def test_dev_split_is_fixed():
    ids = [f"{i:04d}" for i in range(149)]
    tr, dv = dev_split(ids)
    assert len(dv) == 30 and len(tr) == 119 and not set(tr) & set(dv)
    assert dev_split(list(reversed(ids))) == (tr, dv)


@pytest.mark.parametrize("form, code", [
    ({"form": [{"id": [1], "label": "answer", "box": [0, 0, 1, 1]}]}, "E019"),
    ({"form": [{"id": 3, "label": "answer", "box": [0, 0, 1, 1]}, {"id": "3", "label": "other", "box": [0, 0, 1, 1]}]},
     "E012"),
    ({"form": [{"id": 0, "label": 5, "box": [0, 0, 1, 1]}]}, "E019"),
    ({"form": [{"id": 0, "label": "answer", "box": [-5, 0, 1, 1]}]}, "E009"),
    ({"form": [{"id": 0, "label": "answer", "box": [0, 0, 1e7, 1]}]}, "E032"),
    ({"form": [{"id": 0, "label": "answer", "box": [True, 0, 1, 1]}]}, "E019"),
    ({"form": [{"id": i, "label": "other", "box": [0, 0, 1, 1]} for i in range(401)]}, "E032"),
])
def test_hostile_forms_have_coded_errors(form, code):
    from graphmie.data.funsd import parse_funsd

    with pytest.raises(GraphmieError, match=code):
        parse_funsd(form, "f.json")


def test_form_text_repaired():
    from graphmie.data.funsd import parse_funsd

    doc = parse_funsd({"form": [{"id": 0, "label": "answer", "box": [0, 0, 9, 9], "text": "a\ud800",
                                 "words": [{"box": [0, 0, 9, 9], "text": "a\ud800"}]}]}, "f.json")
    assert doc.entities[0].text == "a\ufffd" and doc.meta["text_repairs"]["replaced"] == {"text": 2}
