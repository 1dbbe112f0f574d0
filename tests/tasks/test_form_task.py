"""--task form: reading inputs, extract end to end with bad inputs (CLI and API), the PNG."""
import json
from pathlib import Path

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "forms"


def write(tmp_path, text, name):
    p = tmp_path / name
    p.write_text(text)
    return p


def _bad_inputs(tmp_path):
    from PIL import Image

    ok_json = EXAMPLE / "registration_form.json"
    ok_png = EXAMPLE / "registration_form.png"
    missing = tmp_path / "missing.png"
    notimg = write(tmp_path, "this is not a png", "notimage.png")
    broken = write(tmp_path, '{"form": [{"id": 0, "box": [1, 2', "broken.json")
    partial = write(tmp_path, '{"form": [{"id": 0, "text": "x"}]}', "partial.json")
    empty = tmp_path / "empty.png"
    Image.new("RGB", (300, 200), "white").save(empty)
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(huge)
    other = write(tmp_path, "a,b\n", "table.csv")
    return [ok_json, ok_png, missing, notimg, broken, partial, empty, huge, other]


CODES = {"missing.png": "E001", "notimage.png": "E005", "broken.json": "E003", "partial.json": "E018",
         "empty.png": "E007", "huge.png": "E006", "table.csv": "E008"}


def _check_report(out: Path):
    from PIL import Image

    report = json.loads((out / "report.json").read_text())
    assert report["ok"] == 2 and report["failed"] == 7
    codes = {Path(e["input"]).name: e["code"] for e in report["errors"]}
    assert codes == CODES
    for e in report["errors"]:
        assert Path(e["input"]).name in e["error"]
    names = sorted(p.name for p in out.iterdir())
    for suffix in (".json", ".ttl", ".cypher", ".png"):
        assert "registration_form" + suffix in names
    assert not [n for n in names if n.startswith(("missing", "notimage", "broken", "partial", "empty", "huge",
                                                   "table", "."))]
    res = json.loads((out / "registration_form.json").read_text())
    assert res["relations"] and all(r["label"] == "question->answer" for r in res["relations"])
    assert Image.open(out / "registration_form.png").size[0] > 100


def test_cli_extract_end_to_end_with_bad_inputs(tmp_path):
    from graphmie.cli import main

    out = tmp_path / "out"
    rc = main(["extract", *map(str, _bad_inputs(tmp_path)), "--task", "form", "--out", str(out), "--quiet"])
    assert rc == 1
    _check_report(out)


def test_api_extract_end_to_end_with_bad_inputs(tmp_path):
    import graphmie

    out = tmp_path / "out"
    report = graphmie.load("form").extract(_bad_inputs(tmp_path), out, progress=False)
    assert len(report.failed) == 7
    _check_report(out)


def test_options_reach_reading_and_prediction(tmp_path):
    import graphmie
    from graphmie.errors import GraphmieError

    nlp = graphmie.load("form", gold_labels=True)
    doc = nlp(EXAMPLE / "registration_form.json")
    assert doc.meta["labels_from"] == "gold" and doc.meta["task"] == "form"
    assert graphmie.load("form")(EXAMPLE / "registration_form.json").meta["labels_from"] == "model"
    res = nlp.run(EXAMPLE / "registration_form.json", gold_labels=False)
    assert res.doc.meta["labels_from"] == "model" and res.artifacts["layout_graph"].num_nodes > len(res.doc.entities)
    with pytest.raises(GraphmieError) as e:
        graphmie.load("form", ocr_engine="tesseract")
    assert e.value.code == "E020"
    with pytest.raises(GraphmieError) as e:
        graphmie.load("form", page="first")
    assert e.value.code == "E021"


def test_pdf_input_reads_its_page_in_points(tmp_path):
    pymupdf = pytest.importorskip("pymupdf")
    import graphmie

    pdf = pymupdf.open()
    for k in range(2):
        pdf.new_page(width=612, height=792).insert_text((72, 100 + 50 * k), "Name: Ann Lee", fontsize=12)
    pdf.save(tmp_path / "f.pdf")
    res = graphmie.load("form", page=1).run(tmp_path / "f.pdf")
    doc = res.doc
    assert doc.pages[0].unit == "pt" and doc.pages[0].index == 1 and doc.meta["pdf"]["units"] == "pt"
    assert all(e.box.y1 <= 792 and e.page == 1 for e in doc.entities)
    assert all(r.page == 1 for r in doc.regions)
    from kg_export import serialize

    assert "#page=2&viewrect=" in serialize(doc, "ttl")


def test_render_caps_the_blank_canvas():
    from PIL import Image
    import io

    from graphmie.document import Box, Document, Entity, Page
    from graphmie.tasks.form import render_page

    far = Entity(id="e0", text="far away", label="question", box=Box(90_000, 90_000, 90_100, 90_020), page=0)
    doc = Document(id="x", kind="form", source="x.json", entities=[far],
                   pages=[Page(index=0, width=100_000, height=100_000)])
    img = Image.open(io.BytesIO(render_page(doc)))
    assert max(img.size) <= 1600
    near = Entity(id="e1", text="near", label="answer", box=Box(10, 10, 60, 30), page=0)
    plain = Document(id="y", kind="form", source="y.json", entities=[near])
    assert Image.open(io.BytesIO(render_page(plain))).size == (70, 40)


def test_tesseract_ocr_path_links_the_example_form(tmp_path):
    import shutil

    pytest.importorskip("pytesseract", reason="pytesseract not installed (pip install 'graphmie[tesseract]')")
    if shutil.which("tesseract") is None:
        pytest.skip("the tesseract binary is not installed (apt-get install tesseract-ocr)")
    from graphmie.cli import main

    out = tmp_path / "out"
    assert main(["extract", str(EXAMPLE / "registration_form.png"), "--task", "form", "--ocr", "tesseract",
                 "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "registration_form.json").read_text())
    text = {e["id"]: e["text"] for e in doc["entities"]}
    links = {(text[r["head"]], text[r["tail"]]) for r in doc["relations"]}
    assert ("Full name:", "Maria Jensen") in links and ("Date of birth:", "14 March 1988") in links
    assert len(links) >= 8
