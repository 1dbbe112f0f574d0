"""The user's post JSON format (``--task post`` and ``--task entity``)::

    {"text": "Taylor Swift and Ed Sheeran at Wembley .",
     "image": "concert.png",                  # optional, relative to the JSON file
     "caption": "Two singers on a stage.",     # optional
     "knowledge": "Named entities: 1. Taylor Swift (person) ...",   # optional LLM knowledge (--task entity)
     "knowledge_source": "llm:gpt-4o",          # optional: who wrote it (default "input")
     "detections": "dets.json" | [...] | {...},   # optional, see scene_graphs.visual
     "entities": ["Taylor Swift", {"start": 17, "end": 27, "label": "PER"}],   # optional
     "pairs": [["Taylor Swift", "Ed Sheeran"]]}   # optional ordered (head, tail) pairs

An entity or pair member given as a string is its first occurrence in the text; a span is trimmed
of surrounding whitespace (one on whitespace only is ``E007``). The image is opened here, so a
missing or undecodable image fails the post, naming the post and the image. Text is made valid
Unicode (:mod:`graphmie.data.text`, reported in ``meta["text_repairs"]``); the text, caption,
pairs and detections are checked against :mod:`graphmie.limits` (``E032``) before any work.
"""
from __future__ import annotations

from pathlib import Path

from .. import limits
from ..document import Document, Entity, Provenance
from ..errors import GraphmieError
from ..io import open_image, read_json
from .text import Repairs


def read_post(path: Path) -> Document:
    """A post JSON file -> a Document (relative paths inside are relative to the file)."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise GraphmieError("E004", path, detail="a post is a JSON object with 'text' (and 'image', 'caption'...)")
    return post_document(d, str(path), Path(path).parent)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    """The span ``[s, e)`` without its surrounding whitespace (``s == e`` when nothing is left)."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _open_post_image(img: Path, source: str) -> None:
    """Fail the post (naming the post and the image) when the image is missing or not an image."""
    try:
        open_image(img)
    except GraphmieError as e:
        where = f"{source}: image {img}"
        if "detail" in e.fields:
            raise GraphmieError(e.code, where, detail=e.fields["detail"]) from None
        raise GraphmieError(e.code, where) from None


def post_document(d: dict, source: str, base: Path) -> Document:
    """A parsed post object -> a Document named ``source``; relative paths are taken from ``base``."""
    fix = Repairs()
    text = d.get("text")
    if text is None:
        raise GraphmieError("E018", source, detail="a post needs 'text'")
    if not isinstance(text, str):
        raise GraphmieError("E019", source, detail="'text' must be a string")
    limits.check("post_chars", len(text), source, "the post's text (characters)")
    text = fix(text, "text")
    if not text.strip():
        raise GraphmieError("E007", source, detail="empty text")
    doc = Document(id=Path(source).stem if not source.startswith("inline:") else source, kind="post", source=source,
                   text=text)
    caption = d.get("caption")
    if caption:
        if not isinstance(caption, str):
            raise GraphmieError("E019", source, detail="'caption' must be a string")
        limits.check("post_chars", len(caption), source, "the post's caption (characters)")
    knowledge = d.get("knowledge")
    if knowledge:
        if not isinstance(knowledge, str):
            raise GraphmieError("E019", source, detail="'knowledge' must be a string")
        limits.check("post_chars", len(knowledge), source, "the post's knowledge (characters)")
        doc.knowledge = fix(knowledge, "knowledge")
        doc.meta["knowledge_source"] = str(d.get("knowledge_source") or "input")
    det = d.get("detections")
    if det is not None:
        if isinstance(det, str):
            dp = Path(det) if Path(det).is_absolute() else base / det
            det = read_json(dp)
            doc.meta["detections_file"] = str(dp)
        boxes = det.get("boxes") if isinstance(det, dict) else det     # (a crop file holds many images' crops)
        limits.check("detections", len(boxes) if isinstance(boxes, list) else 0,
                     doc.meta.get("detections_file", source), "the detections (boxes)")
        doc.meta["detections"] = fix.json(det, "detections")
    entities, pairs = d.get("entities") or [], d.get("pairs") or []
    if not isinstance(entities, list):
        raise GraphmieError("E019", source, detail="'entities' must be a list")
    if not isinstance(pairs, list):
        raise GraphmieError("E019", source, detail="'pairs' must be a list")
    limits.check("post_pairs", len(pairs), source, "the post's 'pairs'")
    if d.get("image"):
        if not isinstance(d["image"], str):
            raise GraphmieError("E019", source, detail="'image' must be a path string")
        img = Path(d["image"])
        img = img if img.is_absolute() else base / img
        _open_post_image(img, source)        # fails here, naming the post and the file
        doc.image = str(img)
    if caption:
        doc.caption = fix(caption, "caption")
    spans = []
    for k, e in enumerate(entities):
        if isinstance(e, str):
            e = fix(e, "entities")
            s = text.find(e) if e.strip() else -1
            if s < 0:
                raise GraphmieError("E014", source, detail=f"entity {e!r} is not in the text")
            span, label = (s, s + len(e)), "ENT"
        elif isinstance(e, dict) and _is_int(e.get("start")) and _is_int(e.get("end")):
            if not (0 <= e["start"] < e["end"] <= len(text)):
                raise GraphmieError("E014", source, detail=f"entity {k} span {[e['start'], e['end']]} outside "
                                    f"the {len(text)}-character text")
            span, label = (e["start"], e["end"]), fix(str(e.get("label", "ENT")), "entities")
        else:
            raise GraphmieError("E004", source, detail=f"entity {k}: a string or {{'start', 'end', 'label'?}}")
        s, t = _trim(text, *span)
        if s == t:
            raise GraphmieError("E007", source, detail=f"entity {k} span {list(span)} covers only whitespace")
        spans.append((s, t, label))
    pair_ids = []
    for k, pr in enumerate(pairs):
        if not (isinstance(pr, (list, tuple)) and len(pr) == 2 and all(isinstance(x, str) and x.strip() for x in pr)):
            raise GraphmieError("E004", source, detail=f"pair {k}: expected [head text, tail text]")
        ids = []
        for x in pr:
            x = fix(x, "pairs")
            s = text.find(x)
            if s < 0:
                raise GraphmieError("E014", source, detail=f"pair {k}: {x!r} is not in the text")
            s, t = _trim(text, s, s + len(x))
            if not any(a == s and b == t for a, b, _ in spans):
                spans.append((s, t, "ENT"))
            ids.append(next(i for i, (a, b, _) in enumerate(spans) if a == s and b == t))
        pair_ids.append(ids)
    for i, (s, e, lab) in enumerate(spans):
        doc.entities.append(Entity(id=f"e{i}", text=text[s:e], label=lab, span=(s, e),
                                   provenance=Provenance(source=source, span=(s, e), model="user")))
    if pair_ids:
        doc.meta["pairs"] = [[f"e{a}", f"e{b}"] for a, b in pair_ids]
    fix.report(doc.meta)
    return doc
