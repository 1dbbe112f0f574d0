"""Reader for Twitter-GMNER (Yu et al., ACL 2023 "Grounded Multimodal Named Entity Recognition")
and for the Twitter-2015 / Twitter-2017 MNER benchmarks (Zhang et al. 2018; Lu et al. 2018).

Layout of a dataset folder (as ``../shared/data/gmner``)::

    train.txt, dev.txt            CoNLL: ``IMGID:<id>`` line, ``token<TAB>BIO-tag`` lines, blank line between tweets
    xml/<id>.xml                  Pascal-VOC gold boxes; ``<object><name>`` is the entity text
    captions/blip2_<split>.txt    ``<id>.jpg :<caption>`` one per line
    captions/owl_<split>.txt      long descriptions, records start ``imgid:<id>###`` (may span lines)
    aux_riveg/<split>.txt         LLM auxiliary knowledge per tweet (:mod:`graphmie.data.knowledge`)

A Twitter-2015/2017 folder (as ``../shared/data/twitter2017``) has ``train.txt`` / ``valid.txt``
with the types PER, LOC, ORG and MISC (2017) or OTHER (2015), no ``xml/`` (no boxes: every entity is ungroundable), one
``captions/blip2.txt`` for all splits, and ``aux_pgim/<split>.txt``. Which benchmark a folder
holds is :func:`benchmark_of` (its name, then its label set; the Twitter-2015 copy tags OTHER).

Bad input is handled as documented here and *counted* in :attr:`GmnerSplit.stats`, never dropped
silently:

- a tweet with no ``IMGID:`` line before it: kept (text-only), ``image_id=None``, every entity
  ungroundable -> ``tweets_without_image``; with ``strict=True`` it is an ``E018`` error.
- an xml file whose id is not a tweet of any split that was read: ignored -> ``xml_unknown_ids``
  (only counted when the caller asks with :func:`count_unknown_xml`).
- an xml object whose name matches no entity of its tweet -> ``objects_unmatched`` (kept in
  ``Tweet.unmatched_boxes``).
- a box partly outside the image: clipped -> ``boxes_clipped``; a box entirely outside or of zero
  area after clipping: dropped -> ``boxes_dropped``; an unparseable xml: ``E004`` with strict, else
  ``xml_malformed``.
- an empty or missing caption: ``caption=""`` -> ``captions_empty`` / ``captions_missing``.
- an unknown tag (not O / B-X / I-X of PER, ORG, LOC, OTHER) -> ``E013`` error naming the line;
  an ``I-X`` without a preceding entity of type X starts a new entity (``tags_repaired``).
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..document import Box, Document, Entity, Grounding, Provenance, Token
from ..errors import GraphmieError
from ..io import read_text
from .knowledge import attach_knowledge, aux_path
from .text import repair

TYPES = ("PER", "ORG", "LOC", "OTHER")           # Twitter-GMNER
TWITTER_TYPES = ("PER", "LOC", "ORG", "MISC")    # Twitter-2015 / Twitter-2017
KNOWN_TYPES = TYPES + ("MISC",)


@dataclass
class GoldEntity:
    start: int                      # token index, inclusive
    end: int                        # token index, exclusive
    type: str
    text: str
    boxes: list[Box] = field(default_factory=list)   # empty = not groundable

    @property
    def groundable(self) -> bool:
        return bool(self.boxes)


@dataclass
class Tweet:
    id: str                          # "<split>:<n>" when there is no image id
    image_id: Optional[str]
    tokens: list[str]
    tags: list[str]
    entities: list[GoldEntity]
    caption: str = ""
    long_caption: str = ""
    image_size: Optional[tuple[int, int]] = None      # from the xml, when there is one
    unmatched_boxes: list[tuple[str, Box]] = field(default_factory=list)
    line: int = 0                    # line of the IMGID in the CoNLL file
    knowledge: Optional[str] = None  # LLM auxiliary knowledge (None: the dataset has none for it)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass
class GmnerSplit:
    name: str
    tweets: list[Tweet]
    stats: Counter
    knowledge_source: str = "none"   # riveg | pgim | none: where the tweets' knowledge came from
    types: tuple = TYPES             # the label set the split's tags use
    benchmark: str = "twitter-gmner"  # twitter-gmner | twitter2015 | twitter2017 (:func:`benchmark_of`)


def bio_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """BIO tags -> ``(start, end_exclusive, type)``; a stray ``I-X`` starts a new entity."""
    spans, start, typ = [], None, None
    for i, t in enumerate(list(tags) + ["O"]):
        if t == "O" or t.startswith("B-") or (t.startswith("I-") and t[2:] != typ):
            if start is not None:
                spans.append((start, i, typ))
            start, typ = (i, t[2:]) if t != "O" else (None, None)
    return spans


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s).lower()


def read_conll(path: Path, strict: bool = False, stats: Counter | None = None) -> list[Tweet]:
    stats = stats if stats is not None else Counter()
    if not path.exists():
        raise GraphmieError("E001", path)
    tweets: list[Tweet] = []
    cur_id, toks, tags, start_line = None, [], [], 0

    def flush():
        nonlocal cur_id, toks, tags
        if toks:
            if cur_id is None:
                if strict:
                    raise GraphmieError("E018", path, detail=f"tweet at line {start_line} has no IMGID line")
                stats["tweets_without_image"] += 1
            fixed = sum(1 for i, t in enumerate(tags) if t.startswith("I-")
                        and (i == 0 or tags[i - 1][2:] != t[2:]))
            stats["tags_repaired"] += fixed
            ents = [GoldEntity(s, e, ty, " ".join(toks[s:e])) for s, e, ty in bio_to_spans(tags)]
            tid = cur_id if cur_id is not None else f"{path.stem}:{start_line}"
            tweets.append(Tweet(tid, cur_id, toks, tags, ents, line=start_line))
        elif cur_id is not None:
            stats["tweets_empty"] += 1
        cur_id, toks, tags = None, [], []

    for ln, raw in enumerate(re.split(r"\r\n|\r|\n", read_text(path)), 1):
        line = repair(raw)[0]
        if line.startswith("IMGID:"):
            if toks or cur_id is not None:
                flush()
            cur_id, start_line = line[6:].strip(), ln
            continue
        if not line.strip():
            if toks:
                flush()
            continue
        if not toks and cur_id is None:
            start_line = ln
        parts = line.split("\t")
        if len(parts) != 2:
            parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise GraphmieError("E004", path, detail=f"line {ln}: expected 'token<TAB>tag', got {line!r}")
        tok, tag = parts
        if tag != "O" and not (tag[:2] in ("B-", "I-") and tag[2:] in KNOWN_TYPES):
            raise GraphmieError("E013", path, detail=f"line {ln}: tag {tag!r}")
        toks.append(tok)
        tags.append(tag)
    flush()
    return tweets


def read_xml(path: Path) -> tuple[tuple[int, int], list[tuple[str, Box]], Counter]:
    """Pascal-VOC file -> ((width, height), [(name, box)], stats). Boxes are clipped to the image."""
    stats = Counter()
    try:
        root = ET.parse(path).getroot()
        w = int(float(root.findtext("size/width")))
        h = int(float(root.findtext("size/height")))
    except (ET.ParseError, TypeError, ValueError, OverflowError) as e:
        raise GraphmieError("E004", path, detail=f"not a Pascal-VOC annotation ({e})") from None
    objs = []
    for o in root.iter("object"):
        name = (o.findtext("name") or "").strip()
        bb = o.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            stats["boxes_dropped"] += 1
            continue
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            stats["boxes_dropped"] += 1
            continue
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if w > 0 and h > 0 and (x0 < 0 or y0 < 0 or x1 > w or y1 > h):
            b = Box(x0, y0, x1, y1).clip(w, h)
            if b.area <= 0:
                stats["boxes_dropped"] += 1
                continue
            stats["boxes_clipped"] += 1
        else:
            b = Box(x0, y0, x1, y1)
            if b.area <= 0:
                stats["boxes_dropped"] += 1
                continue
        objs.append((name, b))
    return (w, h), objs, stats


def read_blip2(path: Path, stats: Counter) -> dict[str, str]:
    out = {}
    if not path.exists():
        return out
    for ln, line in enumerate(repair(read_text(path))[0].splitlines(), 1):
        if not line.strip():
            continue
        key, sep, cap = line.partition(" :")
        if not sep:
            key, sep, cap = line.partition(":")
        if not sep:
            raise GraphmieError("E004", path, detail=f"line {ln}: expected '<id>.jpg :<caption>'")
        out[key.strip().rsplit(".", 1)[0]] = cap.strip()
    return out


def read_owl(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    cur = None
    for line in repair(read_text(path))[0].splitlines():
        m = re.match(r"^imgid:(.+?)###(.*)$", line)
        if m:
            cur = m.group(1).strip()
            out[cur] = m.group(2).strip()
        elif cur is not None and line.strip():
            out[cur] += " " + line.strip()
    return out


def read_split(root: Path, split: str, strict: bool = False) -> GmnerSplit:
    """Read ``<root>/<split>.txt`` with its boxes and captions; see the module docstring."""
    root = Path(root)
    path = root / f"{split}.txt"
    if not path.exists():
        have = sorted(p.stem for p in root.glob("*.txt")) if root.is_dir() else []
        raise GraphmieError("E016", root, detail=f"no {split}.txt (splits here: {', '.join(have) or 'none'})")
    stats: Counter = Counter()
    tweets = read_conll(path, strict=strict, stats=stats)
    cap_file = root / "captions" / f"blip2_{split}.txt"
    blip = read_blip2(cap_file if cap_file.exists() else root / "captions" / "blip2.txt", stats)
    owl = read_owl(root / "captions" / f"owl_{split}.txt")
    xml_dir = root / "xml"
    for t in tweets:
        stats["entities"] += len(t.entities)
        if t.image_id is None:
            continue
        if t.image_id in blip:
            t.caption = blip[t.image_id]
            if not t.caption:
                stats["captions_empty"] += 1
        else:
            stats["captions_missing"] += 1
        t.long_caption = owl.get(t.image_id, "")
        if not t.long_caption:
            stats["long_captions_missing"] += 1
        xp = xml_dir / f"{t.image_id}.xml"
        if not xp.exists():
            continue
        try:
            size, objs, st = read_xml(xp)
        except GraphmieError:
            if strict:
                raise
            stats["xml_malformed"] += 1
            continue
        stats.update(st)
        t.image_size = size
        by_name: dict[str, list[GoldEntity]] = {}
        for e in t.entities:
            by_name.setdefault(_norm(e.text), []).append(e)
        for name, box in objs:
            ents = by_name.get(_norm(name))
            if not ents:
                t.unmatched_boxes.append((name, box))
                stats["objects_unmatched"] += 1
                continue
            for e in ents:                     # the same entity text repeated: each mention is grounded
                e.boxes.append(box)
            stats["objects_matched"] += 1
    stats["groundable_entities"] = sum(e.groundable for t in tweets for e in t.entities)
    stats["tweets"] = len(tweets)
    source = "none"
    found = aux_path(root, split)
    if found:
        source, kpath = found
        for t, k in zip(tweets, attach_knowledge(tweets, kpath, stats)):
            t.knowledge = k
    seen = {t[2:] for tw in tweets for t in tw.tags if t != "O"}
    types = TWITTER_TYPES if "MISC" in seen else TYPES
    if "MISC" in seen and "OTHER" in seen:
        raise GraphmieError("E013", path, detail="both MISC (Twitter-2015/2017) and OTHER (Twitter-GMNER) tags")
    return GmnerSplit(split, tweets, stats, source, types, benchmark_of(root, types))


def benchmark_of(root: Path, types: tuple) -> str:
    """``twitter2015`` / ``twitter2017`` when the folder's name says so, else ``twitter-gmner`` for
    the GMNER label set and ``twitter2017`` for a MISC one (Twitter-2015's copy here tags OTHER)."""
    name = Path(root).resolve().name
    for year in ("2015", "2017"):
        if year in name:
            return f"twitter{year}"
    return "twitter2017" if types == TWITTER_TYPES else "twitter-gmner"


def folder_benchmark(root: Path, split: str | None = None) -> str:
    """The benchmark of a dataset folder (:func:`benchmark_of`) without reading it all: its name, or
    whether its split file (else train / dev / valid) tags MISC."""
    root = Path(root)
    for sp in ([split] if split else []) + ["train", "dev", "valid"]:
        path = root / f"{sp}.txt"
        if path.exists():
            return benchmark_of(root, TWITTER_TYPES if "-MISC" in read_text(path) else TYPES)
    return benchmark_of(root, TYPES)


def count_unknown_xml(root: Path, splits: list[GmnerSplit]) -> int:
    """Number of ``xml/<id>.xml`` files whose id is no tweet of ``splits`` (reported, then ignored)."""
    known = {t.image_id for s in splits for t in s.tweets}
    return sum(1 for p in (Path(root) / "xml").glob("*.xml") if p.stem not in known)


def tweet_to_document(t: Tweet, source: str, with_gold: bool = True) -> Document:
    """A post :class:`Document` (tokens with character spans; gold entities/groundings if asked)."""
    text, toks = "", []
    for i, w in enumerate(t.tokens):
        if i:
            text += " "
        toks.append(Token(w, span=(len(text), len(text) + len(w)), tag=t.tags[i] if with_gold else None))
        text += w
    doc = Document(id=t.id, kind="post", source=source, text=text,
                   image=f"{t.image_id}.jpg" if t.image_id else None, caption=t.caption or None,
                   tokens=toks, meta={"image_id": t.image_id, "image_size": list(t.image_size) if t.image_size else None})
    if with_gold:
        for k, e in enumerate(t.entities):
            span = (toks[e.start].span[0], toks[e.end - 1].span[1])
            eid = f"e{k}"
            doc.entities.append(Entity(eid, e.text, e.type, tokens=list(range(e.start, e.end)), span=span,
                                       provenance=Provenance(source, span=span, model="gold")))
            for b in e.boxes or [None]:
                doc.groundings.append(Grounding(eid, None, box=b, image=doc.image,
                                                provenance=Provenance(source, box=b, model="gold")))
    return doc
