"""Reader for FUNSD (Jaume et al., ICDAR-OST 2019) form annotations.

A FUNSD annotation file is ``{"form": [entity, ...]}``; each entity (a "semantic
entity", i.e. a block of words) has ``id``, ``box`` ``[x0, y0, x1, y1]``, ``text``,
``label`` (question / answer / header / other), ``words`` (``[{"box", "text"}]``) and
``linking`` (a list of ``[id_a, id_b]`` pairs). The page image is the PNG of the same
stem in the sibling ``images/`` folder.

The file becomes a :class:`~graphmie.document.Document` of kind ``form``: one
:class:`Token` per word (with its box), one :class:`Entity` per block (id ``e<id>``,
gold label, box, token indices, provenance ``model="gold"``) and the gold
question→answer links as :class:`Relation` (label ``question->answer``).

Which links are counted. FUNSD lists a link on both of its entities, in either order,
and it also links headers to questions (and a few question→question / answer→answer
pairs). Following the papers' linking metric (LayoutXLM, LiLT, GeoLayoutLM: "key-value
pairs"), a gold relation is kept only when one end is a ``question`` and the other an
``answer``; it is oriented question→answer whatever the listed order, and duplicates
collapse. Other links are counted in ``doc.meta["read_stats"]["other_links"]``.

Bad input: missing file -> ``E001``; empty file -> ``E007``; not JSON -> ``E003``; no ``form``
list (or an entity / word that is not an object) -> ``E004``; an entity or word without ``box``,
or an entity without ``label`` -> ``E018``; a ``box`` that is not 4 numbers, a ``label`` or ``text``
that is not a string, or an ``id`` that is not an integer or a string -> ``E019``; a non-finite or
negative box coordinate -> ``E009``; an unknown label -> ``E013`` (each naming the entity); a
repeated entity id -> ``E012`` (``3`` and ``"3"`` are the same id: links name entities either
way); more entities or words than :mod:`graphmie.limits` allows, or a coordinate beyond its
``box_coord`` -> ``E032`` (checked before anything is built); a link to an entity id that does
not exist is skipped and counted (``dangling_links``). Text is made valid Unicode
(:mod:`graphmie.data.text`, reported in ``meta["text_repairs"]``).
"""
from __future__ import annotations

import math
import random
from pathlib import Path

from .. import limits
from ..document import Box, Document, Entity, Page, Provenance, Relation, Token
from ..errors import GraphmieError
from ..io import read_json
from .text import Repairs

LABELS = ("question", "answer", "header", "other")
LINK_LABEL = "question->answer"
DEV_SEED = 0
DEV_FRACTION = 0.2


def _box(v, path, where):
    try:
        if not isinstance(v, (list, tuple)) or len(v) != 4 or any(isinstance(a, (bool, str, bytes)) for a in v):
            raise TypeError("needs 4 numbers")
        x0, y0, x1, y1 = map(float, v)
    except (TypeError, ValueError, OverflowError) as e:
        raise GraphmieError("E019", path, detail=f"{where}: 'box' must be [x0, y0, x1, y1], not {v!r} ({e})") from None
    if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(x1) and math.isfinite(y1)):
        raise GraphmieError("E009", path, detail=f"{where}: box {v!r} (coordinates must be finite)")
    if min(x0, y0, x1, y1) < 0:
        raise GraphmieError("E009", path, detail=f"{where}: box {v!r} (coordinates must be >= 0: pixels from "
                            f"the page's top-left corner)")
    limits.check("box_coord", max(x0, y0, x1, y1), path, f"{where}: a box coordinate")
    # a few FUNSD boxes are given with swapped corners; normalise instead of failing
    return Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def image_for(annotation: Path) -> Path | None:
    """The page image that belongs to an annotation file (``../images/<stem>.png``), if any."""
    annotation = Path(annotation)
    for folder in (annotation.parent.parent / "images", annotation.parent):
        for ext in (".png", ".jpg", ".jpeg"):
            p = folder / f"{annotation.stem}{ext}"
            if p.exists():
                return p
    return None


def page_size(image: Path | None, entities_boxes: list[Box]) -> tuple[float, float]:
    if image is not None:
        try:
            from PIL import Image

            with Image.open(image) as im:
                return float(im.size[0]), float(im.size[1])
        except Exception:  # noqa: BLE001 - fall back to the extent of the boxes
            pass
    if not entities_boxes:
        return 1.0, 1.0
    return max(b.x1 for b in entities_boxes) + 1.0, max(b.y1 for b in entities_boxes) + 1.0


