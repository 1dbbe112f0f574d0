"""Reading whole PDFs: every page with its index and points, ids unique across pages; bad pages
(encrypted, empty, blank, oversized, rotated) and bad pictures (blank, low contrast, sideways).
Every PDF here is born-digital (a text layer) or OCR is faked, so no OCR model runs."""
import pytest

from graphmie.errors import GraphmieError

from pdf_samples import encrypted_pdf, make_pdf, zero_page_pdf


@pytest.fixture
def no_ocr(monkeypatch):
    """Fail the test if OCR would run."""
    import layout.ocr as O

    def refuse(*a, **k):
        raise AssertionError("OCR ran")

    monkeypatch.setattr(O, "ocr_words", refuse)


def test_every_page_is_read_with_its_index_points_and_unique_ids(tmp_path, no_ocr):
    from layout.ocr import ALL_PAGES, PDF_DPI, ocr_form

    path = make_pdf(tmp_path / "three.pdf")
    for page in (ALL_PAGES, None):
        doc = ocr_form(path, page=page)
        assert [(p.index, p.unit, p.width, p.height) for p in doc.pages] == [(k, "pt", 612, 792) for k in range(3)]
        assert doc.meta["pdf"] == {"page_count": 3, "pages": [0, 1, 2], "render_dpi": PDF_DPI, "units": "pt"}
        assert [i["text"] for i in doc.meta["pages"]] == ["text layer"] * 3
        assert "blank_pages" not in doc.meta and "warnings" not in doc.meta
    ids = [e.id for e in doc.entities] + [r.id for r in doc.regions]
    assert len(ids) == len(set(ids))
    for k in range(3):
        ents = [e for e in doc.entities if e.page == k]
        assert [e.text for e in ents] == ["Name:", "John Smith", "Date:", "1 May 1999", "Page:", str(k)]
        assert all(e.id.startswith(f"p{k}e") and e.provenance.page == k for e in ents)
        assert all(doc.tokens[i].page == k for e in ents for i in e.tokens)
        assert " ".join(doc.tokens[i].text for i in ents[1].tokens) == "John Smith"
    for obj in [*doc.entities, *doc.regions, *doc.tokens]:
        assert 0 <= obj.box.x0 <= obj.box.x1 <= 612 and 0 <= obj.box.y0 <= obj.box.y1 <= 792
    for r in doc.regions:
        assert r.id.startswith(f"p{r.page}seg") and r.provenance.page == r.page
        assert all(doc.entity(c).page == r.page for c in r.children)
    name = doc.entity("p2e0")                        # 12 pt text on the baseline y = 100 pt
    assert 71 <= name.box.x0 <= 73 and 85 <= name.box.y0 < 100 < name.box.y1 <= 105
    assert name.provenance.model == "pdf.text_layer"


def test_one_page_selected_reads_that_page_only(tmp_path, no_ocr):
    from layout.ocr import ocr_form

    path = make_pdf(tmp_path / "three.pdf")
    doc = ocr_form(path, page=1)
    assert [p.index for p in doc.pages] == [1] and doc.meta["pdf"]["page"] == 1 and doc.meta["pdf"]["pages"] == [1]
    assert {e.page for e in doc.entities} == {1} and doc.entities[0].id == "e0"     # one page: plain ids
    with pytest.raises(GraphmieError) as e:
        ocr_form(path, page=3)
    assert e.value.code == "E009" and "three.pdf" in str(e.value)
    one = ocr_form(make_pdf(tmp_path / "one.pdf", pages=1), page=None)
    assert len(one.pages) == 1 and one.entities[0].id == "e0"


def test_encrypted_pdf_is_a_coded_error_naming_the_file(tmp_path):
    from layout.ocr import load_page, ocr_form

    path = encrypted_pdf(tmp_path / "locked.pdf")
    for read in (lambda: ocr_form(path, page=None), lambda: ocr_form(path, page=0), lambda: load_page(path)):
        with pytest.raises(GraphmieError) as e:
            read()
        assert e.value.code == "E035" and "locked.pdf" in str(e.value) and "password" in str(e.value)
    # an owner password alone (printing / copying restrictions) does not stop reading
    doc = ocr_form(encrypted_pdf(tmp_path / "restricted.pdf", user_pw=""), page=None)
    assert [e.text for e in doc.entities] == ["Name:", "John Smith"]


