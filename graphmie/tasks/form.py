"""``--task form``: a scanned form (page image, PDF page, or FUNSD-style JSON) -> labelled entity
blocks and question→answer links, plus a PNG of the page with them drawn. The model is a
method's (RE², :mod:`graphmie.methods.re2`); words and blocks come from the annotation or from
OCR (:mod:`layout.ocr`; a PDF page's boxes are in PDF points).
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from layout.ocr import ENGINES, IMAGE_SUFFIXES

from ..data.funsd import read_funsd
from ..document import Document
from ..engine.method import Result
from ..errors import GraphmieError
from ..io import MAX_IMAGE_PIXELS, open_image
from .base import Task

COLORS = {"question": (31, 119, 180), "answer": (44, 160, 44), "header": (214, 39, 40), "other": (150, 150, 150)}


class FormTask(Task):
    name = "form"
    default_method = "re2"
    methods = ("re2",)
    default_weights = "form_re2"
    input_suffixes = (".json", *sorted(IMAGE_SUFFIXES), ".pdf")
    options = {"gold_labels": False, "ocr": "rapidocr", "page": 0}
    predict_options = ("gold_labels",)

    def read(self, item, options: dict) -> Document:
        """A FUNSD-style JSON (gold words and blocks), else a page image / PDF page through OCR."""
        path = Path(item)
        if path.suffix.lower() == ".json":
            return read_funsd(path)
        from layout.ocr import ocr_form

        return ocr_form(path, engine=options["ocr"], page=options["page"])

    def render(self, result: Result) -> dict[str, bytes]:
        return {".png": render_page(result.doc)}

    @classmethod
    def add_cli_args(cls, parser) -> None:
        parser.add_argument("--gold-labels", dest="gold_labels", action="store_true", default=None,
                            help="FUNSD JSON input: keep the gold entity labels, predict only the links")
        parser.add_argument("--ocr", dest="ocr", default=None, choices=ENGINES,
                            help="OCR engine for images and PDFs (default rapidocr)")
        parser.add_argument("--page", dest="page", type=int, default=None, help="PDF page to read (0-based)")


def _page_picture(doc: Document):
    """(the page picture, its pixels per box unit): the page image, else a white canvas with the
    block texts, at most ``MAX_IMAGE_PIXELS`` large (scaled down for boxes beyond that)."""
    from PIL import Image, ImageDraw

    page = doc.pages[0] if doc.pages else None
    if page and page.image and Path(page.image).suffix.lower() != ".pdf" and Path(page.image).exists():
        try:
            return open_image(page.image), 1.0
        except GraphmieError:
            pass
    w = page.width if page else max((e.box.x1 for e in doc.entities), default=100) + 10
    h = page.height if page else max((e.box.y1 for e in doc.entities), default=100) + 10
    base = min(1.0, math.sqrt(MAX_IMAGE_PIXELS / max(w * h, 1.0)))
    img = Image.new("RGB", (max(int(w * base), 1), max(int(h * base), 1)), "white")
    draw = ImageDraw.Draw(img)
    for e in doc.entities:
        draw.text((e.box.x0 * base, e.box.y0 * base), e.text[:60], fill=(0, 0, 0))
    return img, base


def render_page(doc: Document, max_side: int = 1600) -> bytes:
    """The page with entity boxes coloured by label and question→answer arrows, as PNG bytes."""
    from PIL import Image, ImageDraw

    img, base = _page_picture(doc)
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((int(img.size[0] * scale), int(img.size[1] * scale)))
    scale *= base
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    dr = ImageDraw.Draw(over)
    byid = {e.id: e for e in doc.entities}
    for e in doc.entities:
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
    img.save(buf, format="PNG")
    return buf.getvalue()
