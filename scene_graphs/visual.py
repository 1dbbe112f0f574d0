"""Visual scene graph (VSG) of a post's image: a global image node, region nodes, spatial relations,
and the caption's own scene graph tied to the image node (the image-context bridge of CAMIM / Shap-CA).

Regions come from, in order of preference:

1. a **detections file** (``--detections``), in either format:
   * MNRE / FocalMRE: ``{"<img_stem>_crop_<k>.jpg": [cx, cy, w, h, area], ...}`` normalised to the
     image size (0..1); crops of other images in the same file are ignored;
   * generic: ``[{"box": [x0, y0, x1, y1], "label": "dog"?, "score": 0.9?}, ...]`` in pixels of the
     image (or ``{"boxes": [...]}``); pixel boxes need the image (for its size) unless all are <= 1;
2. the offline region proposer ``scene_graphs.proposals.propose_regions`` when only the image is given;
3. nothing (caption-only, or no visual evidence at all).

Spatial edges between two regions a, b (one label per pair, first rule that holds):
``contains`` (b inside a, 2% tolerance), ``overlaps`` (IoU > 0.1), ``near`` (gap between the boxes
< 10% of the image side), else ``left of`` (|dx| >= |dy|, from the left box) or ``above``.
Every region gets ``image -has_region-> region``; every caption object ``image -depicts-> object``.
When crop embeddings are given, two regions whose crops are very alike (cosine >= 0.85) also get
``looks_like``.
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

from graphmie.errors import GraphmieError

from .graph import Node, SceneGraph

CONTAIN_TOL = 0.02
OVERLAP_IOU = 0.1
NEAR_GAP = 0.1
LOOKS_LIKE = 0.85


def cxcywh_to_xyxy(b: Sequence[float]) -> list[float]:
    cx, cy, w, h = (float(v) for v in b[:4])
    return [max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)]


def _iou(a, b) -> float:
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _contains(a, b, tol=CONTAIN_TOL) -> bool:
    return a[0] - tol <= b[0] and a[1] - tol <= b[1] and b[2] <= a[2] + tol and b[3] <= a[3] + tol


def spatial_relation(a: Sequence[float], b: Sequence[float]) -> tuple[str, bool]:
    """Label for the pair (a, b) of normalised xyxy boxes, and whether the edge goes a -> b (else b -> a)."""
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    if _contains(a, b) and area_a >= area_b:
        return "contains", True
    if _contains(b, a):
        return "contains", False
    if _iou(a, b) > OVERLAP_IOU:
        return "overlaps", True
    gap_x = max(b[0] - a[2], a[0] - b[2], 0.0)
    gap_y = max(b[1] - a[3], a[1] - b[3], 0.0)
    if max(gap_x, gap_y) < NEAR_GAP:
        return "near", True
    dx = (b[0] + b[2] - a[0] - a[2]) / 2
    dy = (b[1] + b[3] - a[1] - a[3]) / 2
    if abs(dx) >= abs(dy):
        return "left of", dx > 0
    return "above", dy > 0


def build_visual_graph(regions: Sequence[Sequence[float]] = (), caption_graph: Optional[SceneGraph] = None,
                       crop_embeddings=None, labels: Optional[Sequence[Optional[str]]] = None,
                       image_text: str = "image") -> SceneGraph:
    """VSG from normalised xyxy region boxes (+ optional caption scene graph and crop embeddings)."""
    g = SceneGraph()
    g.add_node(Node("img", "image", image_text, source="image"))
    for k, b in enumerate(regions):
        lab = labels[k] if labels else None
        g.add_node(Node(f"reg{k}", "region", lab or f"region {k}", box=[round(float(v), 4) for v in b],
                        source="image", label=lab))
        g.add_edge("img", f"reg{k}", "has_region")
    for i in range(len(regions)):
        for j in range(i + 1, len(regions)):
            lab, fwd = spatial_relation(regions[i], regions[j])
            a, b = (f"reg{i}", f"reg{j}") if fwd else (f"reg{j}", f"reg{i}")
            g.add_edge(a, b, lab)
    if crop_embeddings is not None and len(regions) > 1:
        sims = (crop_embeddings @ crop_embeddings.T).tolist()
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                if sims[i][j] >= LOOKS_LIKE:
                    g.add_edge(f"reg{i}", f"reg{j}", "looks_like")
    if caption_graph is not None:
        cg = caption_graph.prefixed("cap:")
        for n in cg.nodes:
            n.source = "caption"
        g.nodes += cg.nodes
        g.edges += cg.edges
        for n in cg.nodes:
            if n.kind == "object":
                g.add_edge("img", n.id, "depicts")
    return g


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(vals, where: str, what: str) -> None:
    if not all(math.isfinite(v) for v in vals):
        raise GraphmieError("E009", where, detail=f"{what}: {list(vals)} (coordinates must be finite)")


def parse_detections(d: dict, where: str = "detections") -> dict[str, list[list[float]]]:
    """``{"<img_stem>_crop_<k>.jpg": [cx, cy, w, h, area]}`` -> ``{img_stem: [[cx, cy, w, h, area], ...]}``
    ordered by k (the area is computed when only four values are given). Values are normalised to the
    image size (0..1); a value that is not finite is ``E009``."""
    out: dict[str, list[tuple[int, list[float]]]] = {}
    for key, val in d.items():
        m = re.match(r"^(.*)_crop_(\d+)\.\w+$", key)
        if not m or not isinstance(val, list) or len(val) < 4 or not all(_number(v) for v in val[:5]):
            raise GraphmieError("E004", where, detail=f"entry {key!r}: expected '<img>_crop_<k>.jpg': [cx,cy,w,h,area]")
        vals = [float(v) for v in val[:5]]
        _finite(vals, where, f"entry {key!r}")
        if len(vals) == 4:
            vals.append(vals[2] * vals[3])
        out.setdefault(m.group(1), []).append((int(m.group(2)), vals))
    return {k: [v for _, v in sorted(lst)] for k, lst in out.items()}


def _clip(box: list[float], stats: Optional[dict]) -> Optional[list[float]]:
    """A normalised box clipped to the image; None (counted as ``outside_image``) when nothing of it is
    inside; a box that had to be cut is counted as ``clipped``."""
    c = [min(max(v, 0.0), 1.0) for v in box]
    if c[2] <= c[0] or c[3] <= c[1]:
        if stats is not None:
            stats["outside_image"] = stats.get("outside_image", 0) + 1
        return None
    if c != box and stats is not None:
        stats["clipped"] = stats.get("clipped", 0) + 1
    return c


def regions_from_detections(det, img_stem: Optional[str] = None, image_size: Optional[tuple[int, int]] = None,
                            where: str = "detections", stats: Optional[dict] = None
                            ) -> tuple[list[list[float]], list[Optional[str]]]:
    """Normalised xyxy boxes (+ labels) from a parsed detections file (see the module docstring).

    Boxes are clipped to the image; one wholly outside it (or of zero area) is dropped. ``stats``,
    when given, counts them (``clipped``, ``outside_image``). A coordinate that is not a finite
    number is ``E009``."""
    if isinstance(det, dict) and "boxes" in det:
        det = det["boxes"]
    if isinstance(det, dict):
        per_image = parse_detections(det, where)
        if img_stem is not None and img_stem in per_image:
            rows = per_image[img_stem]
        elif len(per_image) == 1:
            rows = next(iter(per_image.values()))
        elif img_stem is not None:
            rows = []
        else:
            raise GraphmieError("E004", where, detail="detections for several images; give the post's image")
        cx, cy, w, h = zip(*[r[:4] for r in rows]) if rows else ((), (), (), ())
        boxes = [_clip([a - c / 2, b - d / 2, a + c / 2, b + d / 2], stats) for a, b, c, d in zip(cx, cy, w, h)]
        return [b for b in boxes if b is not None], [None] * sum(b is not None for b in boxes)
    if not isinstance(det, list):
        raise GraphmieError("E004", where, detail="expected a {crop: [cx,cy,w,h,area]} object or a list of boxes")
    boxes, labels = [], []
    for k, d in enumerate(det):
        b = d.get("box") if isinstance(d, dict) else d
        if not isinstance(b, (list, tuple)) or len(b) != 4 or not all(_number(v) for v in b):
            raise GraphmieError("E004", where, detail=f"detection {k}: 'box' must be [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (float(v) for v in b)
        _finite((x0, y0, x1, y1), where, f"detection {k}")
        if x1 < x0 or y1 < y0:
            raise GraphmieError("E009", where, detail=f"detection {k}: box {list(b)} has x1<x0 or y1<y0")
        if max(x1, y1) > 1.0:
            if image_size is None:
                raise GraphmieError("E004", where, detail="pixel boxes need the image (for its size)")
            w, h = image_size
            x0, x1, y0, y1 = x0 / w, x1 / w, y0 / h, y1 / h
        box = _clip([x0, y0, x1, y1], stats)
        if box is None:
            continue
        label = d.get("label") if isinstance(d, dict) else None
        boxes.append(box)
        labels.append(label if isinstance(label, str) else None)
    return boxes, labels
