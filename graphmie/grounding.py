"""Grounding as one service: entities -> image regions, for every task that grounds.

The entity task grounds the tagger's entities in the post's image, the post task the relation
arguments, the procedure task the objects and tools of each step in that step's image. All of
them call :meth:`Grounder.ground`, which

1. takes the candidate regions: given :class:`~graphmie.document.Region` / :class:`Box` lists, or
   the image's detections (``doc.meta["detections"]``), or the offline proposer
   (:func:`scene_graphs.proposals.propose_regions`);
2. lets the grounding method choose among them (:meth:`graphmie.methods.hindex.HIndex.choose`:
   the H-Index-style head, shipped weights ``entity_grounding``, from the entity's text embedding
   and each box's geometry) and decide groundability (the head's own, or a probability the caller
   supplies, e.g. the tagger's);
3. appends a :class:`~graphmie.document.Grounding` per entity (region or None) with provenance,
   and, given a FAISS :class:`~graphmie.retrieval.RegionIndex`, links each grounded region to the
   most similar regions of other images (``doc.meta["region_links"]``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .document import Box, Grounding, Provenance, Region
from .io import open_image

DEFAULT_WEIGHTS = "entity_grounding"


class Grounder:
    def __init__(self, method):
        self.method = method
        self.model_name = method.model_name

    @classmethod
    def load(cls, checkpoint=None) -> "Grounder":
        """The grounder of a grounding-head checkpoint (method ``hindex``; the shipped head by default)."""
        from .engine.checkpoint import load_checkpoint
        from .registry import methods

        ckpt = load_checkpoint(checkpoint, DEFAULT_WEIGHTS, method="hindex")
        return cls(methods.get(ckpt.method).from_checkpoint(ckpt))

    # --- candidates ---------------------------------------------------------------------
    @staticmethod
    def candidate_regions(doc, image_or_regions, max_regions: int = 20):
        """(regions, image path, image size) from Region/Box lists, the image's detections
        (``doc.meta["detections"]``) or the offline proposer. New regions are appended to ``doc``."""
        if isinstance(image_or_regions, (list, tuple)):
            regs = []
            for i, r in enumerate(image_or_regions):
                if isinstance(r, Box):
                    r = Region(f"r{len(doc.regions) + i}", r, "object", image=doc.image,
                               provenance=Provenance(doc.source, box=r, model="given"))
                regs.append(r)
            size = None
            if regs:
                size = (max(r.box.x1 for r in regs), max(r.box.y1 for r in regs))
                if regs[0].image:
                    try:
                        size = open_image(regs[0].image).size
                    except Exception:  # noqa: BLE001 - the boxes still define a usable frame
                        pass
            for r in regs:
                if r not in doc.regions:
                    doc.regions.append(r)
            return regs, regs[0].image if regs else None, size
        path = image_or_regions
        im = open_image(path) if not hasattr(path, "size") else path
        name = str(path) if not hasattr(path, "size") else (doc.image or "image")
        det = doc.meta.get("detections")
        if det is not None:
            from scene_graphs.visual import regions_from_detections

            norm, _ = regions_from_detections(det, Path(name).stem, image_size=im.size, where=doc.source)
            boxes = [Box(x0 * im.width, y0 * im.height, x1 * im.width, y1 * im.height) for x0, y0, x1, y1 in norm]
            model = "detections"
        else:
            from scene_graphs.proposals import propose_regions

            boxes = propose_regions(im, max_regions=max_regions)
            model = "scene_graphs.proposals"
        n = len(doc.regions)
        regs = [Region(f"r{n + i}", b, "object", image=name, provenance=Provenance(doc.source, box=b, model=model))
                for i, b in enumerate(boxes)]
        doc.regions.extend(regs)
        return regs, name, im.size

    # --- grounding ----------------------------------------------------------------------
    @torch.no_grad()
    def ground(self, doc, image_path_or_regions=None, entities=None, ground_probs: dict | None = None,
               max_regions: int = 20, threshold: float = 0.5, index=None, k_links: int = 5) -> list[Grounding]:
        """Ground ``entities`` (default: all of ``doc.entities``) in an image, H-Index style.

        ``image_path_or_regions``: an image path / PIL image (candidates = detections or the
        proposer), a list of Region/Box candidates, or None/[] (no image: every entity is
        ungroundable; None means ``doc.image`` when the document has one). ``ground_probs``
        ({entity id: p}) overrides the head's own groundability. Returns the new Groundings
        (also appended to ``doc.groundings``)."""
        ents = list(doc.entities if entities is None else entities)
        if not ents:
            return []
        if image_path_or_regions is None and doc.image:
            image_path_or_regions = doc.image
        regs, image, size = ([], None, None) if not image_path_or_regions else \
            self.candidate_regions(doc, image_path_or_regions, max_regions)
        choices = self.method.choose([f"{e.text} ({e.label})" for e in ents], [r.box for r in regs], size,
                                     threshold=threshold,
                                     ground_probs=None if ground_probs is None else [ground_probs.get(e.id) for e in ents])
        new = []
        for e, (j, score, p) in zip(ents, choices):
            if j is None:
                g = Grounding(e.id, None, image=image, provenance=Provenance(
                    doc.source, page=e.step, model=self.model_name, model_version=self.method.version,
                    score=round(1 - p, 4)))
            else:
                r = regs[j]
                g = Grounding(e.id, r.id, box=r.box, image=r.image or image, provenance=Provenance(
                    doc.source, page=e.step, box=r.box, model=self.model_name, model_version=self.method.version,
                    score=round(score * p, 4)))
            doc.groundings.append(g)
            new.append(g)
        if index is not None and any(g.region for g in new) and image:
            link_regions(doc, new, index, k_links)
        return new


def link_regions(doc, groundings, index, k: int) -> None:
    """``doc.meta["region_links"][entity id]``: the ``k`` most similar regions of other images."""
    from .encoders.image import get_image_encoder
    from .retrieval.index import RegionIndex

    idx = index if isinstance(index, RegionIndex) else RegionIndex.load(index)
    by_image: dict[str, list[Grounding]] = {}
    for g in groundings:
        if g.region and g.image:
            by_image.setdefault(str(g.image), []).append(g)
    links = doc.meta.setdefault("region_links", {})
    for image, gs in by_image.items():        # each grounding's box embedded on its own image
        q = get_image_encoder().encode(open_image(image), [g.box for g in gs]).numpy()
        for g, hits in zip(gs, idx.search(q, k + 1)):
            links[g.entity] = [{"image": m["image"], "box": m["box"], "score": round(s, 4)} for s, m in hits
                               if str(m["image"]) != image][:k]


@lru_cache(maxsize=4)
def get_grounder(checkpoint: str | None = None) -> Grounder:
    """The process-wide grounder for a checkpoint (the shipped head by default)."""
    return Grounder.load(checkpoint)


def ground_entities(doc, image_path_or_regions=None, **kw) -> list[Grounding]:
    """:meth:`Grounder.ground` with the shipped head (``checkpoint=`` picks another)."""
    return get_grounder(kw.pop("checkpoint", None)).ground(doc, image_path_or_regions, **kw)
