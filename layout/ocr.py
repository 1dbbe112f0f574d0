"""OCR of a page image (or a PDF page) into words and lines with boxes, offline.

Engines: ``rapidocr`` (default; ONNX models shipped inside the pip package) or
``tesseract`` (needs the ``pytesseract`` package and the ``tesseract`` binary). A PDF
page is rendered with PyMuPDF at ``PDF_DPI`` first (its embedded text layer is used instead
of OCR when it has one).

Units: boxes of an image are in its pixels; boxes of a PDF page are in **PDF points** (72 per
inch, origin top-left), whether they come from the text layer or from OCR of the rendered page
(divided by ``PDF_DPI / 72``). The page's :class:`~graphmie.document.Page` then has ``unit =
"pt"``, its width and height in points and ``index`` = the PDF page, and ``doc.meta["pdf"] =
{"page": k, "render_dpi": PDF_DPI, "units": "pt"}``.

:func:`ocr_form` turns the words into a form :class:`~graphmie.document.Document`: words
-> row segments (split at wide gaps and after a colon; optionally stacked into multi-line
blocks, see :mod:`layout.regions`); each block becomes an entity whose label is filled in
later by the model. A page is checked against :mod:`graphmie.limits` (words, blocks, box
coordinates: ``E032``) before the blocks are built; a PDF page whose rendering would exceed the
image size limit is refused (``E006``) before it is rendered.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from graphmie import limits
from graphmie.document import Box, Document, Entity, Page, Provenance, Region, Token
from graphmie.errors import GraphmieError
from graphmie.io import MAX_IMAGE_PIXELS, open_image

from .geometry import median_height
from .regions import merge_segments, segment_words

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
PDF_DPI = 150
ENGINES = ("rapidocr", "tesseract")


@lru_cache(maxsize=1)
def rapidocr_engine():
    """The process-wide RapidOCR engine (its models load once)."""
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise GraphmieError("E015", None, detail="rapidocr (pip install rapidocr onnxruntime)") from None
    import logging

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    try:
        engine = RapidOCR(params={"Global.log_level": "error"})
    except Exception:  # noqa: BLE001 - older rapidocr without that parameter
        engine = RapidOCR()
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return engine


def _quad_box(q) -> Box:
    xs, ys = [float(p[0]) for p in q], [float(p[1]) for p in q]
    return Box(min(xs), min(ys), max(xs), max(ys))


def ocr_words(image, engine: str = "rapidocr") -> list[tuple[str, Box, float]]:
    """Words ``(text, box, confidence)`` of a PIL image."""
    import numpy as np

    if engine == "tesseract":
        try:
            import pytesseract
        except ImportError:
            raise GraphmieError("E015", None, detail="pytesseract (pip install 'graphmie[tesseract]') "
                                "and the tesseract binary") from None
        d = pytesseract.image_to_data(image, output_type=pytesseract.Output.DICT)
        out = []
        for t, x, y, w, h, c in zip(d["text"], d["left"], d["top"], d["width"], d["height"], d["conf"]):
            if t.strip():
                out.append((t.strip(), Box.from_xywh(x, y, w, h), max(float(c), 0.0) / 100))
        return out
    if engine != "rapidocr":
        raise GraphmieError("E022", None, name="OCR engine", value=engine, choices=", ".join(ENGINES))
    res = rapidocr_engine()(np.asarray(image.convert("RGB"))[:, :, ::-1], return_word_box=True)
    out = []
    if res.boxes is None or res.txts is None:
        return out
    words = res.word_results or ()
    for k, (line_box, line_text, line_score) in enumerate(zip(res.boxes, res.txts, res.scores)):
        ws = words[k] if k < len(words) else ()
        if ws:
            for text, score, quad in ws:
                if str(text).strip():
                    out.append((str(text).strip(), _quad_box(quad), float(score)))
        elif str(line_text).strip():
            out.append((str(line_text).strip(), _quad_box(line_box), float(line_score)))
    return out


class PageImage(NamedTuple):
    """A page to read: its picture, the words of its text layer (``[]`` for an image), and its
    size and unit (``px`` for an image; ``pt`` for a PDF page, rendered at ``dpi``)."""

    image: object                        # PIL RGB image
    words: list
    width: float
    height: float
    unit: str = "px"
    dpi: float = 72.0


def load_page(path: str | Path, page: int = 0) -> PageImage:
    """An image as it is; a PDF page rendered at ``PDF_DPI``, with its text layer's words in points."""
    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    if path.suffix.lower() == ".pdf":
        try:
            import pymupdf
        except ImportError:
            raise GraphmieError("E015", path, detail="pymupdf") from None
        try:
            pdf = pymupdf.open(path)
        except Exception as e:  # noqa: BLE001
            raise GraphmieError("E005", path, detail=f"not a readable PDF ({e})") from None
        if not 0 <= page < pdf.page_count:
            raise GraphmieError("E009", path, detail=f"page {page} but the PDF has {pdf.page_count}")
        pg = pdf[page]
        zoom = PDF_DPI / 72
        w, h = int(pg.rect.width * zoom), int(pg.rect.height * zoom)
        if w * h > MAX_IMAGE_PIXELS:          # refused before rendering it
            raise GraphmieError("E006", path, detail=f"page {page} renders to {w}x{h} px at {PDF_DPI} dpi, "
                                f"over {MAX_IMAGE_PIXELS} px")
        pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom))
        from PIL import Image

        img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        words = [(w[4], Box(w[0], w[1], w[2], w[3]), 1.0) for w in pg.get_text("words") if str(w[4]).strip()]
        return PageImage(img, words, float(pg.rect.width), float(pg.rect.height), "pt", PDF_DPI)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise GraphmieError("E008", path, detail=f"'{path.suffix}' (expected a page image, a PDF, "
                            "or a FUNSD JSON)")
    img = open_image(path)
    return PageImage(img, [], float(img.size[0]), float(img.size[1]))


