"""PDFs built for the tests with PyMuPDF: born-digital pages with known words, an empty PDF,
a password-protected one."""
import pytest

ROWS = [("Name:", "John Smith"), ("Date:", "1 May 1999")]


def make_pdf(path, pages=3, blank=(), rotate=None, size=(612, 792)):
    """A born-digital PDF: each page has "Name: John Smith", "Date: 1 May 1999" and "Page: k";
    pages in ``blank`` are left empty; ``rotate`` maps a page to its /Rotate."""
    pymupdf = pytest.importorskip("pymupdf")
    pdf = pymupdf.open()
    for k in range(pages):
        pg = pdf.new_page(width=size[0], height=size[1])
        if k not in blank:
            for row, (q, a) in enumerate(ROWS):
                pg.insert_text((72, 100 + 40 * row), f"{q} {a}", fontsize=12)
            pg.insert_text((72, 180), f"Page: {k}", fontsize=12)
        if rotate and k in rotate:
            pg.set_rotation(rotate[k])
    pdf.save(path)
    return path


def zero_page_pdf(path):
    """A syntactically valid PDF with no pages (PyMuPDF refuses to save one)."""
    path.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                     b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    return path


def encrypted_pdf(path, user_pw="secret"):
    pymupdf = pytest.importorskip("pymupdf")
    pdf = pymupdf.open()
    pdf.new_page().insert_text((72, 100), "Name: John Smith", fontsize=12)
    pdf.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw=user_pw)
    return path
