"""OCR of a page image (or a PDF's pages) into words and lines with boxes, offline.

Engines: ``rapidocr`` (default; ONNX models shipped inside the pip package) or
``tesseract`` (needs the ``pytesseract`` package and the ``tesseract`` binary). A PDF page's
embedded text layer is used when it has one (born-digital); a page without one is rendered
with PyMuPDF at ``PDF_DPI`` and OCR'd (scanned), page by page.

Units: boxes of an image are in its pixels; boxes of a PDF page are in **PDF points** (72 per
inch, origin top-left of the page as a viewer shows it, i.e. with its ``/Rotate`` applied),
whether they come from the text layer or from OCR of the rendered page (divided by ``PDF_DPI /
72``). Each page is a :class:`~graphmie.document.Page` with ``unit = "pt"``, its width and
height in points and ``index`` = the PDF page (0-based), and ``doc.meta["pdf"] = {"page_count":
N, "pages": [read pages], "render_dpi": PDF_DPI, "units": "pt"}`` (plus ``"page": k`` when one
page was asked for).

:func:`ocr_form` turns the words into a form :class:`~graphmie.document.Document`: words
-> row segments (split at wide gaps and after a colon; optionally stacked into multi-line
blocks, see :mod:`layout.regions`), or the blocks of a given segmenter; each block becomes an
entity whose label is filled in later by the model. A PDF is read whole by default (one
Document, one Page per PDF page, ids ``p{page}e{k}`` when it has several pages) or one page of
it. A page is checked against :mod:`graphmie.limits` (words, blocks, box coordinates:
``E032``) before the blocks are built; a PDF page whose rendering would exceed the image size
limit is refused (``E006``) before it is rendered. Bad input: an empty file or a PDF without
pages ``E007``, a password-protected PDF ``E035``, a blank image ``E007`` (no OCR is run on a
picture without ink), a blank PDF page is kept without entities (``meta["blank_pages"]``; a PDF
with no text on any page is ``E007``); a low-contrast picture is contrast-stretched before OCR;
text that runs rotated is read as it is and reported in ``meta["pages"]`` / ``meta["warnings"]``.
Errors on a PDF page name the file and the page (``form.pdf (page 2)``). See
``docs/form-documents.md``.
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
from .regions import _union, merge_segments, segment_words

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
PDF_DPI = 150
ENGINES = ("rapidocr", "tesseract")


class OcrWord(NamedTuple):
    """One recognised word: its text, box, recognition confidence and the index of the OCR text
    line it came from (``-1`` when the source has no lines, e.g. a PDF text layer)."""

    text: str
    box: Box
    conf: float
    line: int = -1


# Chosen by measurement on 6 FUNSD training pages (bench/bench_ocr.py has the full table):
# without the 180-degree line classifier OCR is as fast (within run-to-run noise) and finds
# more of the gold words (word recall 0.776 vs 0.750); recognition is ~75 % of the time.
RAPIDOCR_PARAMS = {"Global.use_cls": False, "Global.log_level": "error"}

# The inference backend of RapidOCR's detection and recognition models: onnxruntime, or OpenVINO when
# GRAPHMIE_OCR_BACKEND=openvino (the `openvino` extra). The same ONNX models run on both and read the same words
# on the 6 pages measured; OpenVINO was 1.27x / 1.18x faster (default threads / one thread) in one run and
# 1.05x / 0.96x in a longer one (docs/form.md, "The OpenVINO backend"), so it is not the default.
OCR_BACKEND_ENV = "GRAPHMIE_OCR_BACKEND"
OCR_BACKENDS = ("onnxruntime", "openvino")


def rapidocr_backend() -> str:
    """The backend :func:`rapidocr_engine` uses: ``"onnxruntime"`` unless :data:`OCR_BACKEND_ENV` says ``"openvino"``."""
    import importlib.util
    import os

    want = os.environ.get(OCR_BACKEND_ENV, "").strip().lower() or "onnxruntime"
    if want not in OCR_BACKENDS:
        raise GraphmieError("E021", None, key=OCR_BACKEND_ENV, section="the environment",
                            expected="one of " + ", ".join(OCR_BACKENDS), value=want)
    if want == "openvino" and importlib.util.find_spec("openvino") is None:
        raise GraphmieError("E015", None, detail="openvino (pip install 'graphmie[openvino]'), asked for by "
                                                 f"{OCR_BACKEND_ENV}=openvino")
    return want


def openvino_params() -> dict:
    """RapidOCR parameters that run its installed detection and recognition models on OpenVINO."""
    import rapidocr
    from rapidocr import EngineType

    models = Path(rapidocr.__file__).parent / "models"
    det, rec = sorted(models.glob("*det*.onnx")), sorted(models.glob("*rec*.onnx"))
    if len(det) != 1 or len(rec) != 1:
        raise GraphmieError("E015", None, detail=f"one detection and one recognition model in {models} "
                                                 f"(found {len(det)} and {len(rec)}) for the OpenVINO backend")
    return {"Det.engine_type": EngineType.OPENVINO, "Rec.engine_type": EngineType.OPENVINO,
            "Det.model_path": str(det[0]), "Rec.model_path": str(rec[0])}


@lru_cache(maxsize=2)
def _rapidocr_engine(backend: str):
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise GraphmieError("E015", None, detail="rapidocr (pip install rapidocr onnxruntime)") from None
    import logging

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    try:
        import cv2

        cv2.setNumThreads(1)              # its crop warps otherwise contend with the inference threads
    except ImportError:
        pass
    if backend == "openvino":
        engine = RapidOCR(params={**RAPIDOCR_PARAMS, **openvino_params()})
    else:
        try:
            engine = RapidOCR(params=dict(RAPIDOCR_PARAMS))
        except Exception:  # noqa: BLE001 - older rapidocr without these parameters
            engine = RapidOCR()
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return engine


def rapidocr_engine():
    """The process-wide RapidOCR engine (its models load once per backend), with :data:`RAPIDOCR_PARAMS`
    on :func:`rapidocr_backend`'s backend."""
    return _rapidocr_engine(rapidocr_backend())


