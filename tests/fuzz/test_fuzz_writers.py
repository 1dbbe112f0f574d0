"""The writers, on any document the readers accept: RDF (ttl, nt, nq, trig, jsonld) always parses
with rdflib; the Cypher script always round-trips through its own loader into LadybugDB."""
from pathlib import Path

import pytest
import rdflib
from hypothesis import given
from hypothesis import strategies as st

from graphmie.document import Document, Entity, Provenance, Relation
from strategies import TEXT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # rdflib's own deprecations

COORD = st.integers(0, 2000) | st.floats(0, 2000, allow_nan=False)
LABEL = st.sampled_from(["question", "answer", "header", "other"])


@st.composite
def funsd_docs(draw):
    """Documents from FUNSD JSON the reader accepts: valid boxes and labels, hostile text and links."""
    from graphmie.data.funsd import parse_funsd

    n = draw(st.integers(1, 4))
    form = []
    for i in range(n):
        x0, y0, w, h = draw(COORD), draw(COORD), draw(COORD), draw(COORD)
        form.append({"id": i, "box": [x0, y0, x0 + w, y0 + h], "label": draw(LABEL), "text": draw(TEXT),
                     "words": [{"box": [x0, y0, x0 + w, y0 + h], "text": draw(TEXT)}],
                     "linking": draw(st.lists(st.lists(st.integers(0, n), min_size=2, max_size=2), max_size=2))})
    return parse_funsd({"form": form}, Path(draw(st.sampled_from(["f.json", "dir with space/ä#?.json"]))))


@st.composite
def post_docs(draw):
    """Documents from post JSON the reader accepts: hostile text, labels (entity types become IRIs)
    and captions, plus relations with hostile labels and odd scores as a model would add."""
    from graphmie.data.post_json import post_document

    text = draw(TEXT.filter(lambda t: t.strip())) + " Bob and Ann " + draw(TEXT)
    ents = [{"start": text.index("Bob"), "end": text.index("Bob") + 3, "label": draw(TEXT)}, "Ann"]
    doc = post_document({"text": text, "caption": draw(TEXT), "entities": ents}, draw(st.sampled_from(
        ["p.json", "inline:0123abcd"])), Path("."))
    doc.relations.append(Relation("r0", "e0", "e1", draw(TEXT), provenance=Provenance(
        doc.source, span=(0, 1), model=draw(TEXT), score=draw(st.floats(allow_nan=True, allow_infinity=True)))))
    return doc


DOCS = funsd_docs() | post_docs()


@given(DOCS)
def test_rdf_parses(doc):
    from kg_export import serialize

    for fmt, parser in (("ttl", "turtle"), ("nt", "nt"), ("nq", "nquads"), ("trig", "trig"), ("jsonld", "json-ld")):
        text = serialize(doc, fmt)
        g = rdflib.Dataset()
        g.parse(data=text, format=parser)
        assert len(g) > 0 or sum(len(c) for c in g.graphs()) > 0, fmt


@pytest.fixture(scope="module")
def ladybug(tmp_path_factory):
    from kg_export.cypher import LadybugStore

    store = LadybugStore(tmp_path_factory.mktemp("lb") / "db")
    yield store
    store.close()


@given(DOCS)
def test_cypher_script_round_trips(ladybug, doc):
    from kg_export.cypher import serialize_cypher

    script = serialize_cypher(doc, batch_size=2)
    assert ladybug.load_script(script) > 0
    ids = {r[0] for r in ladybug.query("MATCH (e:Entity) RETURN e.id")}
    assert {e.id for e in doc.entities} <= {i.rsplit("/", 1)[-1] for i in ids} or ids
    texts = {r[0] for r in ladybug.query("MATCH (e:Entity) RETURN e.text")}
    from kg_export.facts import clean_text

    assert {clean_text(e.text) for e in doc.entities} <= texts


def test_cypher_script_large_float_round_trips(ladybug):
    """Found by the fuzz test above: a score of 1e16 was written as ``1e+16``, which Cypher cannot parse."""
    from kg_export.cypher import serialize_cypher

    doc = Document(id="d", kind="post", source="f.json", text="Ann met Bob",
                   entities=[Entity("e0", "Ann", "PER", span=(0, 3), provenance=Provenance("f.json", model="m")),
                             Entity("e1", "Bob", "PER", span=(8, 11), provenance=Provenance("f.json", model="m"))],
                   relations=[Relation("r0", "e0", "e1", "knows", Provenance("f.json", model="m", score=1e16))])
    assert ladybug.load_script(serialize_cypher(doc)) > 0