def words_to_form(words: list[tuple[str, Box, float]], source: str, width: float, height: float,
                  image: str | None = None, engine: str = "rapidocr", stack_lines: bool = False,
                  page: int = 0, unit: str = "px") -> Document:
    """Group OCR words into blocks and build a form Document (entity labels left to the model).

    Blocks are the row segments; ``stack_lines`` also stacks left-aligned segments of
    consecutive rows into multi-line blocks. It is off by default: on 40 FUNSD training forms
    (gold words regrouped, matched to gold blocks at IoU ≥ 0.5) segments alone reach block
    F1 0.776, stacking 0.700 (it joins field labels to the values under them). ``page`` is the
    page's index (a PDF page), ``unit`` its box unit (``px`` or ``pt``)."""
    if not words:
        raise GraphmieError("E007", source, detail="no text found on the page")
    limits.check("form_words", len(words), source, "the page's words")
    limits.check("box_coord", max(max(abs(b.x0), abs(b.y0), abs(b.x1), abs(b.y1)) for _, b, _ in words), source,
                 "a word box coordinate")
    tokens = [Token(text=t, box=b, page=page) for t, b, _ in words]
    text_h = median_height([b for _, b, _ in words])
    segs = segment_words([(t, b) for t, b, _ in words], text_h)
    seg_boxes = []
    for s in segs:
        b = words[s[0]][1]
        for i in s[1:]:
            b = b.union(words[i][1])
        seg_boxes.append(b)
    if stack_lines:
        blocks = merge_segments(seg_boxes, text_h, texts=[" ".join(words[i][0] for i in sg) for sg in segs])
    else:
        blocks = [[k] for k in range(len(segs))]
    limits.check("form_entities", len(blocks), source, "the page's text blocks")
    entities, regions = [], []
    model = f"ocr.{engine}"
    for k, s in enumerate(segs):
        regions.append(Region(id=f"seg{k}", box=seg_boxes[k], kind="line", page=page, image=image,
                              provenance=Provenance(source=source, page=page, box=seg_boxes[k], model=model)))
    for k, chain in enumerate(blocks):
        idx = [i for c in chain for i in segs[c]]
        box = seg_boxes[chain[0]]
        for c in chain[1:]:
            box = box.union(seg_boxes[c])
        text = " ".join(tokens[i].text for i in idx)
        conf = sum(words[i][2] for i in idx) / len(idx)
        entities.append(Entity(id=f"e{k}", text=text, label="other", tokens=idx, box=box, page=page,
                               provenance=Provenance(source=source, page=page, box=box, model=model, score=conf)))
        for c in chain:
            regions[c].children = [f"e{k}"]
    return Document(id=Path(source).stem, kind="form", source=source, text="\n".join(e.text for e in entities),
                    pages=[Page(index=page, width=float(width), height=float(height), image=image, unit=unit)],
                    tokens=tokens, entities=entities, regions=regions,
                    meta={"ocr_engine": engine, "gold": False})


def ocr_form(path: str | Path, engine: str = "rapidocr", page: int = 0) -> Document:
    """Read a page image / PDF page into a form Document through OCR (a PDF's text layer when it
    has one); a PDF page's boxes are in points (see the module docstring)."""
    pg = load_page(path, page)
    words = pg.words
    if not words:
        words = ocr_words(pg.image, engine)
        if pg.unit == "pt":                   # render pixels -> points
            s = 72 / pg.dpi
            words = [(t, Box(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s), c) for t, b, c in words]
    if pg.unit != "pt":
        page = 0
    doc = words_to_form(words, str(path), pg.width, pg.height, image=str(path), engine=engine, page=page,
                        unit=pg.unit)
    if pg.unit == "pt":
        doc.meta["pdf"] = {"page": page, "render_dpi": pg.dpi, "units": "pt"}
    return doc
