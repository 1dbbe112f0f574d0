"""OCR input: a PDF page's boxes are in PDF points, and the page records its unit."""
import pytest

from graphmie.errors import GraphmieError


def _pdf(path, pages=2):
    pymupdf = pytest.importorskip("pymupdf")
    pdf = pymupdf.open()
    for k in range(pages):
        page = pdf.new_page(width=612, height=792)            # US letter, in points
        page.insert_text((72, 100), f"Name: Ann Lee {k}", fontsize=12)
        page.insert_text((72, 200), "Date: 1/2/99", fontsize=12)
    pdf.save(path)
    return path


def test_pdf_text_layer_boxes_are_in_points(tmp_path):
    from layout.ocr import PDF_DPI, load_page, ocr_form

    path = _pdf(tmp_path / "form.pdf")
    page = load_page(path, 1)
    assert page.unit == "pt" and (page.width, page.height) == (612, 792)
    assert page.image.size == (round(612 * PDF_DPI / 72), round(792 * PDF_DPI / 72))   # rendered at 150 dpi
    doc = ocr_form(path, page=1)
    assert doc.meta["pdf"] == {"page": 1, "page_count": 2, "pages": [1], "render_dpi": PDF_DPI, "units": "pt"}
    p = doc.pages[0]
    assert (p.index, p.unit, p.width, p.height) == (1, "pt", 612, 792)
    name = next(t for t in doc.tokens if t.text == "Name:")
    # the baseline of 12 pt text at y = 100 pt, 72 pt from the left edge: a box of about 12 pt height
    assert 71 <= name.box.x0 <= 73 and 85 <= name.box.y0 < 100 < name.box.y1 <= 105
    assert all(e.page == 1 and e.provenance.page == 1 for e in doc.entities)
    assert [e.text for e in doc.entities][:2] == ["Name:", "Ann Lee 1"]


def test_pdf_page_out_of_range(tmp_path):
    from layout.ocr import ocr_form

    path = _pdf(tmp_path / "form.pdf", pages=1)
    with pytest.raises(GraphmieError) as e:
        ocr_form(path, page=3)
    assert e.value.code == "E009"


def test_unknown_ocr_engine_is_coded():
    from PIL import Image

    from layout.ocr import ocr_words

    with pytest.raises(GraphmieError) as e:
        ocr_words(Image.new("RGB", (10, 10)), engine="easyocr")
    assert e.value.code == "E022"