def test_empty_file_and_pdf_without_pages_are_E007(tmp_path):
    from layout.ocr import ocr_form

    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "junk.pdf").write_text("not a pdf at all")
    for name, code, what in (("empty.pdf", "E007", "empty"), ("junk.pdf", "E005", "not a readable PDF")):
        with pytest.raises(GraphmieError) as e:
            ocr_form(tmp_path / name, page=None)
        assert e.value.code == code and name in str(e.value) and what in str(e.value)
    with pytest.raises(GraphmieError) as e:
        ocr_form(zero_page_pdf(tmp_path / "nopages.pdf"), page=None)
    assert e.value.code == "E007" and "nopages.pdf" in str(e.value) and "no pages" in str(e.value)


def test_blank_page_is_kept_without_entities_and_not_ocrd(tmp_path, no_ocr):
    from layout.ocr import ocr_form

    doc = ocr_form(make_pdf(tmp_path / "gap.pdf", blank={1}), page=None)
    assert [p.index for p in doc.pages] == [0, 1, 2]
    assert {e.page for e in doc.entities} == {0, 2}
    assert doc.meta["blank_pages"] == [1] and doc.meta["pages"][1]["blank"] is True
    assert doc.meta["pages"][1]["text"] == "none" and any("page 1" in w for w in doc.meta["warnings"])
    with pytest.raises(GraphmieError) as e:                # the blank page asked for alone
        ocr_form(tmp_path / "gap.pdf", page=1)
    assert e.value.code == "E007" and "gap.pdf (page 1)" in str(e.value) and "no ink" in str(e.value)
    with pytest.raises(GraphmieError) as e:                # no page has text
        ocr_form(make_pdf(tmp_path / "blank.pdf", pages=2, blank={0, 1}), page=None)
    assert e.value.code == "E007" and "blank.pdf" in str(e.value) and "none of its 2 pages" in str(e.value)


