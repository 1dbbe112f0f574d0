"""Every reader, on any input: a Document (or its documented result) or a coded GraphmieError.

Strategies mix random JSON with near-valid records (one field hostile at a time), so the
checks behind the first field are reached too."""
import json
import string
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from graphmie.document import Document
from graphmie.errors import GraphmieError
from strategies import BOX, FUNSD, JSON, NUMBER, POST, PROCEDURE, SCALAR, TEXT



def outcome(fn, *args, **kw):
    """Run a reader: its result, or None for a coded error; anything else fails the test."""
    try:
        return fn(*args, **kw)
    except GraphmieError as e:
        assert e.code and str(e).startswith(f"[{e.code}]")
        return None


def valid_text(doc: Document) -> None:
    """What a reader hands on encodes as UTF-8 (text repaired at the entry point)."""
    json.dumps(doc.to_dict(), ensure_ascii=False).encode("utf-8")


# --- FUNSD JSON --------------------------------------------------------------------------
@given(FUNSD)
def test_funsd(data):
    from graphmie.data.funsd import parse_funsd

    doc = outcome(parse_funsd, data, Path("f.json"))
    if doc is not None:
        valid_text(doc)
        assert all(e.box.x0 >= 0 and e.box.y0 >= 0 for e in doc.entities)
        assert doc.pages[0].width >= 1 and doc.pages[0].height >= 1


@given(st.binary(max_size=64))
def test_funsd_file_bytes(tmp_path_factory, raw):
    from graphmie.data.funsd import read_funsd

    p = tmp_path_factory.mktemp("funsd") / "x.json"
    p.write_bytes(raw)
    outcome(read_funsd, p)


# --- post JSON (post and entity tasks) and detections -------------------------------------
@given(POST)
def test_post(tmp_path_factory, d):
    from graphmie.data.post_json import post_document

    if not isinstance(d, dict):
        return
    base = tmp_path_factory.mktemp("post")
    doc = outcome(post_document, d, "p.json", base)
    if doc is not None:
        valid_text(doc)
        assert all(e.text == doc.text[e.span[0]:e.span[1]] and e.text.strip() == e.text and e.text
                   for e in doc.entities)


@given(st.one_of(JSON, st.lists(st.fixed_dictionaries({"box": BOX, "label": SCALAR}), max_size=4),
                 st.dictionaries(st.sampled_from(["a_crop_0.jpg", "a_crop_1.png", "b_crop_2.jpg", "x"]),
                                 st.lists(NUMBER, min_size=3, max_size=6), max_size=3)),
       st.sampled_from([None, (100, 50), (1, 1)]))
def test_detections(det, size):
    from scene_graphs.visual import regions_from_detections

    stats = {}
    out = outcome(regions_from_detections, det, "a", size, "d.json", stats=stats)
    if out is not None:
        boxes, labels = out
        assert len(boxes) == len(labels)
        assert all(0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 for b in boxes)  # no zero-area region


# --- procedure JSON ----------------------------------------------------------------------
@given(PROCEDURE)
def test_procedure(tmp_path_factory, d):
    from graphmie.data.procedure_json import read_procedure

    p = tmp_path_factory.mktemp("proc") / "p.json"
    p.write_text(json.dumps(d), encoding="utf-8")
    doc = outcome(read_procedure, p, missing_images="ignore")
    if doc is not None:
        valid_text(doc)
        assert doc.steps


# --- MNRE lines --------------------------------------------------------------------------
REL2ID = {"None": 0, "/per/per/peer": 1}
SPAN = st.one_of(st.lists(NUMBER, min_size=2, max_size=2), JSON)
MNRE = st.fixed_dictionaries({"token": st.one_of(st.lists(TEXT, min_size=1, max_size=5), JSON),
                              "h": st.one_of(st.fixed_dictionaries({"name": SCALAR, "pos": SPAN}), JSON),
                              "t": st.one_of(st.fixed_dictionaries({"name": SCALAR, "pos": SPAN}), JSON),
                              "img_id": st.one_of(st.just("x.jpg"), SCALAR),
                              "relation": st.one_of(st.sampled_from(list(REL2ID)), JSON)})


@given(st.one_of(MNRE.map(repr), st.text(max_size=40), JSON.map(repr)))
def test_mnre_line(line):
    from graphmie.data.mnre import parse_record

    s = outcome(parse_record, line, REL2ID, "mnre_x.txt:1")
    if s is not None:
        assert 0 <= s.head[0] < s.head[1] <= len(s.tokens)
        " ".join(s.tokens).encode("utf-8")


