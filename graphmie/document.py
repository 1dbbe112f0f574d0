"""The typed document model shared by every task.

A :class:`Document` is a form, a post or a procedure. It holds what was read
(pages, tokens, steps, regions) and what was extracted (entities, relations,
groundings). Every extracted fact carries a :class:`Provenance`: the source file,
page, box or character span, the model name and version, and a score.

Coordinates: boxes are ``(x0, y0, x1, y1)`` in pixels of their page/image, origin
top-left. Spans are ``(start, end)`` character offsets into :attr:`Document.text`
(or into the step's text for procedures), end exclusive.

Every object round-trips through plain JSON with ``to_dict`` / ``from_dict``. A document's JSON
carries ``schema_version`` (:data:`SCHEMA_VERSION`); reading a newer version is refused.
Versions: 2 added ``Page.unit``; 3 added ``Document.knowledge`` (a post's auxiliary knowledge) and
``Provenance.evidence`` (the inputs a model read for a fact); 4 added ``Provenance.attribution`` (a
number per evidence input, e.g. a post relation's consistency gate and each branch's share); older
documents read unchanged.

PDF pages: the page's ``width``/``height`` and every box on it are in PDF points (1/72 inch),
``Page.unit == "pt"``; image pages are in pixels (``unit == "px"``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Optional

DocKind = Literal["form", "post", "procedure"]
#: version of the document JSON schema written by :meth:`Document.to_dict`
SCHEMA_VERSION = 4


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self):
        vals = (self.x0, self.y0, self.x1, self.y1)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise ValueError(f"box coordinates must be finite numbers, got {vals}")
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"box has x1<x0 or y1<y0: {vals}")

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> "Box":
        return cls(x, y, x + w, y + h)

    @classmethod
    def from_list(cls, v) -> "Box":
        return cls(*(float(a) for a in v))

    def to_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]

    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.width, self.height)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def union(self, other: "Box") -> "Box":
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def intersection_area(self, other: "Box") -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(w, 0.0) * max(h, 0.0)

    def iou(self, other: "Box") -> float:
        inter = self.intersection_area(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def contains(self, other: "Box", tol: float = 0.0) -> bool:
        return (self.x0 - tol <= other.x0 and self.y0 - tol <= other.y0
                and other.x1 <= self.x1 + tol and other.y1 <= self.y1 + tol)

    def clip(self, width: float, height: float) -> "Box":
        return Box(min(max(self.x0, 0), width), min(max(self.y0, 0), height),
                   min(max(self.x1, 0), width), min(max(self.y1, 0), height))


@dataclass
class Provenance:
    """Where a fact came from and who asserted it."""

    source: str                                  # source file (or "inline:<hash>" for inline input)
    page: Optional[int] = None                   # page index (forms) or step index (procedures)
    box: Optional[Box] = None                    # pixel box on the page/image
    span: Optional[tuple[int, int]] = None       # character span in the text
    model: Optional[str] = None                  # e.g. "graphmie.form.re2" or "gold"
    model_version: Optional[str] = None
    score: Optional[float] = None
    #: the inputs the model read for this fact, e.g. ``("text", "caption", "knowledge:riveg")``
    evidence: Optional[tuple[str, ...]] = None
    #: a number per evidence input, e.g. for a post relation ``{"gate": 0.83, "caption": 0.05, "graph": 0.12}``
    #: (the consistency gate, and how much the fact's probability drops without each branch)
    attribution: Optional[dict[str, float]] = None

    def to_dict(self) -> dict:
        d = {"source": self.source, "page": self.page, "box": self.box.to_list() if self.box else None,
             "span": list(self.span) if self.span else None, "model": self.model,
             "model_version": self.model_version, "score": self.score,
             "evidence": list(self.evidence) if self.evidence else None,
             "attribution": dict(self.attribution) if self.attribution else None}
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "Provenance":
        return cls(source=d["source"], page=d.get("page"), box=Box.from_list(d["box"]) if d.get("box") else None,
                   span=tuple(d["span"]) if d.get("span") else None, model=d.get("model"),
                   model_version=d.get("model_version"), score=d.get("score"),
                   evidence=tuple(d["evidence"]) if d.get("evidence") else None,
                   attribution=dict(d["attribution"]) if d.get("attribution") else None)


@dataclass
class Token:
    text: str
    box: Optional[Box] = None
    span: Optional[tuple[int, int]] = None
    page: Optional[int] = None
    step: Optional[int] = None
    tag: Optional[str] = None        # a gold or predicted token tag (BIO), when the reader has one


@dataclass
class Region:
    """An area of a page or image: an OCR line, a block, a table group, a detected object."""

    id: str
    box: Box
    kind: str                          # "line" | "block" | "table" | "object" | "image" | ...
    page: Optional[int] = None         # page index, or step index for procedures
    image: Optional[str] = None        # path of the image the box is on
    label: Optional[str] = None        # e.g. a detector class
    children: list[str] = field(default_factory=list)
    provenance: Optional[Provenance] = None


@dataclass
class Entity:
    id: str
    text: str
    label: str                          # question/answer/header/other, PER/ORG/..., or a procedure tag
    tokens: list[int] = field(default_factory=list)   # indices into Document.tokens
    span: Optional[tuple[int, int]] = None
    box: Optional[Box] = None
    page: Optional[int] = None
    step: Optional[int] = None
    provenance: Optional[Provenance] = None


@dataclass
class Relation:
    id: str
    head: str                           # entity id
    tail: str                           # entity id
    label: str                          # e.g. "question->answer", "/per/loc/place_of_birth", "Targ"
    provenance: Optional[Provenance] = None


@dataclass
class Grounding:
    entity: str                         # entity id
    region: Optional[str] = None        # region id, or None when the entity is not in the image
    box: Optional[Box] = None
    image: Optional[str] = None
    provenance: Optional[Provenance] = None


@dataclass
class Step:
    index: int
    text: str
    image: Optional[str] = None
    tokens: list[int] = field(default_factory=list)   # indices into Document.tokens


@dataclass
class Page:
    index: int
    width: float
    height: float
    image: Optional[str] = None
    unit: str = "px"                     # "px" (image pixels) or "pt" (PDF points)


@dataclass
class Document:
    id: str
    kind: DocKind
    source: str
    text: str = ""
    image: Optional[str] = None          # a post's image
    caption: Optional[str] = None        # a post's image description
    knowledge: Optional[str] = None      # a post's auxiliary knowledge (LLM-generated or given), see meta["knowledge_source"]
    pages: list[Page] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    groundings: list[Grounding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # --- lookups -------------------------------------------------------------------------
    def entity(self, entity_id: str) -> Entity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)

    def region(self, region_id: str) -> Region:
        for r in self.regions:
            if r.id == region_id:
                return r
        raise KeyError(region_id)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **_encode(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Document":
        version = d.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"document schema version {version!r} is newer than this graphmie reads "
                             f"({SCHEMA_VERSION})")
        return _decode(cls, d)


_NESTED = {"pages": Page, "tokens": Token, "steps": Step, "regions": Region, "entities": Entity,
           "relations": Relation, "groundings": Grounding}


def _encode(obj) -> Any:
    if isinstance(obj, Box):
        return obj.to_list()
    if isinstance(obj, Provenance):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        out = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if v is None or (isinstance(v, (list, dict)) and not v and f.name not in ("entities", "relations")):
                continue
            out[f.name] = _encode(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    return obj


def _decode(cls, d: dict):
    kwargs = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name == "box" and v is not None:
            v = Box.from_list(v)
        elif f.name == "provenance" and v is not None:
            v = Provenance.from_dict(v)
        elif f.name == "span" and v is not None:
            v = tuple(v)
        elif f.name in _NESTED and cls is Document:
            v = [_decode(_NESTED[f.name], x) for x in v]
        kwargs[f.name] = v
    return cls(**kwargs)


__all__ = ["Box", "Provenance", "Token", "Region", "Entity", "Relation", "Grounding", "Step", "Page",
           "Document", "asdict"]