def parse_funsd(data, path: str | Path, image: Path | None = None) -> Document:
    """Turn a parsed FUNSD JSON object into a Document (see the module docstring)."""
    path = Path(path)
    if not isinstance(data, dict) or not isinstance(data.get("form"), list):
        raise GraphmieError("E004", path, detail="expected an object with a 'form' list of entities")
    src = str(path)
    form = data["form"]
    limits.check("form_entities", len(form), path, "the form's entities")
    limits.check("form_words", sum(len(e["words"]) for e in form if isinstance(e, dict)
                                   and isinstance(e.get("words"), list)), path, "the form's words")
    fix = Repairs()
    tokens: list[Token] = []
    entities: list[Entity] = []
    links: list[tuple] = []
    stats = {"entities": 0, "words": 0, "other_links": 0, "dangling_links": 0, "empty_entities": 0}
    seen_ids = set()
    for k, ent in enumerate(form):
        if not isinstance(ent, dict):
            raise GraphmieError("E004", path, detail=f"form[{k}] is not an object")
        eid = ent.get("id", k)
        if isinstance(eid, bool) or not isinstance(eid, (int, str)):
            raise GraphmieError("E019", path, detail=f"form[{k}]: 'id' must be an integer or a string, not {eid!r}")
        eid = fix(str(eid), "id")
        if eid in seen_ids:
            raise GraphmieError("E012", path, detail=f"entity id {eid} is repeated (ids 3 and \"3\" are the same)")
        seen_ids.add(eid)
        if "box" not in ent:
            raise GraphmieError("E018", path, detail=f"entity {eid}: no 'box'")
        if "label" not in ent:
            raise GraphmieError("E018", path, detail=f"entity {eid}: no 'label'")
        label = ent["label"]
        if not isinstance(label, str):
            raise GraphmieError("E019", path, detail=f"entity {eid}: 'label' must be a string, not {label!r}")
        if label not in LABELS:
            raise GraphmieError("E013", path, detail=f"entity {eid}: {fix(label, 'label')!r} (expected one of {LABELS})")
        box = _box(ent["box"], path, f"entity {eid}")
        words = ent.get("words") or []
        if not isinstance(words, list):
            raise GraphmieError("E019", path, detail=f"entity {eid}: 'words' must be a list")
        idx = []
        word = f"entity {eid} word"
        for w in words:
            if not isinstance(w, dict):
                raise GraphmieError("E004", path, detail=f"entity {eid}: a word that is not an object")
            if "box" not in w:
                raise GraphmieError("E018", path, detail=f"entity {eid}: a word without 'box'")
            text = _text(w.get("text", ""), path, word, fix)
            if not text.strip():
                continue
            idx.append(len(tokens))
            tokens.append(Token(text=text, box=_box(w["box"], path, word), page=0))
        text = _text(ent.get("text", ""), path, f"entity {eid}", fix).strip() or " ".join(tokens[i].text for i in idx)
        if not text:
            stats["empty_entities"] += 1
        entities.append(Entity(id=f"e{eid}", text=text, label=label, tokens=idx, box=box, page=0,
                               provenance=Provenance(source=src, page=0, box=box, model="gold")))
        linking = ent.get("linking") or []
        if not isinstance(linking, list):
            raise GraphmieError("E019", path, detail=f"entity {eid}: 'linking' must be a list of [id, id] pairs")
        for pair in linking:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                links.append((pair[0], pair[1]))
    by_id = {e.id: e for e in entities}
    rels, seen = [], set()
    for a, b in links:
        ea, eb = (by_id.get(f"e{x}") if isinstance(x, (int, str)) and not isinstance(x, bool) else None for x in (a, b))
        if ea is None or eb is None:
            stats["dangling_links"] += 1
            continue
        if {ea.label, eb.label} != {"question", "answer"}:
            if ("other", ea.id, eb.id) not in seen:
                stats["other_links"] += 1
            seen.add(("other", ea.id, eb.id))
            continue
        q, ans = (ea, eb) if ea.label == "question" else (eb, ea)
        if (q.id, ans.id) in seen:
            continue
        seen.add((q.id, ans.id))
        rels.append(Relation(id=f"r{len(rels)}", head=q.id, tail=ans.id, label=LINK_LABEL,
                             provenance=Provenance(source=src, page=0, box=q.box.union(ans.box), model="gold")))
    stats["entities"], stats["words"] = len(entities), len(tokens)
    w, h = page_size(image, [e.box for e in entities])
    text = "\n".join(e.text for e in entities)
    doc = Document(id=path.stem, kind="form", source=src, text=text,
                   pages=[Page(index=0, width=w, height=h, image=str(image) if image else None)],
                   tokens=tokens, entities=entities, relations=rels,
                   meta={"read_stats": stats, "gold": True})
    fix.report(doc.meta)
    return doc


def _text(v, path, where, fix) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise GraphmieError("E019", path, detail=f"{where}: 'text' must be a string, not {v!r}")
    return fix(v, "text")


def read_funsd(path: str | Path) -> Document:
    """Read one FUNSD annotation JSON (and the size of its page image)."""
    path = Path(path)
    return parse_funsd(read_json(path), path, image_for(path))


def gold_links(doc: Document) -> set[tuple[str, str]]:
    return {(r.head, r.tail) for r in doc.relations if r.label == LINK_LABEL}


def list_annotations(folder: str | Path) -> list[Path]:
    """Annotation files of a FUNSD-layout folder (``annotations/*.json``), sorted."""
    folder = Path(folder)
    if not folder.exists():
        raise GraphmieError("E001", folder)
    ann = folder / "annotations" if (folder / "annotations").is_dir() else folder
    files = sorted(ann.glob("*.json"))
    if not files:
        raise GraphmieError("E016", folder, detail="expected annotations/*.json (and images/*.png)")
    return files


def dev_split(ids: list[str], seed: int = DEV_SEED, fraction: float = DEV_FRACTION) -> tuple[list[str], list[str]]:
    """(train ids, dev ids): a fixed-seed shuffle of the sorted ids, the first ``fraction`` is dev."""
    ids = sorted(ids)
    rng = random.Random(seed)
    shuffled = ids[:]
    rng.shuffle(shuffled)
    n_dev = round(len(ids) * fraction)
    dev = sorted(shuffled[:n_dev])
    dev_set = set(dev)
    return [i for i in ids if i not in dev_set], dev


def cv_folds(ids: list[str], k: int = 5, seed: int = DEV_SEED) -> list[list[str]]:
    """``k`` disjoint folds covering ``ids``: a fixed-seed shuffle of the sorted ids dealt round-robin."""
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    return [sorted(shuffled[f::k]) for f in range(k)]