@given(st.binary(max_size=80), st.binary(max_size=60))
def test_mnre_split_files(tmp_path_factory, lines, captions):
    from graphmie.data.mnre import load_split

    d = tmp_path_factory.mktemp("mnre")
    (d / "rel2id.json").write_text(json.dumps(REL2ID))
    (d / "mnre_x.txt").write_bytes(lines)
    (d / "captions").mkdir()
    (d / "captions" / "blip2_x.txt").write_bytes(captions)
    outcome(load_split, d, "x", "blip2")


# --- Twitter-GMNER CoNLL, captions and Pascal-VOC ------------------------------------------
CONLL_LINE = st.one_of(st.sampled_from(["IMGID:1", "IMGID:", "", "Bob\tB-PER", "Rome\tI-LOC", "x\tO", "x O",
                                        "x\tB-XYZ", "a\tb\tc", "\ud800\tO", "\r", "x\u2028y\tO"]),
                       st.text(alphabet=string.printable, max_size=10))
XML = st.sampled_from([
    "<annotation><size><width>10</width><height>10</height></size><object><name>Bob</name><bndbox>"
    "<xmin>{}</xmin><ymin>0</ymin><xmax>{}</xmax><ymax>5</ymax></bndbox></object></annotation>",
    "<annotation><size><width>{}</width><height>{}</height></size></annotation>", "<a>{}{}", "{}{}"])
XML_VALUE = st.sampled_from(["nan", "inf", "-inf", "1e400", "-3", "5", "x", "", "12"])


@given(st.lists(CONLL_LINE, max_size=10), st.binary(max_size=30), XML, XML_VALUE, XML_VALUE)
def test_gmner_split(tmp_path_factory, lines, blip, xml, a, b):
    from graphmie.data.gmner import read_split, tweet_to_document

    d = tmp_path_factory.mktemp("gmner")
    (d / "x.txt").write_bytes(("\n".join(lines)).encode("utf-8", "surrogatepass"))
    (d / "captions").mkdir()
    (d / "captions" / "blip2_x.txt").write_bytes(blip)
    (d / "xml").mkdir()
    (d / "xml" / "1.xml").write_text(xml.format(a, b), encoding="utf-8")
    split = outcome(read_split, d, "x")
    if split is not None:
        for t in split.tweets:
            valid_text(tweet_to_document(t, "x.txt"))


# --- wikiHow-FG articles and Recipe-FG CoNLL-U --------------------------------------------
TOKEN = st.fixed_dictionaries({"token_id": st.one_of(st.sampled_from(["1-1-1", "1-1-2", "2-1-1", "1-x-1"]), SCALAR),
                               "token": TEXT, "ne_tag": st.one_of(st.sampled_from(["O", "T-B", "T-I", "Ae-B"]),
                                                                  SCALAR)})
ARTICLE = st.one_of(JSON, st.fixed_dictionaries(
    {"steps": st.one_of(st.lists(st.lists(TOKEN, max_size=3), max_size=3), JSON),
     "flows": st.one_of(st.lists(st.lists(st.one_of(st.sampled_from(["1-1-1", "1-1-2", "Targ"]), SCALAR),
                                          min_size=3, max_size=3), max_size=2), JSON)}))


@given(ARTICLE)
def test_wikihow_article(tmp_path_factory, d):
    from graphmie.data.wikihow_fg import read_article

    p = tmp_path_factory.mktemp("wh") / "a.json"
    p.write_text(json.dumps(d), encoding="utf-8")
    doc = outcome(read_article, p)
    if doc is not None:
        valid_text(doc)


CONLLU_LINE = st.one_of(st.sampled_from(["# id 1", "1\tCut\t_\t_\t_\t_\t0\troot\t_\tB-Ac", "2\tx\t_\t_\t_\t_\t1\tTarg\t_\tO",
                                         "", "1\tx", "a\tb\tc\td\te\tf\tg\th\ti\tj"]),
                        st.text(alphabet=string.printable, max_size=12))


@given(st.lists(CONLLU_LINE, max_size=8))
def test_recipe_conllu(tmp_path_factory, lines):
    from graphmie.data.recipe_fg import read_conllu

    p = tmp_path_factory.mktemp("rfg") / "r.conllu"
    p.write_text("\n".join(lines), encoding="utf-8")
    docs = outcome(read_conllu, p, errors=[])
    for doc in docs or []:
        valid_text(doc)
