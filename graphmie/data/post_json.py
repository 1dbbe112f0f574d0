"""The user's post JSON format (``--task post`` and ``--task entity``)::

    {"text": "Taylor Swift and Ed Sheeran at Wembley .",
     "image": "concert.png",                  # optional, relative to the JSON file
     "caption": "Two singers on a stage.",     # optional
     "detections": "dets.json" | [...] | {...},   # optional, see scene_graphs.visual
     "entities": ["Taylor Swift", {"start": 17, "end": 27, "label": "PER"}],   # optional
     "pairs": [["Taylor Swift", "Ed Sheeran"]]}   # optional ordered (head, tail) pairs

An entity or pair member given as a string is its first occurrence in the text. The image is
opened here, so a missing or undecodable image fails the post with the file named.
"""
from __future__ import annotations

from pathlib import Path

from ..document import Document, Entity, Provenance
from ..errors import GraphmieError
from ..io import open_image, read_json


def read_post(path: Path) -> Document:
    """A post JSON file -> a Document (relative paths inside are relative to the file)."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise GraphmieError("E004", path, detail="a post is a JSON object with 'text' (and 'image', 'caption'...)")
    return post_document(d, str(path), Path(path).parent)


def post_document(d: dict, source: str, base: Path) -> Document:
    """A parsed post object -> a Document named ``source``; relative paths are taken from ``base``."""
    text = d.get("text")
    if text is None:
        raise GraphmieError("E018", source, detail="a post needs 'text'")
    if not isinstance(text, str):
        raise GraphmieError("E019", source, detail="'text' must be a string")
    if not text.strip():
        raise GraphmieError("E007", source, detail="empty text")
    doc = Document(id=Path(source).stem if not source.startswith("inline:") else source, kind="post", source=source,
                   text=text)
    if d.get("image"):
        img = Path(d["image"])
        img = img if img.is_absolute() else base / img
        open_image(img)            # fails here, naming the file, when missing or not an image
        doc.image = str(img)
    if d.get("caption"):
        if not isinstance(d["caption"], str):
            raise GraphmieError("E019", source, detail="'caption' must be a string")
        doc.caption = d["caption"]
    det = d.get("detections")
    if det is not None:
        if isinstance(det, str):
            dp = Path(det) if Path(det).is_absolute() else base / det
            det = read_json(dp)
            doc.meta["detections_file"] = str(dp)
        doc.meta["detections"] = det
    spans = []
    for k, e in enumerate(d.get("entities") or []):
        if isinstance(e, str):
            s = text.find(e)
            if s < 0:
                raise GraphmieError("E014", source, detail=f"entity {e!r} is not in the text")
            spans.append((s, s + len(e), "ENT"))
        elif isinstance(e, dict) and isinstance(e.get("start"), int) and isinstance(e.get("end"), int):
            if not (0 <= e["start"] < e["end"] <= len(text)):
                raise GraphmieError("E014", source, detail=f"entity {k} span {[e['start'], e['end']]} outside "
                                    f"the {len(text)}-character text")
            spans.append((e["start"], e["end"], str(e.get("label", "ENT"))))
        else:
            raise GraphmieError("E004", source, detail=f"entity {k}: a string or {{'start', 'end', 'label'?}}")
    pair_ids = []
    for k, pr in enumerate(d.get("pairs") or []):
        if not (isinstance(pr, (list, tuple)) and len(pr) == 2 and all(isinstance(x, str) and x for x in pr)):
            raise GraphmieError("E004", source, detail=f"pair {k}: expected [head text, tail text]")
        ids = []
        for x in pr:
            s = text.find(x)
            if s < 0:
                raise GraphmieError("E014", source, detail=f"pair {k}: {x!r} is not in the text")
            if not any(a == s and b == s + len(x) for a, b, _ in spans):
                spans.append((s, s + len(x), "ENT"))
            ids.append(next(i for i, (a, b, _) in enumerate(spans) if a == s and b == s + len(x)))
        pair_ids.append(ids)
    for i, (s, e, lab) in enumerate(spans):
        doc.entities.append(Entity(id=f"e{i}", text=text[s:e], label=lab, span=(s, e),
                                   provenance=Provenance(source=source, span=(s, e), model="user")))
    if pair_ids:
        doc.meta["pairs"] = [[f"e{a}", f"e{b}"] for a, b in pair_ids]
    return doc
