"""One internal graph of facts, fed to every writer (RDF, Cypher, Neo4j CSV, stores).

A :class:`~graphmie.document.Document` becomes a stream of :class:`Node` and :class:`Edge`
records: a small labelled property graph. The RDF writers map it to quads (with PROV-O
provenance in named graphs), the Cypher / CSV / bolt / LadybugDB writers map it to
``MERGE`` statements. Because every writer reads the same records, every export of a
document says the same thing.

Identifiers are derived from content (a BLAKE2b hash of the document's kind, source and
id, and of each fact's own content: label, text, span, box, model), never from run order or
time, so exporting the same input twice gives identical output and re-loading a document
after a crash merges into what is already there instead of duplicating it.

Input hygiene, done here once for every writer:

* text is made valid Unicode: lone surrogates (from ``surrogateescape`` decoding of
  non-UTF-8 bytes) become U+FFFD; nothing else is altered (writers escape quotes,
  backslashes, newlines and control characters for their own syntax);
* non-finite numbers (NaN, +-inf scores) are dropped: the fact stays, without the value;
* file paths and IRIs are turned into valid absolute IRIs (see :func:`to_iri`).
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import quote

from graphmie.document import Box, Document, Provenance

#: vocabulary namespace (classes and properties, see ``graphmie.ttl``)
NS = "https://w3id.org/graphmie/ns#"
#: instance namespace: ``ID + "<label>/<key>"``
ID = "https://w3id.org/graphmie/id/"
#: relation predicates: ``REL + <percent-encoded relation label>``
REL = "https://w3id.org/graphmie/rel/"
#: entity types: ``TYPE + <percent-encoded entity label>``
TYPE = "https://w3id.org/graphmie/type/"


class IRI(str):
    """A property value that is an IRI (an RDF node), not a string literal."""

    __slots__ = ()


@dataclass(slots=True)
class Node:
    """A node: ``label`` (Document, Page, Step, Region, Entity), a stable ``key`` and properties."""

    label: str
    key: str
    props: dict
    types: tuple = ()          # extra RDF classes (full IRIs), e.g. the entity's type

    @property
    def uid(self) -> str:
        return f"{self.label.lower()}/{self.key}"


@dataclass(slots=True)
class Edge:
    """A directed edge. Edges with a ``key`` are assertions (relations, groundings) that carry
    provenance; edges without one are structure (document has entity, entity in step...)."""

    type: str
    src_label: str
    src: str
    dst_label: str
    dst: str
    key: Optional[str] = None
    props: dict = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return f"{self.type.lower()}/{self.key}"


# --- hygiene -------------------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(s) -> str:
    """A str that encodes as UTF-8: lone surrogates are replaced by U+FFFD."""
    s = str(s)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", s)


def finite(v) -> Optional[float]:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def stable_key(*parts) -> str:
    """80-bit hex digest of the parts (unit-separator joined); the content-derived id."""
    h = hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "replace"),
                        digest_size=10)
    return h.hexdigest()


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# characters that may not appear in an IRIREF, plus '%' that is not a valid escape
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]|%(?![0-9A-Fa-f]{2})')


def _pct(m: re.Match) -> str:
    return "".join(f"%{b:02X}" for b in m.group(0).encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def to_iri(ref: str) -> str:
    """A valid absolute IRI for a path or IRI.

    Strings with a scheme of two or more letters (``https:``, ``file:``, ``inline:``) are kept
    and any character not allowed in an IRI is percent-encoded; anything else is a file path,
    made absolute and written as a ``file://`` IRI.
    """
    ref = clean_text(ref)
    if not _SCHEME.match(ref):
        ref = Path(ref).absolute().as_uri()
    return _BAD_IRI.sub(_pct, ref)


def label_path(label: str) -> str:
    """Percent-encode a label as an IRI path: ``/per/loc/place_of_birth`` -> ``per/loc/place_of_birth``,
    ``question->answer`` -> ``question-%3Eanswer``. Only ``[A-Za-z0-9_~-/]`` stay as they are."""
    s = clean_text(label).strip("/")
    return quote(s, safe="/-_~").replace(".", "%2E") or "_"


def media_fragment(image_iri: str, box: Box, unit: str = "px", page: Optional[int] = None) -> str:
    """The IRI of a box on its image: W3C Media Fragments ``<image>#xywh=x,y,w,h`` in whole pixels
    covering the box; on a PDF page (``unit == "pt"``), RFC 8118's ``<file.pdf>#page=N&viewrect=
    left,top,width,height`` in PDF points (pages counted from 1)."""
    x, y = math.floor(box.x0), math.floor(box.y0)
    w, h = math.ceil(box.x1) - x, math.ceil(box.y1) - y
    base = image_iri.split("#", 1)[0]
    if unit == "pt":
        return f"{base}#page={(page or 0) + 1}&viewrect={max(x, 0)},{max(y, 0)},{max(w, 0)},{max(h, 0)}"
    return f"{base}#xywh={max(x, 0)},{max(y, 0)},{max(w, 0)},{max(h, 0)}"


# --- document -> facts ---------------------------------------------------------------------
def _box_props(props: dict, box: Optional[Box], image_iri: Optional[str], unit: str = "px",
               page: Optional[int] = None) -> None:
    if box is None:
        return
    props["x0"], props["y0"], props["x1"], props["y1"] = (float(box.x0), float(box.y0), float(box.x1),
                                                          float(box.y1))
    if image_iri:
        props["mediaFragment"] = IRI(media_fragment(image_iri, box, unit, page))


def _prov_props(props: dict, prov: Optional[Provenance], image_iri: Optional[str] = None) -> None:
    if prov is None:
        return
    props["provSource"] = clean_text(prov.source)
    if prov.page is not None:
        props["provPage"] = int(prov.page)
    if prov.span is not None:
        props["spanStart"], props["spanEnd"] = int(prov.span[0]), int(prov.span[1])
    if prov.box is not None:
        props["provX0"], props["provY0"], props["provX1"], props["provY1"] = (
            float(prov.box.x0), float(prov.box.y0), float(prov.box.x1), float(prov.box.y1))
    if prov.model:
        props["model"] = clean_text(prov.model)
    if prov.model_version:
        props["modelVersion"] = clean_text(prov.model_version)
    score = finite(prov.score)
    if score is not None:
        props["score"] = score
    if prov.evidence:
        props["evidence"] = clean_text(",".join(prov.evidence))
    if prov.attribution:
        props["attribution"] = ",".join(f"{clean_text(str(k))}={finite(v) or 0.0:g}" for k, v in prov.attribution.items())


def _box_tuple(box: Optional[Box]):
    return None if box is None else tuple(round(float(v), 2) for v in box.to_list())


def doc_key(doc: Document) -> str:
    """Identity of one extraction result: the input document and the task that read it, so that
    e.g. ``--task post`` and ``--task entity`` over the same post coexist in a store, while a
    re-run of the same task replaces its own earlier result."""
    return stable_key("doc", doc.kind, doc.source, doc.id, doc.meta.get("task"))


def document_facts(doc: Document) -> Iterator[Node | Edge]:
    """All facts of one document, in a fixed order: the document, pages, steps, regions,
    entities, relations, groundings. Each node precedes the edges that use it."""
    dk = doc_key(doc)
    src_iri = to_iri(doc.source) if doc.source else None
    doc_image = to_iri(doc.image) if doc.image else None
    dprops = {"docId": clean_text(doc.id), "kind": doc.kind, "source": clean_text(doc.source)}
    if src_iri:
        dprops["sourceIri"] = IRI(src_iri)
    if doc.text:
        dprops["text"] = clean_text(doc.text)
    if doc_image:
        dprops["image"] = IRI(doc_image)
    if doc.caption:
        dprops["caption"] = clean_text(doc.caption)
    if doc.knowledge:
        dprops["knowledge"] = clean_text(doc.knowledge)
    yield Node("Document", dk, dprops, (NS + doc.kind.capitalize(),))

    page_image, page_unit = {}, {}
    for p in doc.pages:
        pk = stable_key(dk, "page", p.index)
        props = {"pageIndex": int(p.index), "unit": clean_text(p.unit)}
        page_unit[p.index] = p.unit
        for k, v in (("width", p.width), ("height", p.height)):
            if finite(v) is not None:
                props[k] = float(v)
        if p.image:
            page_image[p.index] = to_iri(p.image)
            props["image"] = IRI(page_image[p.index])
        yield Node("Page", pk, props)
        yield Edge("HAS_PAGE", "Document", dk, "Page", pk)

    step_keys, step_image = {}, {}
    prev = None
    for st in doc.steps:
        sk = stable_key(dk, "step", st.index)
        step_keys[st.index] = sk
        props = {"stepIndex": int(st.index), "text": clean_text(st.text)}
        if st.image:
            step_image[st.index] = to_iri(st.image)
            props["image"] = IRI(step_image[st.index])
        yield Node("Step", sk, props)
        yield Edge("HAS_STEP", "Document", dk, "Step", sk)
        if prev is not None:
            yield Edge("NEXT", "Step", prev, "Step", sk)
        prev = sk

    def image_of(image: Optional[str], page: Optional[int]) -> Optional[str]:
        if image:
            return to_iri(image)
        if page is not None:
            if doc.kind == "procedure" and page in step_image:
                return step_image[page]
            if page in page_image:
                return page_image[page]
        return doc_image or src_iri

    region_keys: dict[str, str] = {}
    region_set: set[str] = set()
    for r in doc.regions:
        rk = stable_key(dk, "region", r.kind, r.image, r.page, _box_tuple(r.box))
        if rk in region_set:
            rk = stable_key(rk, r.id)
        region_keys[r.id] = rk
        region_set.add(rk)
        img = image_of(r.image, r.page)
        props = {"regionId": clean_text(r.id), "kind": clean_text(r.kind)}
        if r.page is not None:
            props["page"] = int(r.page)
        if img:
            props["image"] = IRI(img)
        if r.label:
            props["label"] = clean_text(r.label)
        _box_props(props, r.box, img, page_unit.get(r.page, "px"), r.page)
        _prov_props(props, r.provenance)
        yield Node("Region", rk, props)
        yield Edge("HAS_REGION", "Document", dk, "Region", rk)

    ent_keys: dict[str, str] = {}
    seen: set[str] = set()
    for e in doc.entities:
        ek = stable_key(dk, "entity", e.label, e.text, e.span, _box_tuple(e.box), e.page, e.step)
        if ek in seen:  # two entities with identical content: keep them apart by their ids
            ek = stable_key(ek, e.id)
        seen.add(ek)
        ent_keys[e.id] = ek
        img = image_of(None, e.step if e.step is not None else e.page)
        props = {"entityId": clean_text(e.id), "text": clean_text(e.text), "label": clean_text(e.label)}
        if e.span is not None:
            props["charStart"], props["charEnd"] = int(e.span[0]), int(e.span[1])
        if e.page is not None:
            props["page"] = int(e.page)
        if e.step is not None:
            props["step"] = int(e.step)
        _box_props(props, e.box, img if e.box is not None else None, page_unit.get(e.page, "px"), e.page)
        _prov_props(props, e.provenance)
        yield Node("Entity", ek, props, (TYPE + label_path(e.label),))
        yield Edge("HAS_ENTITY", "Document", dk, "Entity", ek)
        if e.step is not None and e.step in step_keys:
            yield Edge("IN_STEP", "Entity", ek, "Step", step_keys[e.step])

    asserted: set[str] = set()
    for rel in doc.relations:
        h, t = ent_keys.get(rel.head), ent_keys.get(rel.tail)
        if h is None or t is None:
            continue  # dangling relation (check_document reports it)
        p = rel.provenance
        key = stable_key(dk, "relation", h, rel.label, t, p and p.model, p and p.model_version)
        if key in asserted:  # the same assertion twice in one document: the first one stands
            continue
        asserted.add(key)
        props = {"relationId": clean_text(rel.id), "label": clean_text(rel.label),
                 "predicate": IRI(REL + label_path(rel.label))}
        _prov_props(props, p)
        yield Edge("RELATED", "Entity", h, "Entity", t, key, props)

    for g in doc.groundings:
        ek = ent_keys.get(g.entity)
        if ek is None:
            continue
        p = g.provenance
        rk = region_keys.get(g.region) if g.region else None
        if g.region and rk is None and g.box is None:
            continue  # unknown region (check_document reports it)
        if rk is None and g.box is not None:  # a box without a region: the region is made here
            img = image_of(g.image, None)
            rk = stable_key(dk, "region", "grounding", g.image, None, _box_tuple(g.box))
            if rk not in region_set:
                region_set.add(rk)
                props = {"regionId": rk, "kind": "grounding"}
                if img:
                    props["image"] = IRI(img)
                _box_props(props, g.box, img)
                yield Node("Region", rk, props)
                yield Edge("HAS_REGION", "Document", dk, "Region", rk)
        key = stable_key(dk, "grounding", ek, rk, p and p.model, p and p.model_version)
        if key in asserted:
            continue
        asserted.add(key)
        props = {}
        _prov_props(props, p)
        if rk is None:
            yield Edge("NOT_DEPICTED_IN", "Entity", ek, "Document", dk, key, props)
        else:
            yield Edge("GROUNDED_IN", "Entity", ek, "Region", rk, key, props)


def check_document(doc: Document, where=None) -> None:
    """Raise a clear GraphmieError for facts that point at nothing."""
    from graphmie.errors import GraphmieError

    ids = {e.id for e in doc.entities}
    for r in doc.relations:
        for end in (r.head, r.tail):
            if end not in ids:
                raise GraphmieError("E012", where or doc.source,
                                    detail=f"relation {r.id!r} refers to unknown entity {end!r}")
    regions = {r.id for r in doc.regions}
    for g in doc.groundings:
        if g.entity not in ids:
            raise GraphmieError("E012", where or doc.source,
                                detail=f"grounding refers to unknown entity {g.entity!r}")
        if g.region is not None and g.region not in regions and g.box is None:
            raise GraphmieError("E012", where or doc.source,
                                detail=f"grounding of {g.entity!r} refers to unknown region {g.region!r}")


# --- property-graph schema (Cypher, Neo4j CSV, LadybugDB) ------------------------------------
_PROV = [("provSource", "STRING"), ("provPage", "INT64"), ("spanStart", "INT64"), ("spanEnd", "INT64"),
         ("provX0", "DOUBLE"), ("provY0", "DOUBLE"), ("provX1", "DOUBLE"), ("provY1", "DOUBLE"),
         ("model", "STRING"), ("modelVersion", "STRING"), ("score", "DOUBLE"), ("evidence", "STRING"),
         ("attribution", "STRING")]
_BOX = [("x0", "DOUBLE"), ("y0", "DOUBLE"), ("x1", "DOUBLE"), ("y1", "DOUBLE"), ("mediaFragment", "STRING")]

#: node label -> [(property, type)]; every node also has ``id`` (its ``label/key`` uid), the primary key
NODE_SCHEMA: dict[str, list[tuple[str, str]]] = {
    "Document": [("docId", "STRING"), ("kind", "STRING"), ("source", "STRING"), ("sourceIri", "STRING"),
                 ("text", "STRING"), ("image", "STRING"), ("caption", "STRING"),
                 ("knowledge", "STRING")],
    "Page": [("pageIndex", "INT64"), ("unit", "STRING"), ("width", "DOUBLE"), ("height", "DOUBLE"),
             ("image", "STRING")],
    "Step": [("stepIndex", "INT64"), ("text", "STRING"), ("image", "STRING")],
    "Region": [("regionId", "STRING"), ("kind", "STRING"), ("page", "INT64"), ("image", "STRING"),
               ("label", "STRING")] + _BOX + _PROV,
    "Entity": [("entityId", "STRING"), ("text", "STRING"), ("label", "STRING"), ("charStart", "INT64"),
               ("charEnd", "INT64"), ("page", "INT64"), ("step", "INT64")] + _BOX + _PROV,
}
#: edge type -> (from label, to label, [(property, type)]); keyed edges also have ``id``
EDGE_SCHEMA: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "HAS_PAGE": ("Document", "Page", []),
    "HAS_STEP": ("Document", "Step", []),
    "NEXT": ("Step", "Step", []),
    "HAS_REGION": ("Document", "Region", []),
    "HAS_ENTITY": ("Document", "Entity", []),
    "IN_STEP": ("Entity", "Step", []),
    "RELATED": ("Entity", "Entity", [("id", "STRING"), ("relationId", "STRING"), ("label", "STRING"),
                                     ("predicate", "STRING")] + _PROV),
    "GROUNDED_IN": ("Entity", "Region", [("id", "STRING")] + _PROV),
    "NOT_DEPICTED_IN": ("Entity", "Document", [("id", "STRING")] + _PROV),
}
