"""--task form on whole PDFs, end to end: every page predicted on its own and merged into one
document (pages in every provenance, links within pages), one picture per page, the KG export
of pages > 0, ``--page K``; bad PDFs in a batch fail alone with coded errors naming the file.
The PDFs are born-digital (a text layer): no OCR model runs; ``segment="rule"`` needs no
segmenter weights."""
import json
from pathlib import Path

import pytest

from conftest import REPO

pytest.importorskip("pymupdf")

from pdf_samples import encrypted_pdf, make_pdf, zero_page_pdf  # noqa: E402


@pytest.fixture(scope="module")
def nlp():
    import graphmie

    return graphmie.load("form", segment="rule")


def _same_page(doc):
    page = {e.id: e.page for e in doc.entities}
    return all(page[r.head] == page[r.tail] == r.provenance.page for r in doc.relations)


def test_multi_page_pdf_end_to_end(tmp_path, nlp):
    path = make_pdf(tmp_path / "three.pdf", pages=3)
    res = nlp.run(path)
    doc = res.doc
    assert [(p.index, p.unit, p.width, p.height) for p in doc.pages] == [(k, "pt", 612, 792) for k in range(3)]
    assert doc.meta["pdf"]["pages"] == [0, 1, 2] and doc.meta["labels_from"] == "model"
    text = {e.id: e.text for e in doc.entities}
    for k in range(3):
        ents = [e for e in doc.entities if e.page == k]
        assert [e.text for e in ents] == ["Name:", "John Smith", "Date:", "1 May 1999", "Page:", str(k)]
        assert all(e.provenance.page == k and e.provenance.model == "graphmie.form.re2" for e in ents)
        assert all(0 <= e.box.x0 <= e.box.x1 <= 612 and 0 <= e.box.y0 <= e.box.y1 <= 792 for e in ents)
        links = {(text[r.head], text[r.tail]) for r in doc.relations if r.provenance.page == k}
        assert {("Name:", "John Smith"), ("Date:", "1 May 1999")} <= links
    assert _same_page(doc)                                       # links only within a page
    assert all(r.provenance.page == r.page for r in doc.regions)
    ids = [e.id for e in doc.entities] + [r.id for r in doc.regions] + [r.id for r in doc.relations]
    assert len(ids) == len(set(ids))
    graphs = res.artifacts["layout_graph"]
    assert sorted(graphs) == [0, 1, 2] and all(g.n_entities == 6 for g in graphs.values())
    pngs = nlp.task.render(res)
    assert sorted(pngs) == [".page0.png", ".page1.png", ".page2.png"]
    from kg_export import serialize

    ttl = serialize(doc, "ttl")
    assert all(f"three.pdf#page={k + 1}&viewrect=" in ttl for k in range(3))
    from kg_export.facts import Node, document_facts

    nodes = [f for f in document_facts(doc) if isinstance(f, Node) and f.label in ("Entity", "Region")]
    assert {n.props["page"] for n in nodes} == {0, 1, 2}
    assert all(n.props["provPage"] == n.props["page"] and f"#page={n.props['page'] + 1}&" in n.props["mediaFragment"]
               for n in nodes)
    assert {f.props["pageIndex"] for f in document_facts(doc) if isinstance(f, Node) and f.label == "Page"} == {0, 1, 2}
    assert "CREATE" in serialize(doc, "cypher") or "MERGE" in serialize(doc, "cypher")


def test_page_option_reads_one_page(tmp_path, nlp):
    from graphmie.cli import build_parser
    from graphmie.tasks.form import FormTask

    path = make_pdf(tmp_path / "three.pdf", pages=3)
    argv = ["extract", str(path), "--task", "form", "--out", str(tmp_path / "out")]
    assert FormTask.cli_options(build_parser("form").parse_args([*argv, "--page", "1"])) == {"page": 1}
    assert FormTask.cli_options(build_parser("form").parse_args(argv)) == {}        # default: every page
    assert FormTask.options["page"] == -1
    res = nlp.run(path, page=1)
    doc = res.doc
    assert [p.index for p in doc.pages] == [1] and {e.page for e in doc.entities} == {1}
    assert all(r.provenance.page == 1 for r in doc.relations) and doc.relations
    assert res.artifacts["layout_graph"].n_entities == len(doc.entities)
    assert sorted(nlp.task.render(res)) == [".png"]
    assert len(nlp(path, page=-1).pages) == 3


def test_bad_pdfs_fail_alone_in_a_batch(tmp_path, nlp):
    from PIL import Image

    good = make_pdf(tmp_path / "good.pdf", pages=2)
    gap = make_pdf(tmp_path / "gap.pdf", pages=3, blank={1})
    locked = encrypted_pdf(tmp_path / "locked.pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    nopages = zero_page_pdf(tmp_path / "nopages.pdf")
    blank = make_pdf(tmp_path / "blank.pdf", pages=2, blank={0, 1})
    Image.new("RGB", (600, 400), "white").save(tmp_path / "white.png")
    funsd = REPO / "examples" / "forms" / "registration_form.json"
    out = tmp_path / "out"
    items = [good, locked, tmp_path / "empty.pdf", nopages, blank, gap, tmp_path / "white.png", funsd]
    report = nlp.extract(items, out, progress=False)
    codes = {Path(e["input"]).name: e["code"] for e in report.to_dict()["errors"]}
    assert codes == {"locked.pdf": "E035", "empty.pdf": "E007", "nopages.pdf": "E007", "blank.pdf": "E007",
                     "white.png": "E007"}
    for e in report.failed:
        assert Path(e["input"]).name in e["error"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["ok"] == 3 and on_disk["failed"] == 5
    names = {p.name for p in out.iterdir()}
    for stem, pngs in (("good", ["good.page0.png", "good.page1.png"]),
                       ("gap", ["gap.page0.png", "gap.page1.png", "gap.page2.png"]),
                       ("registration_form", ["registration_form.png"])):
        assert {f"{stem}.json", f"{stem}.ttl", f"{stem}.cypher", *pngs} <= names
    assert not [n for n in names if n.startswith(("locked", "empty", "nopages", "blank", "white"))]
    gap_doc = json.loads((out / "gap.json").read_text())
    assert [p["index"] for p in gap_doc["pages"]] == [0, 1, 2] and gap_doc["meta"]["blank_pages"] == [1]
    assert {e["page"] for e in gap_doc["entities"]} == {0, 2}
    assert all(e["provenance"]["page"] == e["page"] for e in gap_doc["entities"])


def test_missing_segmenter_weights_fall_back_to_the_rule(tmp_path):
    from graphmie.errors import GraphmieError
    from graphmie.tasks.form import FormTask

    class Method:
        def __init__(self, code):
            self.code = code

        @property
        def segmenter(self):
            raise GraphmieError(self.code, "form_segment", detail="x")

    path = make_pdf(tmp_path / "one.pdf", pages=1)
    doc = FormTask(Method("E001")).read(path, FormTask.resolve_options({}))
    assert doc.meta["segmentation"] == "rule" and "segmenter is not installed" in doc.meta["warnings"][0]
    assert "warnings" not in FormTask(Method("E001")).read(path, FormTask.resolve_options({"segment": "rule"})).meta
    with pytest.raises(GraphmieError) as e:                   # weights there but broken: not hidden
        FormTask(Method("E025")).read(path, FormTask.resolve_options({}))
    assert e.value.code == "E025"
