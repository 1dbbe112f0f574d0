"""The English recipe flow-graph reader: a small CoNLL-U file (extra edges, root, multi-token
entities), the label mapping, broken files with their codes, the tagger files and the shared corpus."""
from __future__ import annotations

import pytest

from conftest import shared
from graphmie.data import recipe_fg, wikihow_fg
from graphmie.data.recipe_fg import read_conll03, read_conllu, read_corpus, to_wikihow
from graphmie.errors import GraphmieError

# "Place the potatoes in a pan of water . Bring to the boil and cook till tender ." + a second recipe
ROWS = [
    ("Place", "B-Ac", 10, "t", "_"),
    ("the", "O", 0, "root", "_"),
    ("potatoes", "B-F", 1, "t", "[(11, 'f-eq')]"),        # an extra edge
    ("in", "O", 0, "root", "_"),
    ("a", "O", 0, "root", "_"),
    ("pan", "B-T", 1, "d", "_"),
    ("of", "O", 0, "root", "_"),
    ("water", "B-F", 6, "o", "_"),
    (".", "O", 0, "root", "_"),
    ("Bring", "B-Ac", 15, "t", "_"),
    ("to", "I-Ac", 0, "root", "_"),                        # multi-token entity "Bring to the boil"
    ("the", "I-Ac", 0, "root", "_"),
    ("boil", "I-Ac", 0, "root", "_"),
    ("and", "O", 0, "root", "_"),
    ("cook", "B-Ac", 0, "root", "_"),                      # the root: no outgoing edge
    ("till", "O", 0, "root", "_"),
    ("tender", "B-Sf", 15, "v-tm", "_"),
    (".", "O", 0, "root", "_"),
]
SECOND = [("Serve", "B-Ac", 0, "root", "_"), ("hot", "B-Sf", 1, "o", "_"), (".", "O", 0, "root", "_")]


def _lines(rows):
    return [f"{i}\t{w}\t_\tXX\t{tag}\t_\t{h}\t{rel}\t{extra}\t_" for i, (w, tag, h, rel, extra) in enumerate(rows, 1)]


def _write(tmp_path, *recipes, name="train.conllu"):
    p = tmp_path / name
    p.write_text("\n\n".join("\n".join(_lines(r)) for r in recipes) + "\n", encoding="utf-8")
    return p


def test_reader_small_file_exact(tmp_path):
    docs = read_conllu(_write(tmp_path, ROWS, SECOND))
    assert [d.id for d in docs] == ["train-000", "train-001"]
    doc = docs[0]
    assert doc.kind == "procedure" and doc.meta["dataset"] == "recipe_fg_en"
    assert [s.text for s in doc.steps] == ["Place the potatoes in a pan of water .",
                                           "Bring to the boil and cook till tender ."]      # steps = sentences
    assert doc.tokens[10].step == 1 and doc.tokens[10].span == (6, 8)
    assert [(e.step, e.text, e.label) for e in doc.entities] == [
        (0, "Place", "Ac"), (0, "potatoes", "F"), (0, "pan", "T"), (0, "water", "F"), (1, "Bring to the boil", "Ac"),
        (1, "cook", "Ac"), (1, "tender", "Sf")]
    rel = {(doc.entity(r.head).text, r.label, doc.entity(r.tail).text) for r in doc.relations}
    assert rel == {("Place", "t", "Bring to the boil"), ("potatoes", "t", "Place"), ("potatoes", "f-eq", "Bring to the boil"),
                   ("pan", "d", "Place"), ("water", "o", "pan"), ("Bring to the boil", "t", "cook"),
                   ("tender", "v-tm", "cook")}
    assert all(r.provenance.model == "gold" for r in doc.relations)
    assert doc.meta["read_stats"] == {}
    assert [(e.text, e.label) for e in docs[1].entities] == [("Serve", "Ac"), ("hot", "Sf")]


def test_label_mapping(tmp_path):
    assert set(recipe_fg.ENTITY_MAP) == set(recipe_fg.ENTITY_TYPES)
    assert set(recipe_fg.ENTITY_MAP.values()) <= set(wikihow_fg.ENTITY_TYPES)
    assert set(recipe_fg.FLOW_MAP) == set(recipe_fg.FLOW_LABELS)
    assert set(recipe_fg.FLOW_MAP.values()) == set(wikihow_fg.FLOW_LABELS)     # every wikiHow-FG label is reached
    assert recipe_fg.ENTITY_MAP["F"] == "I" and recipe_fg.ENTITY_MAP["Sf"] == "Si" and recipe_fg.ENTITY_MAP["At"] == "Ai"
    assert recipe_fg.FLOW_MAP["f-eq"] == "I-eq" and recipe_fg.FLOW_MAP["v"] == "V-tm"
    doc = read_conllu(_write(tmp_path, ROWS))[0]
    w = to_wikihow(doc)
    assert [e.label for e in w.entities] == ["Ae", "I", "T", "I", "Ae", "Ae", "Si"]
    assert [t.tag for t in w.tokens[9:13]] == ["B-Ae", "I-Ae", "I-Ae", "I-Ae"]
    assert sorted(r.label for r in w.relations) == sorted(["Targ", "Targ", "I-eq", "Dest", "other-mod", "Targ", "V-tm"])
    assert [e.label for e in doc.entities][0] == "Ac"                      # the original is left alone


