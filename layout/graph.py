"""The RE²-style layout graph of a page (Ramu et al., "RE²: Region-Aware Relation
Extraction from Visually Rich Documents", NAACL 2024).

Nodes are the entity blocks plus *region* nodes at several levels (text lines, block /
paragraph stacks, table-like groups; see :mod:`layout.regions`). Edges are typed by the
spatial relation between the two boxes:

* **direction sector** of the target seen from the source (8 sectors of 45°, ``E`` … ``SE``);
* **distance bucket** of the empty space between the boxes, in median text heights;
* **alignment** flags (same line, left / right / centre edges, top edges);
* **containment** (a region contains an entity or a line, or lies inside one).

Entity–entity edges join every entity to its ``k`` nearest entities (by box gap), in both
directions; region edges join a region and its members, in both directions. Every edge
carries a feature vector: the one-hot type fields above plus continuous offsets. With
``edge_types=False`` those features are zeroed (the ablation "no edge types"); with
``regions=False`` no region nodes are built (the ablation "no regions").
"""
from __future__ import annotations

import math

import numpy as np
import torch

from graphmie.document import Box

from .geometry import (ALIGNMENTS, DIST_BUCKETS, DIST_EDGES, SECTORS, alignment, distance_bucket, median_height,
                       sector)
from .regions import analyse

NODE_TYPES = ("entity", "line", "block", "table")
CONTAIN = ("none", "contains", "inside")
#: edge feature layout: sector(8) | distance(4) | alignment(5) | containment(3) | continuous(3)
EDGE_DIM = len(SECTORS) + len(DIST_BUCKETS) + len(ALIGNMENTS) + len(CONTAIN) + 3
#: node geometry: x0,y0,x1,y1,w,h (page-normalised), log text height, node type one-hot
GEO_DIM = 7 + len(NODE_TYPES)


def box_array(boxes: list[Box]) -> np.ndarray:
    return np.array([b.to_list() for b in boxes], dtype=np.float64).reshape(-1, 4)


def gap_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise box-gap distances between two arrays of ``[x0,y0,x1,y1]``."""
    gx = np.maximum(0, np.maximum(a[:, None, 0], b[None, :, 0]) - np.minimum(a[:, None, 2], b[None, :, 2]))
    gy = np.maximum(0, np.maximum(a[:, None, 1], b[None, :, 1]) - np.minimum(a[:, None, 3], b[None, :, 3]))
    return np.hypot(gx, gy)


def knn_pairs(boxes: list[Box], k: int) -> list[tuple[int, int]]:
    """Undirected pairs (i, j), i < j, where j is among i's ``k`` nearest boxes or vice versa."""
    n = len(boxes)
    if n < 2:
        return []
    arr = box_array(boxes)
    d = gap_matrix(arr, arr)
    c = (arr[:, :2] + arr[:, 2:]) / 2
    d = d + 1e-3 * np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])  # tie-break
    np.fill_diagonal(d, np.inf)
    kk = min(k, n - 1)
    nn = np.argpartition(d, kk - 1, axis=1)[:, :kk]
    pairs = set()
    for i in range(n):
        for j in nn[i]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def edge_type(a: Box, b: Box, unit: float, contain: int = 0) -> dict:
    """The typed spatial relation of the edge a -> b."""
    return {"sector": sector(a, b), "distance": distance_bucket(a, b, unit),
            "alignment": alignment(a, b, tol=0.5 * unit), "contain": contain}


def edge_vector(a: Box, b: Box, unit: float, contain: int = 0) -> list[float]:
    """The feature vector of the edge a -> b (the definition :func:`edge_arrays` computes in bulk)."""
    t = edge_type(a, b, unit, contain)
    v = [0.0] * EDGE_DIM
    v[t["sector"]] = 1.0
    o = len(SECTORS)
    v[o + t["distance"]] = 1.0
    o += len(DIST_BUCKETS)
    for i, f in enumerate(t["alignment"]):
        v[o + i] = float(f)
    o += len(ALIGNMENTS)
    v[o + contain] = 1.0
    o += len(CONTAIN)
    (ax, ay), (bx, by) = a.center, b.center
    v[o] = max(-1.0, min(1.0, (bx - ax) / (30 * unit)))
    v[o + 1] = max(-1.0, min(1.0, (by - ay) / (30 * unit)))
    gx = max(0.0, max(a.x0, b.x0) - min(a.x1, b.x1))
    gy = max(0.0, max(a.y0, b.y0) - min(a.y1, b.y1))
    v[o + 2] = math.log1p(math.hypot(gx, gy) / unit) / 4
    return v