def _quad_box(q) -> Box:
    xs, ys = [float(p[0]) for p in q], [float(p[1]) for p in q]
    return Box(min(xs), min(ys), max(xs), max(ys))


def ocr_words(image, engine: str = "rapidocr") -> list[OcrWord]:
    """The words of a PIL image, each with the index of its OCR text line."""
    import numpy as np

    if engine == "tesseract":
        try:
            import pytesseract
        except ImportError:
            raise GraphmieError("E015", None, detail="pytesseract (pip install 'graphmie[tesseract]') "
                                "and the tesseract binary") from None
        d = pytesseract.image_to_data(image, output_type=pytesseract.Output.DICT)
        out, lines = [], {}
        keys = zip(d["block_num"], d["par_num"], d["line_num"])
        for t, x, y, w, h, c, key in zip(d["text"], d["left"], d["top"], d["width"], d["height"], d["conf"], keys):
            if t.strip():
                out.append(OcrWord(t.strip(), Box.from_xywh(x, y, w, h), max(float(c), 0.0) / 100,
                                   lines.setdefault(key, len(lines))))
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
                    out.append(OcrWord(str(text).strip(), _quad_box(quad), float(score), k))
        elif str(line_text).strip():
            out.append(OcrWord(str(line_text).strip(), _quad_box(line_box), float(line_score), k))
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


def page_source(path, page: int) -> str:
    """How an error names one page of a PDF: ``form.pdf (page 2)`` (0-based, as ``--page``)."""
    return f"{path} (page {page})"


def _on_page(e: GraphmieError, path, page: int) -> GraphmieError:
    """``e`` (raised while reading ``page`` of ``path``) naming the file and the page."""
    return GraphmieError(e.code, page_source(path, page), **e.fields)


def open_pdf(path: str | Path):
    """A PDF opened with PyMuPDF, checked before any page is read: not a readable PDF ``E005``;
    an empty file or a PDF without pages ``E007``; one that needs a password to open ``E035``
    (a PDF with only an owner password, i.e. printing/copying restrictions, opens as usual)."""
    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    try:
        import pymupdf
    except ImportError:
        raise GraphmieError("E015", path, detail="pymupdf") from None
    try:
        empty = path.stat().st_size == 0
    except OSError as e:
        raise GraphmieError("E002", path, detail=e.strerror or str(e)) from None
    if empty:
        raise GraphmieError("E007", path, detail="the file is empty (0 bytes)")
    try:
        pdf = pymupdf.open(path, filetype="pdf")
    except Exception as e:  # noqa: BLE001 - any decode failure is reported the same way
        raise GraphmieError("E005", path, detail=f"not a readable PDF ({e})") from None
    if pdf.needs_pass:
        pdf.close()
        raise GraphmieError("E035", path, detail="the PDF is encrypted and needs a password to open (graphmie "
                            "takes none; decrypt it first, e.g. qpdf --password=PW --decrypt in.pdf out.pdf)")
    if pdf.page_count == 0:
        pdf.close()
        raise GraphmieError("E007", path, detail="the PDF has no pages")
    return pdf


