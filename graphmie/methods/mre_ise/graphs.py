"""MRE-ISE's graphs for one (post, entity pair): textual scene graph + visual scene graph -> cross-modal
graph (:mod:`scene_graphs`), its model tensors, and the visual evidence of a user's post.

The phrase vectors of the cross-modal graph are MiniLM's static word-piece embeddings (16 pieces,
:func:`graphmie.engine.embedder.get_static_embedder`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...document import Box, Document, Provenance, Region
from ...engine.embedder import get_static_embedder
from ...io import open_image

EMBED_PIECES = 16


def phrase_embedder():
    return get_static_embedder(EMBED_PIECES)


def parse_many(texts: list[str], progress: bool = True) -> dict:
    """Unique texts -> ``scene_graphs.textual.Parse``, parsed in one spaCy batch."""
    from tqdm import tqdm

    from scene_graphs.textual import from_spacy, get_spacy

    uniq = [t for t in dict.fromkeys(texts) if t]
    docs = get_spacy().pipe(uniq, batch_size=256)
    if progress and len(uniq) >= 500:
        docs = tqdm(docs, total=len(uniq), desc="parsing", unit="text")
    return {t: from_spacy(d) for t, d in zip(uniq, docs)}


@dataclass
class PostGraphs:
    tsg: object
    vsg: object
    cmg: object
    tensors: dict


def build_graphs(text_parse, head_span, tail_span, caption_parse=None, regions=(), crop_embeddings=None,
                 labels=None, use_visual: bool = True, threshold: float = 0.55) -> PostGraphs:
    """The TSG of the text (head/tail forced as objects), the VSG of the regions and caption
    (``use_visual``), their fusion and its tensors. Spans are character spans; regions normalised xyxy."""
    from scene_graphs.crossmodal import fuse, to_tensors
    from scene_graphs.textual import build_textual_graph
    from scene_graphs.visual import build_visual_graph

    embed = phrase_embedder()
    tsg = build_textual_graph(text_parse, entities=[head_span, tail_span])
    vsg = None
    if use_visual:
        cap = build_textual_graph(caption_parse, source="caption") if caption_parse is not None else None
        vsg = build_visual_graph(regions, caption_graph=cap, crop_embeddings=crop_embeddings, labels=labels)
    cmg = fuse(tsg, vsg, head_span, tail_span, embed=embed, threshold=threshold)
    return PostGraphs(tsg, vsg, cmg, to_tensors(cmg, embed))


def collate_graphs(gs: list[dict]) -> dict:
    """One disjoint-union batch of graph tensors (``batch``: the graph of each node)."""
    out = {k: [] for k in ("node_type", "role", "emb", "geo", "edge_index", "edge_type", "batch")}
    off = 0
    for b, g in enumerate(gs):
        n = g["node_type"].numel()
        for k in ("node_type", "role", "emb", "geo", "edge_type"):
            out[k].append(g[k])
        out["edge_index"].append(g["edge_index"] + off)
        out["batch"].append(torch.full((n,), b, dtype=torch.long))
        off += n
    return {k: torch.cat(v, dim=-1 if k == "edge_index" else 0) for k, v in out.items()}


@dataclass
class Visual:
    """A post's visual evidence: normalised xyxy regions, their labels and crop embeddings, the image size."""
    regions: list
    labels: list | None
    crop_embeddings: torch.Tensor | None
    size: tuple[int, int] | None
    evidence: list[str]


def post_visual(doc: Document, max_regions: int, max_detections: int) -> Visual:
    """Regions of the post's image (its detections, else region proposals, at most ``max_regions``;
    at most ``max_detections`` detections), their crop embeddings when there are pixels, and which
    evidence was used; the regions are added to ``doc`` (pixel boxes when the image is known)."""
    from scene_graphs.visual import regions_from_detections

    evidence, regions, labels, crop_emb, size = [], [], None, None, None
    image = open_image(doc.image) if doc.image else None
    if image is not None:
        size = image.size
    if doc.meta.get("detections") is not None:
        dropped: dict = {}
        regions, labels = regions_from_detections(doc.meta["detections"], Path(doc.image).stem if doc.image else None,
                                                  size, doc.meta.get("detections_file", doc.source), stats=dropped)
        if dropped:
            doc.meta["detections_fixed"] = dropped      # boxes clipped to the image / dropped outside it
        regions = regions[:max_detections]
        evidence.append("detections")
    elif image is not None:
        from scene_graphs.proposals import propose_regions

        boxes = propose_regions(image, max_regions=max_regions)
        regions = [[b.x0 / size[0], b.y0 / size[1], b.x1 / size[0], b.y1 / size[1]] for b in boxes]
        evidence.append("region proposals")
    if image is not None and regions:
        from ...encoders.image import get_image_encoder

        pix = [Box(r[0] * size[0], r[1] * size[1], max(r[2] * size[0], r[0] * size[0] + 1),
                   max(r[3] * size[1], r[1] * size[1] + 1)) for r in regions]
        crop_emb = get_image_encoder().encode(image, pix)
        evidence.insert(0, "image crops")
    if doc.caption:
        evidence.append("caption")
    if not evidence:
        evidence.append("none")
    model = "detections" if "detections" in evidence else "scene_graphs.proposals"
    for k, r in enumerate(regions):
        box = Box(r[0] * size[0], r[1] * size[1], r[2] * size[0], r[3] * size[1]) if size else Box(*r)
        doc.regions.append(Region(id=f"r{k}", box=box, kind="object", image=doc.image,
                                  label=(labels[k] if labels else None),
                                  provenance=Provenance(source=doc.image or doc.source, box=box, model=model)))
    doc.meta["visual_evidence"] = evidence
    doc.meta["region_coordinates"] = "pixels" if size else "normalised (no image given)"
    return Visual(regions, labels, crop_emb, size, evidence)
