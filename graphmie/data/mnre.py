"""Reader for MNRE (Zheng et al. 2021), the multimodal relation extraction benchmark, in its original files.

Layout of a data folder (as ``../shared/data/mnre``)::

    mnre_{split}.txt                 one Python dict literal per line (parsed with ast.literal_eval, never eval):
                                     {'token': [...], 'h': {'name', 'pos': [s, e]}, 't': {...},
                                      'img_id': 'x.jpg', 'relation': '/per/org/member_of'}
    rel2id.json                      label -> id (23 labels, 'None' included)
    captions/llavanext_{split}.json  {img_id_without_ext: caption}       (also minicpm_{split}.json)
    captions/blip2_{split}.txt       one dict literal a line: {'img_id': 'x.jpg', 'text': caption}
    boxes/{split}_detect_boxes.json  {"<img_stem>_crop_<k>.jpg": [cx, cy, w, h, area]} normalised to the image
    images/{split}/<img_id>          the raw image, when there is one

A bad record (unparsable line, empty text, entity span outside the text, entity name that does not
match its span, unknown label, img_id not an image name) is skipped with a :class:`GraphmieError`
naming the file and line; the rest of the split is read. ``load_split`` returns the skipped errors.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from scene_graphs.visual import parse_detections

from ..errors import GraphmieError
from ..io import read_text, read_json
from .text import repair

CAPTION_SOURCES = ("llavanext", "minicpm", "blip2")
_IMG_RE = re.compile(r"^[\w.\-]+\.(jpg|jpeg|png|gif|bmp|webp)$", re.IGNORECASE)


@dataclass
class MNRESample:
    tokens: list[str]
    head: tuple[int, int]            # token span [s, e)
    tail: tuple[int, int]
    head_name: str
    tail_name: str
    img_id: str
    relation: str
    line: int = 0
    caption: str = ""
    boxes: list[list[float]] = field(default_factory=list)   # [cx, cy, w, h, area] normalised
    image_path: Optional[str] = None

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def img_stem(img_id: str) -> str:
    return img_id.rsplit(".", 1)[0]


def load_rel2id(data_dir: str | Path) -> dict[str, int]:
    path = Path(data_dir) / "rel2id.json"
    rel2id = read_json(path)
    if not isinstance(rel2id, dict) or "None" not in rel2id:
        raise GraphmieError("E004", path, detail="expected a JSON object label -> id with a 'None' label")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in rel2id.values()):
        raise GraphmieError("E019", path, detail="every label's id must be an integer")
    return {repair(str(k))[0]: v for k, v in rel2id.items()}


def parse_record(line: str, rel2id: dict[str, int], where: str) -> MNRESample:
    """One line of ``mnre_{split}.txt`` -> a checked sample, or a GraphmieError naming ``where``."""
    try:
        d = ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
        raise GraphmieError("E004", where, detail=f"not a Python dict literal ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise GraphmieError("E004", where, detail="record is not a dict")
    for key in ("token", "h", "t", "img_id", "relation"):
        if key not in d:
            raise GraphmieError("E018", where, detail=f"missing key {key!r}")
    tokens = d["token"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise GraphmieError("E019", where, detail="'token' must be a list of strings")
    tokens = [repair(t)[0] for t in tokens]
    if not tokens or not any(t.strip() for t in tokens):
        raise GraphmieError("E007", where, detail="empty text")
    spans = []
    for key in ("h", "t"):
        ent = d[key]
        if not isinstance(ent, dict):
            raise GraphmieError("E019", where, detail=f"{key!r} must be a dict with 'name' and 'pos'")
        if "pos" not in ent:
            raise GraphmieError("E018", where, detail=f"{key!r} has no 'pos'")
        pos = ent["pos"]
        if (not isinstance(pos, (list, tuple)) or len(pos) != 2 or not all(isinstance(p, int) and not isinstance(p, bool) for p in pos)):
            raise GraphmieError("E019", where, detail=f"{key}.pos must be [start, end] token indices")
        s, e = pos
        if not (0 <= s < e <= len(tokens)):
            raise GraphmieError("E014", where, detail=f"{key}.pos {[s, e]} outside the {len(tokens)} tokens")
        name = repair(str(ent.get("name", "")))[0]
        if name and name.replace(" ", "").lower() != "".join(tokens[s:e]).replace(" ", "").lower():
            raise GraphmieError("E012", where, detail=f"{key}.name {name!r} != tokens {tokens[s:e]}")
        spans.append(((s, e), name or " ".join(tokens[s:e])))
    rel = d["relation"]
    if not isinstance(rel, str):
        raise GraphmieError("E019", where, detail="'relation' must be a string")
    if rel not in rel2id:
        raise GraphmieError("E013", where, detail=f"relation {rel!r} is not in rel2id.json")
    img = d["img_id"]
    if not isinstance(img, str) or not _IMG_RE.match(img):
        raise GraphmieError("E012", where, detail=f"img_id {img!r} is not an image file name")
    return MNRESample(tokens=tokens, head=spans[0][0], tail=spans[1][0], head_name=spans[0][1],
                      tail_name=spans[1][1], img_id=img, relation=rel)


def load_captions(data_dir: str | Path, split: str, source: str = "llavanext") -> dict[str, str]:
    """{img_stem: caption} from one caption source (empty dict when the file is absent)."""
    cdir = Path(data_dir) / "captions"
    if source not in CAPTION_SOURCES:
        raise GraphmieError("E022", None, name="caption source", value=source, choices=", ".join(CAPTION_SOURCES))
    if source == "blip2":
        path = cdir / f"blip2_{split}.txt"
        if not path.exists():
            return {}
        out = {}
        for i, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = ast.literal_eval(line)
                out[img_stem(d["img_id"])] = repair(str(d["text"]).strip())[0]
            except (ValueError, SyntaxError, KeyError, TypeError, AttributeError, MemoryError, RecursionError):
                raise GraphmieError("E004", f"{path}:{i}", detail="expected {'img_id': ..., 'text': ...}") from None
        return out
    path = cdir / f"{source}_{split}.json"
    if not path.exists():
        return {}
    d = read_json(path)
    if not isinstance(d, dict):
        raise GraphmieError("E004", path, detail="expected {img_id: caption}")
    return {img_stem(k): repair(" ".join(str(v).split()))[0] for k, v in d.items()}


def load_boxes(data_dir: str | Path, split: str) -> dict[str, list[list[float]]]:
    path = Path(data_dir) / "boxes" / f"{split}_detect_boxes.json"
    if not path.exists():
        return {}
    return parse_detections(read_json(path), str(path))


def load_split(data_dir: str | Path, split: str, caption_source: str = "llavanext",
               limit: int | None = None) -> tuple[list[MNRESample], list[GraphmieError]]:
    """All good samples of ``mnre_{split}.txt`` with captions/boxes attached, and the errors of the skipped ones."""
    data_dir = Path(data_dir)
    path = data_dir / f"mnre_{split}.txt"
    if not path.exists():
        raise GraphmieError("E016", data_dir, detail=f"no mnre_{split}.txt")
    rel2id = load_rel2id(data_dir)
    captions = load_captions(data_dir, split, caption_source)
    boxes = load_boxes(data_dir, split)
    img_dir = data_dir / "images" / split
    samples, skipped = [], []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            s = parse_record(line, rel2id, f"{path}:{i}")
        except GraphmieError as e:
            skipped.append(e)
            continue
        s.line = i
        stem = img_stem(s.img_id)
        s.caption = captions.get(stem, "")
        s.boxes = boxes.get(stem, [])
        if (img_dir / s.img_id).exists():
            s.image_path = str(img_dir / s.img_id)
        samples.append(s)
        if limit and len(samples) >= limit:
            break
    return samples, skipped