def _scanned_pdf(path, size=(612, 792)):
    """Page 0 born-digital; page 1 a picture only (a scan: no text layer)."""
    pymupdf = pytest.importorskip("pymupdf")
    from PIL import Image, ImageDraw
    import io

    pdf = pymupdf.open()
    pdf.new_page(width=size[0], height=size[1]).insert_text((72, 100), "Name: John Smith", fontsize=12)
    img = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(img).rectangle([40, 40, 300, 80], fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    pdf.new_page(width=size[0], height=size[1]).insert_image(pymupdf.Rect(0, 0, 400, 200), stream=buf.getvalue())
    pdf.save(path)
    return path


def test_scanned_page_is_ocrd_and_its_boxes_put_in_points(tmp_path, monkeypatch):
    import layout.ocr as O
    from graphmie.document import Box

    seen = []

    def fake_ocr(image, engine="rapidocr"):
        seen.append(image.size)
        return [O.OcrWord("Date:", Box(150, 300, 250, 330), 0.9, 0), O.OcrWord("1 May 1999", Box(270, 300, 470, 330),
                                                                              0.8, 0)]

    monkeypatch.setattr(O, "ocr_words", fake_ocr)
    doc = O.ocr_form(_scanned_pdf(tmp_path / "mixed.pdf"), page=None)
    assert seen == [(round(612 * O.PDF_DPI / 72), round(792 * O.PDF_DPI / 72))]      # only the scanned page
    assert [i["text"] for i in doc.meta["pages"]] == ["text layer", "ocr"]
    date = next(e for e in doc.entities if e.text == "Date:")
    s = 72 / O.PDF_DPI
    assert date.page == 1 and date.id == "p1e0" and date.box == Box(150 * s, 300 * s, 250 * s, 330 * s)
    assert date.provenance.model == "ocr.rapidocr" and doc.entity("p0e0").provenance.model == "pdf.text_layer"


def test_page_errors_name_the_file_and_the_page(tmp_path, monkeypatch, no_ocr):
    pymupdf = pytest.importorskip("pymupdf")
    from layout.ocr import ocr_form

    path = make_pdf(tmp_path / "three.pdf")
    monkeypatch.setenv("GRAPHMIE_MAX_FORM_WORDS", "5")
    with pytest.raises(GraphmieError) as e:
        ocr_form(path, page=None)
    assert e.value.code == "E032" and "three.pdf (page 0)" in str(e.value)
    monkeypatch.delenv("GRAPHMIE_MAX_FORM_WORDS")
    monkeypatch.setenv("GRAPHMIE_MAX_FORM_PAGES", "2")
    with pytest.raises(GraphmieError) as e:
        ocr_form(path, page=None)
    assert e.value.code == "E032" and "three.pdf" in str(e.value) and "GRAPHMIE_MAX_FORM_PAGES" in str(e.value)
    assert [p.index for p in ocr_form(path, page=2).pages] == [2]               # one page is still read
    monkeypatch.delenv("GRAPHMIE_MAX_FORM_PAGES")
    big = pymupdf.open()                           # a 200 x 200 inch page: 900 Mpx at 150 dpi
    big.new_page(width=612, height=792).insert_text((72, 100), "Name: John Smith", fontsize=12)
    big.new_page(width=14_400, height=14_400)
    big.save(tmp_path / "big.pdf")
    with pytest.raises(GraphmieError) as e:        # no text layer: refused before it is rendered
        ocr_form(tmp_path / "big.pdf", page=None)
    assert e.value.code == "E006" and "big.pdf (page 1)" in str(e.value)
    big[1].insert_text((7_000, 7_000), "Name: John Smith", fontsize=12)
    big.save(tmp_path / "big_text.pdf")            # with a text layer it is not rendered: read
    doc = ocr_form(tmp_path / "big_text.pdf", page=None)
    assert doc.pages[1].width == 14_400 and {e.page for e in doc.entities} == {0, 1}


def test_rotated_pdf_pages_are_read_in_the_frame_a_viewer_shows(tmp_path, no_ocr):
    pymupdf = pytest.importorskip("pymupdf")
    from layout.ocr import ocr_form

    doc = ocr_form(make_pdf(tmp_path / "rot.pdf", pages=2, rotate={1: 90}), page=None)
    p1 = doc.pages[1]
    assert (p1.width, p1.height) == (792, 612)                     # /Rotate 90: landscape as shown
    ents = [e for e in doc.entities if e.page == 1]
    assert ents and all(0 <= e.box.x0 <= e.box.x1 <= 792 and 0 <= e.box.y0 <= e.box.y1 <= 612 for e in ents)
    assert [i["text_rotation"] for i in doc.meta["pages"]] == [0, 90]
    assert len(doc.meta["warnings"]) == 1 and "page 1" in doc.meta["warnings"][0]
    pdf = pymupdf.open()                                           # text set upwards on an upright page
    pdf.new_page().insert_text((300, 300), "Name: John Smith", fontsize=12, rotate=90)
    pdf.save(tmp_path / "up.pdf")
    assert ocr_form(tmp_path / "up.pdf", page=None).meta["pages"][0]["text_rotation"] == 270


# --- pictures: blank, low contrast, sideways ------------------------------------------------
def test_blank_image_is_E007_without_ocr(tmp_path, no_ocr):
    from PIL import Image, ImageDraw

    from layout.ocr import ocr_form

    for name, make in (("white.png", lambda: Image.new("RGB", (600, 400), "white")),
                       ("grey.png", lambda: Image.new("RGB", (600, 400), (128, 128, 128)))):
        make().save(tmp_path / name)
        with pytest.raises(GraphmieError) as e:
            ocr_form(tmp_path / name)
        assert e.value.code == "E007" and name in str(e.value) and "blank" in str(e.value)
    specks = Image.new("RGB", (600, 400), "white")                 # 3 stray dark pixels: still blank
    for xy in ((10, 10), (300, 200), (500, 50)):
        ImageDraw.Draw(specks).point(xy, fill="black")
    specks.save(tmp_path / "specks.png")
    with pytest.raises(GraphmieError, match="E007"):
        ocr_form(tmp_path / "specks.png")


def test_low_contrast_image_is_stretched_before_ocr(tmp_path, monkeypatch):
    from PIL import Image, ImageDraw

    import layout.ocr as O
    from graphmie.document import Box

    got = []

    def fake_ocr(image, engine="rapidocr"):
        got.append(O.ink_range(image))
        return [O.OcrWord("Name:", Box(40, 40, 120, 60), 0.9, 0), O.OcrWord("John", Box(130, 40, 200, 60), 0.9, 0)]

    monkeypatch.setattr(O, "ocr_words", fake_ocr)
    faint = Image.new("RGB", (600, 400), (250, 250, 250))
    ImageDraw.Draw(faint).rectangle([40, 40, 200, 60], fill=(215, 215, 215))     # ink 35 levels off the paper
    faint.save(tmp_path / "faint.png")
    doc = O.ocr_form(tmp_path / "faint.png")
    assert got == [(255, 0, 255)] and doc.meta["pages"][0]["contrast"] == "stretched"
    crisp = Image.new("RGB", (600, 400), "white")
    ImageDraw.Draw(crisp).rectangle([40, 40, 200, 60], fill="black")
    crisp.save(tmp_path / "crisp.png")
    assert "contrast" not in O.ocr_form(tmp_path / "crisp.png").meta["pages"][0]


def test_sideways_and_doubtful_scans_are_reported(tmp_path, monkeypatch):
    from PIL import Image, ImageDraw

    import layout.ocr as O
    from graphmie.document import Box

    words = []
    monkeypatch.setattr(O, "ocr_words", lambda image, engine="rapidocr": list(words))
    img = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(img).rectangle([40, 40, 60, 400], fill="black")
    img.save(tmp_path / "scan.png")
    # OCR lines of a page turned by 90 degrees: tall and thin
    words[:] = [O.OcrWord(t, Box(40 + 40 * k, 40, 60 + 40 * k, 400), 0.95, k) for k, t in enumerate("abcd")]
    doc = O.ocr_form(tmp_path / "scan.png")
    assert doc.meta["pages"][0]["text_lines"] == "vertical" and "vertically" in doc.meta["warnings"][0]
    # upright lines, but read with low confidence (what an upside-down page gives)
    words[:] = [O.OcrWord(t, Box(40, 40 + 40 * k, 400, 60 + 40 * k), 0.6, k) for k, t in enumerate("abcd")]
    doc = O.ocr_form(tmp_path / "scan.png")
    assert doc.meta["pages"][0]["text_lines"] == "horizontal" and doc.meta["pages"][0]["ocr_conf"] == 0.6
    assert "upside down" in doc.meta["warnings"][0]
    words[:] = [O.OcrWord(t, Box(40, 40 + 40 * k, 400, 60 + 40 * k), 0.95, k) for k, t in enumerate("abcd")]
    assert "warnings" not in O.ocr_form(tmp_path / "scan.png").meta


def test_line_direction():
    from graphmie.document import Box
    from layout.ocr import OcrWord, line_direction

    wide = [OcrWord("word", Box(0, 10 * k, 60, 10 * k + 8), 1.0, k) for k in range(4)]
    tall = [OcrWord("word", Box(10 * k, 0, 10 * k + 8, 60), 1.0, k) for k in range(4)]
    assert line_direction(wide) == "horizontal" and line_direction(tall) == "vertical"
    assert line_direction(wide[:2]) is None                     # too few lines to tell
    # words of one OCR line count as that line (a sideways line is split into short pieces)
    pieces = [OcrWord("a", Box(0, 20 * i, 10, 20 * i + 8), 1.0, k) for k in range(3) for i in range(5)]
    assert line_direction([w._replace(box=Box(w.box.x0 + 30 * w.line, w.box.y0, w.box.x1 + 30 * w.line, w.box.y1))
                           for w in pieces]) == "vertical"