def edge_arrays(arr: np.ndarray, src: np.ndarray, dst: np.ndarray, contain: np.ndarray, unit: float):
    """:func:`edge_vector` for many edges at once (the same values): ``arr`` node boxes ``[N, 4]``;
    returns ``(features [E, EDGE_DIM], sector [E], distance bucket [E])``."""
    a, b = arr[src], arr[dst]
    E = len(src)
    ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    dx, dy = cb[:, 0] - ca[:, 0], ca[:, 1] - cb[:, 1]
    ang = np.degrees(np.arctan2(dy, dx)) % 360.0
    sect = (((ang + 22.5) % 360.0) // 45.0).astype(np.int64)
    sect[(dx == 0) & (dy == 0)] = 0
    gx = np.maximum(0.0, np.maximum(a[:, 0], b[:, 0]) - np.minimum(a[:, 2], b[:, 2]))
    gy = np.maximum(0.0, np.maximum(a[:, 1], b[:, 1]) - np.minimum(a[:, 3], b[:, 3]))
    gap = np.hypot(gx, gy)
    dist = np.searchsorted(np.array(DIST_EDGES), gap / max(unit, 1e-6), side="right")
    tol = 0.5 * unit
    inter = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    vov = np.maximum(0.0, inter) / np.maximum(np.minimum(a[:, 3] - a[:, 1], b[:, 3] - b[:, 1]), 1e-6)
    align = np.stack([vov >= 0.5, np.abs(a[:, 0] - b[:, 0]) <= tol, np.abs(a[:, 2] - b[:, 2]) <= tol,
                      np.abs(ca[:, 0] - cb[:, 0]) <= tol, np.abs(a[:, 1] - b[:, 1]) <= tol], 1).astype(np.float32)
    v = np.zeros((E, EDGE_DIM), dtype=np.float32)
    rows = np.arange(E)
    v[rows, sect] = 1.0
    o = len(SECTORS)
    v[rows, o + dist] = 1.0
    o += len(DIST_BUCKETS)
    v[:, o:o + len(ALIGNMENTS)] = align
    o += len(ALIGNMENTS)
    v[rows, o + contain] = 1.0
    o += len(CONTAIN)
    v[:, o] = np.clip((cb[:, 0] - ca[:, 0]) / (30 * unit), -1.0, 1.0)
    v[:, o + 1] = np.clip((cb[:, 1] - ca[:, 1]) / (30 * unit), -1.0, 1.0)
    v[:, o + 2] = np.log1p(gap / unit) / 4
    return v, sect, dist


def node_geometry(box: Box, width: float, height: float, unit: float, node_type: int) -> list[float]:
    g = [box.x0 / width, box.y0 / height, box.x1 / width, box.y1 / height, box.width / width,
         box.height / height, math.log1p(box.height / max(unit, 1e-6))]
    t = [0.0] * len(NODE_TYPES)
    t[node_type] = 1.0
    return g + t


def build_layout_graph(boxes: list[Box], width: float, height: float, entity_x: torch.Tensor,
                       k: int = 8, regions: bool = True, edge_types: bool = True):
    """A PyG ``Data`` for one page.

    ``entity_x`` ``[n, F]`` are the entity node features (text embeddings and the like);
    a region node's features are the mean of its member entities'. The first ``n`` nodes
    are the entities, in the order of ``boxes``. Fields: ``x`` ``[N, F]``, ``geo``
    ``[N, GEO_DIM]``, ``node_type`` ``[N]``, ``edge_index`` ``[2, E]``, ``edge_attr``
    ``[E, EDGE_DIM]``, and for inspection ``edge_sector``, ``edge_distance``,
    ``edge_contain`` ``[E]``, ``n_entities``, ``regions`` (list of (kind, members)).
    """
    from torch_geometric.data import Data

    n = len(boxes)
    unit = median_height(boxes)
    node_boxes = list(boxes)
    node_types = [0] * n
    members: list[list[int]] = [[i] for i in range(n)]
    src, dst, cont = [], [], []

    def add(i: int, j: int, contain: int = 0):
        src.append(i)
        dst.append(j)
        cont.append(contain)

    for i, j in knn_pairs(boxes, k):
        add(i, j)
        add(j, i)
    region_list = []
    if regions and n:
        lay = analyse(boxes, unit)
        line_node = {}
        groups = [("line", g) for g in lay.lines if len(g) > 1] + [("block", g) for g in lay.blocks]
        for kind, g in groups:
            r = len(node_boxes)
            box = boxes[g[0]]
            for i in g[1:]:
                box = box.union(boxes[i])
            node_boxes.append(box)
            node_types.append(NODE_TYPES.index(kind))
            members.append(list(g))
            region_list.append((kind, list(g)))
            if kind == "line":
                line_node[tuple(g)] = r
            for i in g:
                add(r, i, 1)
                add(i, r, 2)
        for rows in lay.tables:
            r = len(node_boxes)
            ents = [i for row in rows for i in lay.lines[row]]
            box = boxes[ents[0]]
            for i in ents[1:]:
                box = box.union(boxes[i])
            node_boxes.append(box)
            node_types.append(NODE_TYPES.index("table"))
            members.append(ents)
            region_list.append(("table", ents))
            for row in rows:
                child = line_node.get(tuple(lay.lines[row]))
                kids = [child] if child is not None else lay.lines[row]
                for c in kids:
                    add(r, c, 1)
                    add(c, r, 2)
    x_parts = [entity_x] if n else [entity_x.new_zeros(0, entity_x.shape[-1])]
    if len(node_boxes) > n:
        x_parts.append(torch.stack([entity_x[m].mean(0) for m in members[n:]]))
    geo = torch.tensor([node_geometry(b, width, height, unit, t) for b, t in zip(node_boxes, node_types)],
                       dtype=torch.float32).reshape(-1, GEO_DIM)
    attrs, sect, dist = edge_arrays(box_array(node_boxes), np.array(src, dtype=np.int64),
                                    np.array(dst, dtype=np.int64), np.array(cont, dtype=np.int64), unit)
    edge_attr = torch.from_numpy(attrs)
    if not edge_types:
        edge_attr = torch.zeros_like(edge_attr)
    return Data(x=torch.cat(x_parts).float(), geo=geo, node_type=torch.tensor(node_types, dtype=torch.long),
                edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1), edge_attr=edge_attr,
                edge_sector=torch.from_numpy(sect), edge_distance=torch.from_numpy(dist),
                edge_contain=torch.tensor(cont, dtype=torch.long), n_entities=n, unit=unit,
                regions=region_list, num_nodes=len(node_boxes))