@pytest.mark.parametrize("row, change, code, line", [
    (2, lambda c: c[:9], "E004", 3),                                   # 9 columns
    (5, lambda c: c[:6] + ["40"] + c[7:], "E009", 6),                  # HEAD out of range
    (7, lambda c: c[:8] + ["[(40, 'o')]"] + c[9:], "E009", 8),         # an extra edge out of range
    (7, lambda c: c[:6] + ["2"] + c[7:], "E012", 8),                   # an edge to 'the' (no entity)
    (1, lambda c: c[:6] + ["1", "t"] + c[8:], "E012", 2),              # an edge from 'the' (no entity)
    (1, lambda c: c[:6] + ["1"] + c[7:], "E012", 2),                   # HEAD 1 with DEPREL root
    (14, lambda c: c[:6] + ["17", "o"] + c[8:], "E012", 17),           # cook -> tender -> cook: a cycle
    (0, lambda c: c[:4] + ["B-Xx"] + c[5:], "E013", 1),                # unknown tag
    (0, lambda c: c[:7] + ["zz"] + c[8:], "E013", 1),                  # unknown edge label
    (3, lambda c: ["9"] + c[1:], "E012", 4),                           # IDs out of order
    (0, lambda c: c[:8] + ["[(6"] + c[9:], "E004", 1),                 # DEPRELS unparsable
])
def test_bad_conllu_codes_and_the_rest_read(tmp_path, row, change, code, line):
    lines = _lines(ROWS)
    lines[row] = "\t".join(change(lines[row].split("\t")))
    p = tmp_path / "bad.conllu"
    p.write_text("\n".join(_lines(SECOND)) + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(_lines(SECOND)) + "\n")
    with pytest.raises(GraphmieError) as e:
        read_conllu(p)
    assert e.value.code == code and f"bad.conllu line {line + len(SECOND) + 1}" in str(e.value)
    errors = []
    docs = read_conllu(p, errors)
    assert [d.id for d in docs] == ["bad-000", "bad-002"] and len(errors) == 1 and errors[0].startswith(f"[{code}]")


def test_cycles_allowed_on_request_and_unlabelled_edges(tmp_path):
    rows = list(ROWS)
    rows[14] = ("cook", "B-Ac", 17, "o", "_")
    rows[7] = ("water", "B-F", 6, "-", "_")
    p = _write(tmp_path, rows)
    doc = read_conllu(p, allow_cycles=True)[0]
    assert doc.meta["read_stats"] == {"unlabelled_edges": 1} and len(doc.meta["skipped_flows"]) == 1
    assert ("cook", "o", "tender") in {(doc.entity(r.head).text, r.label, doc.entity(r.tail).text)
                                       for r in doc.relations}


def test_tagger_file(tmp_path):
    p = tmp_path / "train.conll03"
    p.write_text("\n".join(f"{w}\tXX\tO\t{t}" for w, t, *_ in ROWS) + "\n\nServe\tVV0\tO\n")
    errors = []
    docs = read_conll03(p, errors)
    assert len(docs) == 1 and docs[0].relations == [] and len(docs[0].entities) == 7
    assert len(errors) == 1 and errors[0].startswith("[E004]") and "train.conll03 line 20" in errors[0]


def test_shared_corpus():
    errors = []
    docs = read_corpus(shared("recipe_fg_en"), errors)
    assert len(docs) == 288 and len(errors) == 12 and all("cycle" in e and e.startswith("[E012]") for e in errors)
    assert sum(len(d.relations) for d in docs) == 15102 and sum(len(d.entities) for d in docs) == 14378
    tagged = {d.id: d for d in read_conll03(shared("recipe_fg_en", "Tagger", "dev.conll03"))}
    for d in docs:
        if d.id in tagged:                                       # the tagger files hold the same tokens and tags
            assert [(t.text, t.tag) for t in d.tokens] == [(t.text, t.tag) for t in tagged[d.id].tokens]
    with pytest.raises(GraphmieError) as e:
        read_corpus(shared("wikihow_fg"))
    assert e.value.code == "E016"
