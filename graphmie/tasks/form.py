"""``--task form``: a form (page image, PDF, or FUNSD-style JSON) -> labelled entity blocks and
question→answer links, plus a PNG of each page with them drawn. The model is a method's (RE²,
:mod:`graphmie.methods.re2`); words and blocks come from the annotation or from OCR
(:mod:`layout.ocr`). A PDF is one Document with every page by default (``page`` = -1; ``--page
K`` reads page K only); its boxes are in PDF points, and its pages are predicted one by one.
A document of one page gets ``<stem>.png``; one of several pages ``<stem>.page<K>.png`` per
page (K = the 0-based page index). See ``docs/form-documents.md``.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from layout.ocr import ALL_PAGES, ENGINES, IMAGE_SUFFIXES, PDF_DPI

from ..data.funsd import read_funsd
from ..document import Document
from ..engine.method import Result
from ..errors import GraphmieError
from ..io import MAX_IMAGE_PIXELS, open_image
from .base import Task

SEGMENTATIONS = ("learned", "rule")
COLORS = {"question": (31, 119, 180), "answer": (44, 160, 44), "header": (214, 39, 40), "other": (150, 150, 150)}


class FormTask(Task):
    name = "form"
    default_method = "re2"
    methods = ("re2",)
    default_weights = "form_re2"
    input_suffixes = (".json", *sorted(IMAGE_SUFFIXES), ".pdf")
    options = {"gold_labels": False, "ocr": "rapidocr", "page": ALL_PAGES, "segment": "learned"}
    predict_options = ("gold_labels",)

    def read(self, item, options: dict) -> Document:
        """A FUNSD-style JSON (gold words and blocks), else a page image / a PDF (every page, or
        page ``options["page"]`` when it is >= 0) through its text layer or OCR."""
        path = Path(item)
        if path.suffix.lower() == ".json":
            return read_funsd(path)
        from layout.ocr import ocr_form

        if options["segment"] not in SEGMENTATIONS:
            raise GraphmieError("E022", path, name="segment", value=options["segment"], choices=", ".join(SEGMENTATIONS))
        segmenter, note = self._segmenter(options["segment"])
        page = ALL_PAGES if options["page"] is None else options["page"]
        doc = ocr_form(path, engine=options["ocr"], page=page, segmenter=segmenter)
        if note:
            doc.meta["warnings"] = [note, *doc.meta.get("warnings", [])]
        return doc

    def _segmenter(self, segment: str):
        """(the segmenter for ``segment``, a note): the method's learned one, or None for the row
        rule. When the learned segmenter's weights are not installed (``E001``) the rule is used
        and the note says so (it goes into ``doc.meta["warnings"]``); other weight errors raise."""
        if segment != "learned":
            return None, None
        try:
            return self.method.segmenter, None
        except GraphmieError as e:
            if e.code != "E001":
                raise
            return None, f"the learned segmenter is not installed ({e}); words grouped into blocks by the row rule"

    def render(self, result: Result) -> dict[str, bytes]:
        """``.png`` for a one-page document; ``.page<K>.png`` for each page of a longer one."""
        doc = result.doc
        if len(doc.pages) <= 1:
            return {".png": render_page(doc)}
        return {f".page{p.index}.png": render_page(doc, page=p.index) for p in doc.pages}

    @classmethod
    def add_cli_args(cls, parser) -> None:
        parser.add_argument("--gold-labels", dest="gold_labels", action="store_true", default=None,
                            help="FUNSD JSON input: keep the gold entity labels, predict only the links")
        parser.add_argument("--ocr", dest="ocr", default=None, choices=ENGINES,
                            help="OCR engine for images and PDFs (default rapidocr)")
        parser.add_argument("--page", dest="page", type=int, default=None, metavar="K",
                            help="PDF input: read only page K (0-based); default every page (-1)")
        parser.add_argument("--segment", dest="segment", default=None, choices=SEGMENTATIONS,
                            help="OCR words -> entity blocks: the learned segmenter (default) or the row rule")


def _page_entities(doc: Document, page: int | None):
    return doc.entities if page is None else [e for e in doc.entities if (e.page or 0) == page]


def _pdf_picture(page, max_side: int):
    """A PDF page rendered so its longest side is at most ``max_side`` px, with its pixels per
    point; None when it cannot be (no PyMuPDF, file gone or changed)."""
    try:
        import pymupdf
        from PIL import Image

        with pymupdf.open(page.image, filetype="pdf") as pdf:
            if pdf.needs_pass or not 0 <= page.index < pdf.page_count:
                return None
            pg = pdf[page.index]
            zoom = min(PDF_DPI / 72, max_side / max(pg.rect.width, pg.rect.height, 1.0))
            pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
            return Image.frombytes("RGB", (pix.width, pix.height), pix.samples), zoom
    except Exception:  # noqa: BLE001 - the picture is a courtesy: fall back to the blank canvas
        return None


def _page_picture(doc: Document, page: int | None = None, max_side: int = 1600):
    """(the page picture, its pixels per box unit): the page image (a PDF page rendered), else a
    white canvas with the block texts, at most ``MAX_IMAGE_PIXELS`` large (scaled down for boxes
    beyond that). ``page``: the index of the page to draw (default the first)."""
    from PIL import Image, ImageDraw

    pg = next((p for p in doc.pages if p.index == page), None) if page is not None else \
        (doc.pages[0] if doc.pages else None)
    if pg and pg.image and Path(pg.image).exists():
        if Path(pg.image).suffix.lower() == ".pdf":
            got = _pdf_picture(pg, max_side)
            if got is not None:
                return got
        else:
            try:
                return open_image(pg.image), 1.0
            except GraphmieError:
                pass
    ents = _page_entities(doc, page)
    w = pg.width if pg else max((e.box.x1 for e in ents), default=100) + 10
    h = pg.height if pg else max((e.box.y1 for e in ents), default=100) + 10
    base = min(1.0, math.sqrt(MAX_IMAGE_PIXELS / max(w * h, 1.0)))
    img = Image.new("RGB", (max(int(w * base), 1), max(int(h * base), 1)), "white")
    draw = ImageDraw.Draw(img)
    for e in ents:
        draw.text((e.box.x0 * base, e.box.y0 * base), e.text[:60], fill=(0, 0, 0))
    return img, base


def render_page(doc: Document, max_side: int = 1600, page: int | None = None) -> bytes:
    """The page with entity boxes coloured by label and question→answer arrows, as PNG bytes;
    ``page``: the index of the page to draw, with its entities and links (default the first
    page, with every entity)."""
    from PIL import Image, ImageDraw

    img, base = _page_picture(doc, page, max_side)
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((int(img.size[0] * scale), int(img.size[1] * scale)))
    scale *= base
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    dr = ImageDraw.Draw(over)
    ents = _page_entities(doc, page)
    byid = {e.id: e for e in ents}
    for e in ents:
        c = COLORS.get(e.label, (120, 120, 120))
        dr.rectangle([v * scale for v in e.box.to_list()], outline=c + (255,), fill=c + (40,), width=2)
    for r in doc.relations:
        q, a = byid.get(r.head), byid.get(r.tail)
        if q is None or a is None:
            continue
        (x0, y0), (x1, y1) = [(v * scale) for v in q.box.center], [(v * scale) for v in a.box.center]
        dr.line([(x0, y0), (x1, y1)], fill=(255, 127, 14, 255), width=2)
        ang = math.atan2(y1 - y0, x1 - x0)
        for s in (+0.45, -0.45):
            dr.line([(x1, y1), (x1 - 9 * math.cos(ang + s), y1 - 9 * math.sin(ang + s))], fill=(255, 127, 14, 255),
                    width=2)
    img = Image.alpha_composite(img.convert("RGBA"), over).convert("RGB")
    buf = io.BytesIO()
    # a 256-colour palette (a grey page and a few box colours) at zlib level 1: on FUNSD pages a
    # third of the bytes and of the encoding time of the full-colour PNG (59 vs 175 KB, 20 vs 57 ms)
    img.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