def pdf_text_words(pg) -> list[OcrWord]:
    """The words of a PDF page's text layer, in points in the frame a viewer shows (the page's
    ``/Rotate`` applied), clipped to the page; words wholly off the page are dropped."""
    import pymupdf

    m = pg.rotation_matrix if pg.rotation else None
    width, height = float(pg.rect.width), float(pg.rect.height)
    lines: dict = {}
    out = []
    for w in pg.get_text("words"):
        if not str(w[4]).strip():
            continue
        r = pymupdf.Rect(w[:4]) * m if m is not None else pymupdf.Rect(w[:4])
        b = Box(min(r.x0, r.x1), min(r.y0, r.y1), max(r.x0, r.x1), max(r.y0, r.y1))
        if b.x0 >= width or b.y0 >= height or b.x1 <= 0 or b.y1 <= 0:
            continue                          # off the visible page
        out.append(OcrWord(str(w[4]).strip(), b.clip(width, height), 1.0, lines.setdefault((w[5], w[6]), len(lines))))
    return out


def pdf_text_rotation(pg) -> int | None:
    """How most of a page's text layer runs as a viewer shows the page: the clockwise rotation
    0, 90, 180 or 270 (degrees) of its lines, weighted by their characters; None without text."""
    import math

    import pymupdf

    m = pg.rotation_matrix
    votes: dict[int, int] = {}
    for block in pg.get_text("dict", flags=pymupdf.TEXT_PRESERVE_WHITESPACE)["blocks"]:
        for line in block.get("lines", ()):
            dx, dy = line["dir"]
            x, y = dx * m.a + dy * m.c, dx * m.b + dy * m.d
            ang = round(math.degrees(math.atan2(y, x)) / 90) % 4 * 90
            votes[ang] = votes.get(ang, 0) + sum(len(s["text"].strip()) for s in line["spans"])
    votes = {a: v for a, v in votes.items() if v}
    return max(votes, key=votes.get) if votes else None


def render_pdf_page(pg, path, dpi: float = PDF_DPI):
    """A PDF page as a PIL RGB image at ``dpi``; refused (``E006``) before rendering when the
    picture would exceed the image size limit."""
    import pymupdf
    from PIL import Image

    zoom = dpi / 72
    w, h = int(pg.rect.width * zoom), int(pg.rect.height * zoom)
    if w * h > MAX_IMAGE_PIXELS:
        raise GraphmieError("E006", path, detail=f"the page renders to {w}x{h} px at {dpi:g} dpi, "
                            f"over {MAX_IMAGE_PIXELS} px")
    pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def load_page(path: str | Path, page: int = 0) -> PageImage:
    """An image as it is; a PDF page rendered at ``PDF_DPI``, with its text layer's words in points."""
    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    if path.suffix.lower() == ".pdf":
        pdf = open_pdf(path)
        try:
            if not 0 <= page < pdf.page_count:
                raise GraphmieError("E009", path, detail=f"page {page} but the PDF has {pdf.page_count}")
            pg = pdf[page]
            try:
                img = render_pdf_page(pg, path)
                words = pdf_text_words(pg)
            except GraphmieError as e:
                raise _on_page(e, path, page) from None
            return PageImage(img, words, float(pg.rect.width), float(pg.rect.height), "pt", PDF_DPI)
        finally:
            pdf.close()
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise GraphmieError("E008", path, detail=f"'{path.suffix}' (expected a page image, a PDF, "
                            "or a FUNSD JSON)")
    img = open_image(path)
    return PageImage(img, [], float(img.size[0]), float(img.size[1]))


