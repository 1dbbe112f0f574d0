"""kg_export: RDF formats, stores (Oxigraph, LadybugDB), Cypher, Neo4j CSV, CLI, bad input."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib

from graphmie.document import (Box, Document, Entity, Grounding, Page, Provenance, Region, Relation, Step)
from kg_export import serialize
from kg_export.cypher import (EDGE_STATEMENTS, NEO4J_SCHEMA, NODE_STATEMENTS, BoltWriter, LadybugStore,
                              Neo4jCsvWriter, serialize_cypher)
from kg_export.facts import REL, label_path, to_iri
from kg_export.rdf import document_iri
from kg_export.store import OxigraphStore

EVIL = ('Bob "the \\ builder"\n}) MATCH (n) DETACH DELETE n //\' DROP GRAPH <x> ; '
        'INSERT DATA { <a> <b> <c> } {x} \t\r end')
RDF_FORMATS = {"ttl": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "nq": ox.RdfFormat.N_QUADS,
               "trig": ox.RdfFormat.TRIG, "jsonld": ox.RdfFormat.JSON_LD}
RDFLIB = {"ttl": "turtle", "nt": "nt", "nq": "nquads", "trig": "trig", "jsonld": "json-ld"}
GM = "https://w3id.org/graphmie/ns#"


def make_docs() -> list[Document]:
    src = 'forms/a b "c".png'
    form = Document(
        id="f1", kind="form", source=src, pages=[Page(0, 100, 200, image=src)],
        regions=[Region("seg0", Box(1, 2, 30, 40), "line", page=0,
                        provenance=Provenance(src, 0, Box(1, 2, 30, 40), model="ocr"))],
        entities=[Entity("e0", "Name:", "question", box=Box(1.5, 2, 30, 10), page=0,
                         provenance=Provenance(src, 0, model="gold")),
                  Entity("e1", EVIL + "\ud800", "answer", box=Box(31, 2, 60, 10), page=0,
                         provenance=Provenance(src, 0, model="gold"))],
        relations=[Relation("r0", "e0", "e1", "question->answer",
                            Provenance(src, 0, Box(1, 2, 60, 10), model="graphmie.form", model_version="1",
                                       score=float("nan")))])
    post = Document(
        id="p1", kind="post", source="inline:abc", text="Obama was born in Hawaii", image="img/x y.jpg",
        caption="a man",
        entities=[Entity("h", "Obama", "PER", span=(0, 5), provenance=Provenance("inline:abc", span=(0, 5))),
                  Entity("t", "Hawaii", "LOC", span=(18, 24), provenance=Provenance("inline:abc", span=(18, 24)))],
        relations=[Relation("r", "h", "t", "/per/loc/place_of_birth",
                            Provenance("inline:abc", span=(0, 24), model="graphmie.post", model_version="0.1",
                                       score=0.93, evidence=("text", "caption", "scene graph"),
                                       attribution={"gate": 0.81, "caption": -0.02, "graph": 0.125})),
                   Relation("r2", "t", "h", "weird label <>{}\"' ./..", Provenance("inline:abc", model="m"))],
        groundings=[Grounding("h", None, box=Box(10, 10, 50, 80), image="img/x y.jpg",
                              provenance=Provenance("img/x y.jpg", box=Box(10, 10, 50, 80), model="g", score=0.5)),
                    Grounding("t", None, provenance=Provenance("img/x y.jpg", model="g", score=0.9))])
    proc = Document(
        id="w1", kind="procedure", source="/data/how.json",
        steps=[Step(0, "Cut the onion.", image="s0.jpg"), Step(1, "Fry it.")],
        regions=[Region("s0_r0", Box(0, 0, 10, 10), "image", page=0, image="s0.jpg")],
        entities=[Entity("a", "onion", "F", span=(4, 9), step=0), Entity("b", "it", "F", span=(4, 6), step=1)],
        relations=[Relation("f0", "a", "b", "Targ", Provenance("/data/how.json", page=1, model="gold"))],
        groundings=[Grounding("a", "s0_r0", provenance=Provenance("s0.jpg", page=0, model="m", score=1.0))])
    return [form, post, proc]


def quads_of(text: str, fmt: str) -> set:
    return set(ox.parse(text.encode("utf-8"), format=RDF_FORMATS[fmt]))


@pytest.mark.parametrize("doc", make_docs(), ids=lambda d: d.kind)
def test_every_rdf_format_parses_to_the_same_graph(doc):
    nq = quads_of(serialize(doc, "nq"), "nq")
    triples = {(q.subject, q.predicate, q.object) for q in nq}
    assert len(nq) > 30
    for fmt in ("trig", "jsonld"):
        assert quads_of(serialize(doc, fmt), fmt) == nq, fmt
    for fmt in ("ttl", "nt"):
        assert {(q.subject, q.predicate, q.object) for q in quads_of(serialize(doc, fmt), fmt)} == triples, fmt
    for fmt in RDF_FORMATS:  # a second, independent parser
        ds = rdflib.Dataset()
        ds.parse(data=serialize(doc, fmt), format=RDFLIB[fmt])
        assert len({(s, p, o) for s, p, o, _g in ds.quads()}) == len(triples), fmt


def test_exports_are_byte_identical_and_ids_content_derived():
    for doc in make_docs():
        copy = Document.from_dict(json.loads(json.dumps(doc.to_dict())))
        for fmt in ("ttl", "nt", "nq", "trig", "jsonld", "cypher"):
            assert serialize(doc, fmt) == serialize(doc, fmt) == serialize(copy, fmt)
    a = make_docs()[1]
    b = make_docs()[1]
    b.entities[0].id, b.relations[0].head, b.groundings[0].entity = "X", "X", "X"  # renumbered, same content
    ents = lambda d: {t for t in serialize(d, "nt").split() if "/id/entity/" in t}  # noqa: E731
    assert ents(a) == ents(b)


def test_provenance_named_graphs_and_media_fragments():
    post = make_docs()[1]
    ds = quads_of(serialize(post, "nq"), "nq")
    pred = ox.NamedNode(REL + "per/loc/place_of_birth")
    asserted = [q for q in ds if q.predicate == pred]
    assert len(asserted) == 1
    graph = asserted[0].graph_name  # the relation's own IRI names the graph holding its triple
    assert [q for q in ds if q.graph_name == graph] == asserted
    doc_g = ox.NamedNode(document_iri(post))
    about = {(q.predicate.value, q.object.value) for q in ds if q.subject == graph and q.graph_name == doc_g}
    assert (GM + "score", "0.93") in about
    assert ("http://www.w3.org/ns/prov#wasDerivedFrom", doc_g.value) in about
    assert ("http://www.w3.org/ns/prov#hadPrimarySource", "inline:abc") in about
    assert any(p == "http://www.w3.org/ns/prov#wasAttributedTo" for p, _ in about)
    frags = [q.object.value for q in ds if q.predicate.value == GM + "mediaFragment"]
    assert frags == [to_iri("img/x y.jpg") + "#xywh=10,10,40,70"]
    assert "%20" in frags[0]
    # the relation label survives literally; its predicate IRI is percent-encoded
    assert label_path("weird label <>{}\"' ./..") == "weird%20label%20%3C%3E%7B%7D%22%27%20%2E/%2E%2E"


def test_bad_values_documented_handling():
    form = make_docs()[0]
    nt = serialize(form, "nt")
    assert "NaN" not in nt and "nan" not in nt.lower().split("score")[-1][:5]  # NaN score omitted
    ds = quads_of(nt, "nt")
    texts = [q.object.value for q in ds if q.predicate.value == GM + "text"]
    assert EVIL + "\ufffd" in texts  # lone surrogate -> U+FFFD, everything else verbatim
    srcs = [q.object.value for q in ds if q.predicate.value == GM + "sourceIri"]
    assert srcs[0].startswith("file:///") and "%22c%22" in srcs[0] and " " not in srcs[0]
    assert to_iri('http://x/a b<"{}>') == "http://x/a%20b%3C%22%7B%7D%3E"
    assert to_iri("C:\\dir\\f.png").startswith("file:///")  # one-letter 'scheme' is a path
    post = make_docs()[1]
    post.relations.append(Relation("dup", "h", "t", "/per/loc/place_of_birth", post.relations[0].provenance))
    n_rel = sum(1 for q in quads_of(serialize(post, "nq"), "nq") if q.object.value == GM + "Relation")
    assert n_rel == 2  # the same assertion twice in a document is one assertion
    from graphmie.errors import GraphmieError
    from kg_export.facts import check_document

    post.groundings.append(Grounding("h", "no-such-region"))
    with pytest.raises(GraphmieError, match="unknown region"):
        check_document(post)


def test_oxigraph_and_ladybug_hold_the_same_graph(tmp_path):
    docs = make_docs()
    ox_store = OxigraphStore(tmp_path / "ox")
    lb = LadybugStore(tmp_path / "lb" / "db")
    for _ in range(2):  # loading twice changes nothing
        for d in docs:
            ox_store.add_document(d)
            lb.add_document(d)
        n_quads = len(ox_store)
        counts_ox = {c: int(next(iter(ox_store.query(f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a gm:{c} }}")))
                             ["n"].value) for c in ("Document", "Entity", "Region", "Relation", "Grounding", "Step")}
        counts_lb = {c: lb.query(f"MATCH (n:{c}) RETURN count(*)")[0][0]
                     for c in ("Document", "Entity", "Region", "Step")}
        counts_lb["Relation"] = lb.query("MATCH ()-[r:RELATED]->() RETURN count(*)")[0][0]
        counts_lb["Grounding"] = lb.query("MATCH ()-[r:GROUNDED_IN]->() RETURN count(*)")[0][0] + \
            lb.query("MATCH ()-[r:NOT_DEPICTED_IN]->() RETURN count(*)")[0][0]
        assert counts_ox == counts_lb == {"Document": 3, "Entity": 6, "Region": 3, "Relation": 4,
                                          "Grounding": 3, "Step": 2}
    assert len(ox_store) == n_quads
    q = ("SELECT ?s WHERE { ?r gm:head/gm:text 'Obama' ; gm:tail/gm:text 'Hawaii' ; "
         "gm:label '/per/loc/place_of_birth' ; gm:score ?s }")
    assert [float(r["s"].value) for r in ox_store.query(q)] == [0.93]
    assert lb.query("MATCH (a:Entity)-[r:RELATED]->(b:Entity) WHERE a.text = 'Obama' RETURN b.text, r.label, r.score") \
        == [["Hawaii", "/per/loc/place_of_birth", 0.93]]
    # the hostile text is stored verbatim and nothing was deleted or dropped
    evil = EVIL + "\ufffd"
    assert lb.query("MATCH (n:Entity) WHERE n.text = $t RETURN n.label", {"t": evil}) == [["answer"]]
    assert [r["l"].value for r in ox_store.query(
        "SELECT ?l WHERE { ?e gm:text ?t ; gm:label ?l FILTER(STRSTARTS(?t, 'Bob')) }")] == ["answer"]
    # grounded and ungrounded entities
    assert lb.query("MATCH (e:Entity)-[:GROUNDED_IN]->(r:Region) WHERE e.text='Obama' RETURN r.x1") == [[50.0]]
    assert lb.query("MATCH (e:Entity)-[:NOT_DEPICTED_IN]->(d:Document) RETURN e.text") == [["Hawaii"]]
    # re-extracted document: the store replaces the old version
    post2 = make_docs()[1]
    post2.relations = post2.relations[:1]
    ox_store.add_document(post2)
    rels = ox_store.query("SELECT (COUNT(*) AS ?n) WHERE { ?r a gm:Relation }")
    assert int(next(iter(rels))["n"].value) == 3
    ox_store.close()
    lb.close()


def test_cypher_script_only_fixed_statements_and_loads_in_ladybug(tmp_path):
    docs = make_docs()
    allowed = set(NODE_STATEMENTS.values()) | set(EDGE_STATEMENTS.values()) | set(NEO4J_SCHEMA)
    for d in docs:
        script = serialize_cypher(d, batch_size=1)
        for line in script.splitlines():
            if line.startswith("//") or line.startswith(":param rows => "):
                continue
            assert line.rstrip(";") in allowed, line  # user text never reaches statement text
    direct = LadybugStore(tmp_path / "a" / "db")
    scripted = LadybugStore(tmp_path / "b" / "db")
    for d in docs:
        direct.add_document(d)
        assert scripted.load_script(serialize_cypher(d, batch_size=2)) > 0
    q = "MATCH (e:Entity) RETURN e.id, e.text, e.label, e.x0 ORDER BY e.id"
    assert direct.query(q) == scripted.query(q)
    assert len(direct.query(q)) == 6
    q = "MATCH (a)-[r:RELATED]->(b) RETURN r.id, a.id, b.id, r.label, r.score ORDER BY r.id"
    assert direct.query(q) == scripted.query(q)
    direct.close()
    scripted.close()


class FakeSession:
    """Stands in for a neo4j session: runs each transaction on a LadybugDB store."""

    def __init__(self, driver):
        self.driver = driver

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def execute_write(self, fn):
        d = self.driver
        if d.fail_next:
            d.fail_next -= 1
            from neo4j.exceptions import ServiceUnavailable

            raise ServiceUnavailable("connection lost")

        class Tx:
            def run(self, stmt, params):
                d.log.append(stmt)
                if stmt.startswith("UNWIND"):
                    d.store._run(stmt, params["rows"])

                class R:
                    def consume(self):
                        return None
                return R()
        return fn(Tx())


class FakeDriver:
    def __init__(self, store, fail_next=0):
        self.store, self.fail_next, self.log = store, fail_next, []

    def session(self, **kw):
        return FakeSession(self)


def test_bolt_writer_batches_retries_and_is_idempotent(tmp_path):
    store = LadybugStore(tmp_path / "db")
    drv = FakeDriver(store, fail_next=2)
    for _ in range(2):
        w = BoltWriter(driver=drv, batch_size=3, backoff=0)
        for d in make_docs():
            w.add_document(d)
        w.close()
    assert drv.log[: len(NEO4J_SCHEMA)] == NEO4J_SCHEMA
    assert all(s.startswith(("UNWIND", "CREATE CONSTRAINT")) for s in drv.log)
    assert store.query("MATCH (n:Entity) RETURN count(*)") == [[6]]
    assert store.query("MATCH ()-[r:RELATED]->() RETURN count(*)") == [[4]]
    from graphmie.errors import GraphmieError

    for uri in ("bolt://127.0.0.1:1", "http://not-bolt"):  # nothing listens there / not a bolt URI
        with pytest.raises(GraphmieError, match="cannot connect to Neo4j"):
            BoltWriter(uri, "neo4j", "pw")
    drv2 = FakeDriver(store, fail_next=5)
    with pytest.raises(Exception, match="connection lost"):
        BoltWriter(driver=drv2, retries=2, backoff=0)
    store.close()


def test_neo4j_csv_bundle(tmp_path):
    w = Neo4jCsvWriter(tmp_path / "csv")
    for d in make_docs() + make_docs():  # a document given twice is written once
        w.write(d)
    w.close()
    out = tmp_path / "csv"
    with open(out / "nodes_Entity.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "id:ID" and rows[0][-1] == ":LABEL" and "x0:double" in rows[0]
    assert len(rows) == 1 + 6 and all(r[-1] == "Entity" for r in rows[1:])
    assert any(EVIL + "\ufffd" in r for r in rows)  # csv quoting keeps the text intact
    with open(out / "rels_RELATED.csv", newline="", encoding="utf-8") as fh:
        rels = list(csv.reader(fh))
    assert rels[0][:3] == [":START_ID", ":END_ID", ":TYPE"] and "score:double" in rels[0]
    ids = {r[0] for r in rows[1:]}
    assert all(r[0] in ids and r[1] in ids and r[2] == "RELATED" for r in rels[1:])
    col = {c.split(":")[0]: k for k, c in enumerate(rels[0])}
    born = next(r for r in rels[1:] if "place_of_birth" in "".join(r))      # the post relation's evidence
    assert born[col["evidence"]] == "text,caption,scene graph"
    assert born[col["attribution"]] == "gate=0.81,caption=-0.02,graph=0.125"
    script = (out / "import.sh").read_text()
    assert "neo4j-admin database import full" in script and "--nodes=nodes_Entity.csv" in script
    assert not list(out.glob("*.tmp"))


def test_cli_export_and_query(tmp_path, capsys):
    from graphmie.cli import main

    res = tmp_path / "res"
    res.mkdir()
    for d in make_docs():
        (res / f"{d.id}.json").write_text(json.dumps(d.to_dict()))
    (res / "broken.json").write_text('{"kind": "post", ')
    (res / "dangling.json").write_text(json.dumps({"id": "x", "kind": "post", "source": "s", "entities": [],
                                                   "relations": [{"id": "r", "head": "a", "tail": "b",
                                                                  "label": "l"}]}))
    (res / "report.json").write_text("{}")
    bad_span = make_docs()[2].to_dict()
    bad_span["id"], bad_span["entities"][0]["span"] = "w2", ["x", "y"]
    (res / "w2.json").write_text(json.dumps(bad_span))
    rc = main(["export", str(res), "--store", str(tmp_path / "st"), "--format", "trig",
               "--out", str(tmp_path / "kg.trig"), "--ladybug", str(tmp_path / "lb" / "db")])
    out, err = capsys.readouterr()
    assert rc == 1 and json.loads(out.strip().splitlines()[-1]) == {"ok": 3, "failed": 3, "skipped": 0,
                                                                     "skipped_files": []}
    assert "[E003]" in err and "broken.json" in err and "[E012]" in err and "unknown entity" in err
    assert "w2.json: field of the wrong type: a value cannot be exported" in err
    assert len(quads_of((tmp_path / "kg.trig").read_text(), "trig")) > 100
    rc = main(["query", "--store", str(tmp_path / "st"), "--format", "csv",
               "SELECT ?t WHERE { ?r gm:head/gm:text 'Obama' ; gm:tail/gm:text ?t }"])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.splitlines() == ["t", "Hawaii"]
    rc = main(["query", "--store", str(tmp_path / "st"), "--format", "json",
               "SELECT (COUNT(*) AS ?n) WHERE { ?e a gm:Entity }"])
    out, _ = capsys.readouterr()
    assert json.loads(out)["results"]["bindings"][0]["n"]["value"] == "6"
    rc = main(["query", "--store", str(tmp_path / "st"), "SELECT ?x WHERE { ?x a gm:Step }"])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.strip().endswith("(2 rows)")
    rc = main(["query", "--store", str(tmp_path / "st"), "DELETE WHERE { ?s ?p ?o }"])
    _, err = capsys.readouterr()
    assert rc == 2 and "[E023]" in err  # updates are not queries: the store is opened read-only
    rc = main(["query", "--store", str(tmp_path / "nope"), "ASK { ?s ?p ?o }"])
    assert rc == 2 and "[E001]" in capsys.readouterr().err


def test_streaming_writer_memory_flat(tmp_path):
    """The N-Triples writer keeps no state between documents: its buffers are flushed per document."""
    import io
    import tracemalloc

    from kg_export.rdf import write_documents

    docs = make_docs() * 200
    tracemalloc.start()
    write_documents(docs[:60], "nt", io.TextIOWrapper(io.BytesIO()))
    _, peak_small = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with open(tmp_path / "x.nt", "w") as fh:
        write_documents(iter(docs), "nt", fh)
    _, peak_big = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_big < 2 * peak_small + 2_000_000
    assert not math.isnan(peak_big)


def test_vocabulary_declares_every_term_used():
    vocab = rdflib.Graph().parse(Path(__file__).resolve().parents[2] / "kg_export" / "graphmie.ttl")
    declared = {str(s) for s in vocab.subjects()}
    used = set()
    for d in make_docs():
        for q in quads_of(serialize(d, "nq"), "nq"):
            for t in (q.predicate, q.object):
                if isinstance(t, ox.NamedNode) and t.value.startswith(GM):
                    used.add(t.value)
    assert used and used <= declared, sorted(used - declared)


def test_reload_after_interrupted_load_has_no_duplicates(tmp_path):
    docs = make_docs()
    clean = LadybugStore(tmp_path / "clean" / "db")
    clean.add_documents(docs)
    crashed = LadybugStore(tmp_path / "crashed" / "db", batch_size=2)
    crashed.add_document(docs[0])
    crashed.batcher.flush_nodes()  # nodes written, edges lost: as if the process died here
    crashed.batcher.edges.clear()
    crashed.add_documents(docs)  # the re-run
    for q in ("MATCH (n) RETURN count(*)", "MATCH ()-[r]->() RETURN count(*)"):
        assert crashed.query(q) == clean.query(q)
    clean.close()
    crashed.close()
    ox1, ox2 = OxigraphStore(tmp_path / "o1"), OxigraphStore(tmp_path / "o2")
    ox1.bulk_load(docs)
    ox2.bulk_load(docs[:2])
    ox2.bulk_load(docs)
    assert len(ox1) == len(ox2) > 200
    ox1.close()
    ox2.close()


class Echo:
    """A task that returns the documents it is given (by name), for the extract loop alone."""

    input_suffixes = (".json",)

    def __init__(self, name: str, docs: dict, copy: bool = False):
        self.name, self.docs, self.copy = name, docs, copy

    def resolve_options(self, options, source=None):
        return dict(options or {})

    def read(self, item, options):
        import copy

        return copy.deepcopy(self.docs[str(item)]) if self.copy else self.docs[str(item)]

    def predict(self, doc, options):
        from graphmie.engine.method import Result

        return Result(doc)

    def render(self, result):
        return {}


def test_extract_pipeline_writes_kg_files_and_store(tmp_path):
    from graphmie.api import Pipeline

    docs = make_docs()
    docs[0].entities[1].text = EVIL  # (the pipeline's own .json writer rejects lone surrogates)
    nlp = Pipeline(Echo("echo", {f"{d.id}.json": d for d in docs}))
    store = OxigraphStore(tmp_path / "st")
    report = nlp.extract([f"{d.id}.json" for d in docs], tmp_path / "out", formats=("ttl", "cypher", "jsonld"),
                         store=store, progress=False)
    store.close()
    assert len(report.done) == 3 and not report.failed
    for d in docs:
        ttl = (tmp_path / "out" / f"{d.id}.ttl").read_text()
        assert ttl == serialize(d, "ttl")
        assert (tmp_path / "out" / f"{d.id}.cypher").read_text().count("UNWIND $rows") >= 3
    st = OxigraphStore(tmp_path / "st", read_only=True)
    assert int(next(iter(st.query("SELECT (COUNT(*) AS ?n) WHERE { ?d a gm:Document }")))["n"].value) == 3
    st.close()


def test_real_gold_documents_load_into_both_stores(tmp_path):
    """Gold FUNSD forms, wikiHow-FG procedures and Twitter-GMNER posts, through every writer."""
    from conftest import shared

    from graphmie.data.funsd import read_funsd
    from graphmie.data.gmner import read_split, tweet_to_document
    from graphmie.data.wikihow_fg import read_article

    forms = [read_funsd(p) for p in sorted(shared("funsd", "training_data", "annotations").glob("*.json"))[:3]]
    procs = [read_article(p) for p in sorted(shared("wikihow_fg", "data").rglob("*.json"))[:2]]
    split = read_split(shared("gmner"), "dev")
    posts = [tweet_to_document(t, f"gmner:dev:{t.id}") for t in split.tweets[:30]]
    docs = forms + procs + posts
    n_ent = sum(len(d.entities) for d in docs)
    n_rel = sum(len({(r.head, r.label, r.tail) for r in d.relations}) for d in docs)
    assert n_ent > 100 and n_rel > 50
    for d in docs[:1] + procs[:1] + posts[:1]:
        for fmt in RDF_FORMATS:
            assert quads_of(serialize(d, fmt), fmt)
    # export once (N-Quads and a Cypher script), then load those files into the two stores
    from kg_export.cypher import CypherScriptWriter
    from kg_export.rdf import write_documents

    with open(tmp_path / "kg.nq", "w", encoding="utf-8") as fh:
        write_documents(docs, "nq", fh)
    with open(tmp_path / "kg.cypher", "w", encoding="utf-8") as fh:
        w = CypherScriptWriter(fh, batch_size=500)
        for d in docs:
            w.write(d)
        w.close()
    ox_store, lb = OxigraphStore(tmp_path / "ox"), LadybugStore(tmp_path / "lb" / "db")
    ox_store.store.bulk_load(path=str(tmp_path / "kg.nq"), format=ox.RdfFormat.N_QUADS)
    assert lb.load_script((tmp_path / "kg.cypher").read_text(encoding="utf-8")) > 5
    count = lambda q: int(next(iter(ox_store.query(q)))["n"].value)  # noqa: E731
    assert count("SELECT (COUNT(*) AS ?n) WHERE { ?e a gm:Entity }") == n_ent == \
        lb.query("MATCH (e:Entity) RETURN count(*)")[0][0]
    assert count("SELECT (COUNT(*) AS ?n) WHERE { ?r a gm:Relation }") == n_rel == \
        lb.query("MATCH ()-[r:RELATED]->() RETURN count(*)")[0][0]
    n_gr = count("SELECT (COUNT(*) AS ?n) WHERE { ?g a gm:Grounding }")
    assert n_gr == lb.query("MATCH ()-[r:GROUNDED_IN|NOT_DEPICTED_IN]->() RETURN count(*)")[0][0] > 0
    # a specific FUNSD link: question -> answer, from the gold annotation
    r = forms[0].relations[0]
    q, a = forms[0].entity(r.head), forms[0].entity(r.tail)
    assert lb.query("MATCH (x:Entity)-[r:RELATED]->(y:Entity) WHERE x.text = $q AND y.text = $a RETURN r.label",
                    {"q": q.text, "a": a.text})[0] == ["question->answer"]
    assert bool(ox_store.query(f"ASK {{ ?r gm:head/gm:text {json.dumps(q.text)} ; gm:tail/gm:text "
                               f"{json.dumps(a.text)} ; gm:label 'question->answer' }}"))
    ox_store.close()
    lb.close()


def test_two_tasks_over_one_input_coexist_and_a_rerun_replaces_its_own(tmp_path):
    from graphmie.api import Pipeline

    docs = {f"{d.id}.json": d for d in make_docs()}
    store = OxigraphStore(tmp_path / "st")
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?d a gm:Document }"
    for name in ("post", "entity", "post"):
        Pipeline(Echo(name, docs, copy=True)).extract(list(docs), tmp_path / name, store=store, progress=False)
    assert int(next(iter(store.query(count)))["n"].value) == 2 * len(docs)
    store.close()