# --- ink, contrast and orientation of a page to OCR -----------------------------------------
#: a page whose populated grey levels all lie within this many levels of its background has
#: no ink: it is blank, and is not OCR'd
BLANK_SPREAD = 16
#: a page whose ink reaches less than this far from the background is low-contrast: its grey
#: levels are stretched to the full range before OCR
LOW_CONTRAST_SPREAD = 96


def ink_range(image) -> tuple[int, int, int]:
    """(background, darkest, lightest) grey level of a page picture: the background is the most
    common level; a level counts only when at least one pixel in a million has it (at least 4),
    so stray specks and JPEG noise do not make a blank page look inked."""
    hist = image.convert("L").histogram()
    n = sum(hist)
    floor = max(4, n // 1_000_000)
    bg = max(range(256), key=hist.__getitem__)
    levels = [v for v, c in enumerate(hist) if c >= floor] or [bg]
    return bg, min(levels[0], bg), max(levels[-1], bg)


def prepare_for_ocr(image) -> tuple[object | None, dict]:
    """(the picture to OCR, what was found): ``None`` for a blank page (no ink, see
    :data:`BLANK_SPREAD`); a low-contrast page stretched to the full grey range."""
    bg, lo, hi = ink_range(image)
    spread = max(bg - lo, hi - bg)
    info: dict = {"ink_spread": spread}
    if spread < BLANK_SPREAD:
        info["blank"] = True
        return None, info
    if spread < LOW_CONTRAST_SPREAD:
        lut = [min(255, max(0, round((v - lo) * 255 / (hi - lo)))) for v in range(256)]
        image = image.convert("L").point(lut).convert("RGB")
        info["contrast"] = "stretched"
    return image, info


#: below this mean recognition confidence an OCR'd page is flagged (upside down, sideways or a
#: poor scan): 151 upright FUNSD training pages score 0.89-1.00 (median 0.98) with rapidocr, one
#: of them turned by 90 degrees 0.67 and by 180 degrees 0.71
LOW_OCR_CONF = 0.8


def line_direction(words) -> str | None:
    """``"horizontal"`` or ``"vertical"``: how most elongated text lines lie (a line is its
    words' OCR line, or a word when the engine gives no lines; elongated: 3 times longer than
    thick). A page scanned turned by 90 or 270 degrees reads vertical; None with fewer than 3
    elongated lines. From boxes alone a page upside down (180 degrees) cannot be told from an
    upright one (its low recognition confidence, :data:`LOW_OCR_CONF`, flags it)."""
    groups: dict[int, Box] = {}
    for i, w in enumerate(words):
        key = w.line if w.line >= 0 else -1 - i
        groups[key] = groups[key].union(w.box) if key in groups else w.box
    long = [b for b in groups.values() if max(b.width, b.height) >= 3 * max(min(b.width, b.height), 1e-6)]
    if len(long) < 3:
        return None
    tall = sum(b.height > b.width for b in long)
    return "vertical" if tall > len(long) / 2 else "horizontal"


def ocr_page_words(image, engine: str = "rapidocr", scale: float = 1.0) -> tuple[list[OcrWord], dict]:
    """The OCR words of one page picture (boxes times ``scale``) and what reading it found: the
    ink (a blank page is not OCR'd: no words, ``blank``), a contrast stretch, the words' direction."""
    img, info = prepare_for_ocr(image)
    if img is None:
        return [], info
    words = ocr_words(img, engine)
    if scale != 1.0:
        words = [w._replace(box=Box(w.box.x0 * scale, w.box.y0 * scale, w.box.x1 * scale, w.box.y1 * scale))
                 for w in words]
    info["text_lines"] = line_direction(words)
    if words:
        info["ocr_conf"] = round(sum(w.conf for w in words) / len(words), 3)
    return words, info


def _orientation_warning(info: dict) -> str | None:
    rot = info.get("text_rotation")
    if rot:
        return (f"page {info['page']}: its text runs rotated {rot} degrees clockwise; it was read as it is "
                "(labels and links on it are unreliable: rotate the page upright and read it again)")
    if info.get("text_lines") == "vertical":
        return (f"page {info['page']}: most OCR'd text lines run vertically (a page scanned turned by 90 or "
                "270 degrees?); it was read as it is (rotate the scan upright and read it again)")
    if info.get("ocr_conf", 1.0) < LOW_OCR_CONF:
        return (f"page {info['page']}: low OCR confidence ({info['ocr_conf']:.2f}): the page may be upside "
                "down or sideways, or a poor scan; it was read as it is")
    return None


def words_to_form(words: list, source: str, width: float, height: float,
                  image: str | None = None, engine: str = "rapidocr", stack_lines: bool = False,
                  page: int = 0, unit: str = "px", blocks: list[list[int]] | None = None,
                  segmentation: str = "rule", model: str | None = None) -> Document:
    """Group OCR words into entity blocks and build a form Document (labels left to the model).

    ``blocks`` (lists of word indices, each in reading order) are the entity blocks when a
    segmenter made them (``segmentation`` names it, kept in ``doc.meta``); without them the
    blocks are the rule's row segments. ``stack_lines`` also stacks left-aligned segments of
    consecutive rows into multi-line blocks; it is off by default: on 40 FUNSD training forms
    (gold words regrouped, matched to gold blocks at IoU ≥ 0.5) segments alone reach block
    F1 0.776, stacking 0.700 (it joins field labels to the values under them). The ``line``
    regions are the OCR engine's text lines (the rule's segments when words carry no line).
    ``page`` is the page's index (a PDF page), ``unit`` its box unit (``px`` or ``pt``);
    ``model`` names where the words came from in the provenance (default ``ocr.<engine>``)."""
    if not words:
        raise GraphmieError("E007", source, detail="no text found on the page")
    words = [w if isinstance(w, OcrWord) else OcrWord(*w) for w in words]
    limits.check("form_words", len(words), source, "the page's words")
    limits.check("box_coord", max(max(abs(w.box.x0), abs(w.box.y0), abs(w.box.x1), abs(w.box.y1)) for w in words),
                 source, "a word box coordinate")
    tokens = [Token(text=w.text, box=w.box, page=page) for w in words]
    text_h = median_height([w.box for w in words])

    def union(idx):
        return _union([words[i].box for i in idx])

    if blocks is None:
        segs = segment_words([(w.text, w.box) for w in words], text_h)
        seg_boxes = [union(sg) for sg in segs]
        chains = (merge_segments(seg_boxes, text_h, texts=[" ".join(words[i].text for i in sg) for sg in segs])
                  if stack_lines else [[k] for k in range(len(segs))])
        blocks = [[i for c in chain for i in segs[c]] for chain in chains]
        lines = segs
    elif all(w.line >= 0 for w in words):
        by_line: dict[int, list[int]] = {}
        for i, w in enumerate(words):
            by_line.setdefault(w.line, []).append(i)
        lines = [sorted(g, key=lambda i: words[i].box.x0) for g in by_line.values()]
    else:
        lines = segment_words([(w.text, w.box) for w in words], text_h)
    limits.check("form_entities", len(blocks), source, "the page's text blocks")
    model = model or f"ocr.{engine}"
    owner = {i: k for k, b in enumerate(blocks) for i in b}
    regions = []
    for k, ln in enumerate(lines):
        box = union(ln)
        regions.append(Region(id=f"seg{k}", box=box, kind="line", page=page, image=image,
                              children=sorted({f"e{owner[i]}" for i in ln if i in owner}, key=lambda e: int(e[1:])),
                              provenance=Provenance(source=source, page=page, box=box, model=model)))
    entities = []
    for k, idx in enumerate(blocks):
        box = union(idx)
        conf = sum(words[i].conf for i in idx) / len(idx)
        entities.append(Entity(id=f"e{k}", text=" ".join(words[i].text for i in idx), label="other", tokens=list(idx),
                               box=box, page=page,
                               provenance=Provenance(source=source, page=page, box=box, model=model, score=conf)))
    return Document(id=Path(source).stem, kind="form", source=source, text="\n".join(e.text for e in entities),
                    pages=[Page(index=page, width=float(width), height=float(height), image=image, unit=unit)],
                    tokens=tokens, entities=entities, regions=regions,
                    meta={"ocr_engine": engine, "gold": False, "segmentation": segmentation})


#: ``ocr_form(..., page=ALL_PAGES)`` (or ``page=None``) reads every page of a PDF
ALL_PAGES = -1


def page_form(words, source, width, height, engine, page, unit, segmenter, model=None) -> Document:
    """One page's words -> its form Document, the words grouped by ``segmenter`` (``segmenter(words,
    width, height) -> blocks``) or, without one, the row rule."""
    blocks = segmenter(words, width, height) if segmenter is not None and words else None
    return words_to_form(words, str(source), width, height, image=str(source), engine=engine, page=page,
                         unit=unit, blocks=blocks, model=model,
                         segmentation=getattr(segmenter, "name", "learned") if blocks is not None else "rule")


def ocr_form(path: str | Path, engine: str = "rapidocr", page: int | None = 0, segmenter=None) -> Document:
    """Read a page image, one PDF page (``page``, 0-based) or every page of a PDF (``page`` =
    :data:`ALL_PAGES` or None) into a form Document through OCR (a PDF page's text layer when it
    has one); a PDF page's boxes are in points (see the module docstring). ``segmenter``
    (``segmenter(words, width, height) -> blocks``, e.g. the learned one of
    :mod:`graphmie.methods.re2.segment`) groups each page's words into entity blocks; without it
    the rule does. An image is one page (``page`` is ignored). A blank picture (no ink) is
    ``E007`` without running OCR; a low-contrast one is contrast-stretched first."""
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        return pdf_form(path, engine, page, segmenter)
    pg = load_page(path)
    try:
        words, info = ocr_page_words(pg.image, engine)
    except GraphmieError as e:
        if e.source is not None:
            raise
        raise GraphmieError(e.code, path, **e.fields) from None      # e.g. an unknown engine: name the file
    if info.get("blank"):
        raise GraphmieError("E007", path, detail=f"the page is blank (no ink: every grey level within "
                            f"{info['ink_spread']} of the background), nothing to read")
    doc = page_form(words, path, pg.width, pg.height, engine, 0, pg.unit, segmenter)
    info.update(page=0, text="ocr", words=len(words), entities=len(doc.entities))
    _page_meta(doc, [info])
    return doc


def _page_meta(doc: Document, infos: list[dict]) -> None:
    doc.meta["pages"] = infos
    warnings = [w for w in map(_orientation_warning, infos) if w]
    blank = [i["page"] for i in infos if i.get("blank") or not i.get("words")]
    if blank:
        doc.meta["blank_pages"] = blank
        warnings += [f"page {k}: no text (blank, or nothing OCR could read); kept without entities" for k in blank]
    if warnings:
        doc.meta["warnings"] = warnings


def read_pdf_page(pdf, k: int, path, engine: str = "rapidocr") -> tuple[list[OcrWord], Page, dict]:
    """Page ``k`` of an open PDF: its words in points (its text layer when it has one, else OCR
    of its rendering at ``PDF_DPI``; a page without text or ink has none), its :class:`Page`, and
    what reading it found (``text``: ``text layer`` / ``ocr`` / ``none``, ``words``, the text's
    rotation or the OCR'd words' direction, ``blank``, a contrast stretch)."""
    pg = pdf[k]
    width, height = float(pg.rect.width), float(pg.rect.height)
    page = Page(index=k, width=width, height=height, image=str(path), unit="pt")
    words = pdf_text_words(pg)
    info: dict = {"page": k}
    if words:
        info.update(text="text layer", words=len(words), text_rotation=pdf_text_rotation(pg))
        return words, page, info
    words, found = ocr_page_words(render_pdf_page(pg, path), engine, scale=72 / PDF_DPI)
    words = [w._replace(box=w.box.clip(width, height)) for w in words]
    info.update(found)
    info.update(text="ocr" if words else "none", words=len(words))
    return words, page, info


def pdf_form(path: str | Path, engine: str = "rapidocr", page: int | None = ALL_PAGES, segmenter=None) -> Document:
    """A PDF -> one form Document: every page (``page`` = :data:`ALL_PAGES` or None; at most
    the ``form_pages`` limit) or page ``page``. Each page is read on its own (its text layer,
    else OCR) and keeps its index, size in points and its entities, tokens and regions; with
    more than one page, ids carry the page (``p{page}e{k}``, ``p{page}seg{k}``). A page without
    text is kept without entities (``meta["blank_pages"]``); a PDF where no page read has text is
    ``E007``. An error on a page names the file and the page."""
    path = Path(path)
    pdf = open_pdf(path)
    try:
        n = pdf.page_count
        if page is None or page == ALL_PAGES:
            limits.check("form_pages", n, path, "the PDF's pages (read one with --page K)")
            wanted = list(range(n))
        elif not 0 <= page < n:
            raise GraphmieError("E009", path, detail=f"page {page} but the PDF has {n}")
        else:
            wanted = [page]
        docs, pages, infos = [], [], []
        for k in wanted:
            try:
                try:
                    words, pg, info = read_pdf_page(pdf, k, path, engine)
                except GraphmieError:
                    raise
                except Exception as e:  # noqa: BLE001 - a damaged page (PyMuPDF): coded, naming the page
                    raise GraphmieError("E005", path, detail=f"the PDF page could not be read "
                                        f"({type(e).__name__}: {e})") from None
                pages.append(pg)
                infos.append(info)
                if words:
                    layer = info["text"] == "text layer"
                    d = page_form(words, path, pg.width, pg.height, engine, k, "pt", segmenter,
                                   model="pdf.text_layer" if layer else None)
                    info["entities"] = len(d.entities)
                    docs.append(d)
            except GraphmieError as e:
                raise _on_page(e, path, k) from None
    finally:
        pdf.close()
    if not docs:
        why = "no text layer and no ink" if all(i.get("blank") for i in infos) else \
            "no text layer, and OCR found no text"
        if len(wanted) == 1:
            raise GraphmieError("E007", page_source(path, wanted[0]), detail=f"the page has no text ({why})")
        raise GraphmieError("E007", path, detail=f"none of its {n} pages has text (blank pages, or scans OCR "
                            "could not read)")
    doc = docs[0] if len(pages) == 1 else merge_pages(docs, pages, path)
    doc.meta["ocr_engine"] = engine
    doc.meta["pdf"] = {"page_count": n, "pages": wanted, "render_dpi": PDF_DPI, "units": "pt"}
    if page is not None and page != ALL_PAGES:
        doc.meta["pdf"]["page"] = page
    _page_meta(doc, infos)
    return doc


def merge_pages(docs: list[Document], pages: list[Page], source) -> Document:
    """One Document of several pages' Documents (each from :func:`words_to_form`, in page order):
    tokens concatenated (entities' token indices shifted), every entity and region id prefixed
    with its page (``p{page}e{k}``, ``p{page}seg{k}``), ``pages`` (blank ones included) as given."""
    tokens, entities, regions = [], [], []
    for d in docs:
        k, off = d.pages[0].index, len(tokens)
        tokens.extend(d.tokens)
        ren = {e.id: f"p{k}{e.id}" for e in d.entities}
        for e in d.entities:
            e.id, e.tokens = ren[e.id], [i + off for i in e.tokens]
        for r in d.regions:
            r.id, r.children = f"p{k}{r.id}", [ren.get(c, c) for c in r.children]
        entities.extend(d.entities)
        regions.extend(d.regions)
    return Document(id=Path(source).stem, kind="form", source=str(source), text="\n".join(e.text for e in entities),
                    pages=list(pages), tokens=tokens, entities=entities, regions=regions, meta=dict(docs[0].meta))


def cached_ocr_words(path: str | Path, engine: str = "rapidocr") -> tuple[list[OcrWord], float]:
    """OCR words of a page image with the seconds the OCR took, cached under the ``form/ocr``
    cache folder keyed by the image's content, the engine and its settings (training the
    segmenter and scoring end to end read every training page many times)."""
    import hashlib
    import json

    from graphmie.config import cache_dir

    path = Path(path)
    settings = (engine, sorted(RAPIDOCR_PARAMS.items()))
    backend = rapidocr_backend() if engine == "rapidocr" else None
    if backend not in (None, "onnxruntime"):
        settings += (backend,)                           # onnxruntime keeps the keys of earlier caches
    key = hashlib.sha256(path.read_bytes() + repr(settings).encode()).hexdigest()
    cache = cache_dir("form") / "ocr" / f"{engine}_{key[:24]}.json"
    if cache.exists():
        rec = json.loads(cache.read_text())
        return [OcrWord(t, Box.from_list(b), c, ln) for t, b, c, ln in rec["words"]], rec["seconds"]
    import time

    t = time.perf_counter()
    page = load_page(path)
    words = page.words or ocr_page_words(page.image, engine)[0]      # the words `extract` reads
    dt = time.perf_counter() - t
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"words": [(w.text, w.box.to_list(), w.conf, w.line) for w in words], "seconds": dt}))
    tmp.replace(cache)
    return words, dt
