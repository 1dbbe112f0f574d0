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

from .geometry import (ALIGNMENTS, DIST_BUCKETS, DIST_EDGES, SECTORS, alignment, box_array, centers,
                       distance_bucket, gaps, median_height, same_lines, sector, sectors)
from .regions import analyse

NODE_TYPES = ("entity", "line", "block", "table")
CONTAIN = ("none", "contains", "inside")
#: edge feature layout: sector(8) | distance(4) | alignment(5) | containment(3) | continuous(3)
EDGE_DIM = len(SECTORS) + len(DIST_BUCKETS) + len(ALIGNMENTS) + len(CONTAIN) + 3
#: node geometry: x0,y0,x1,y1,w,h (page-normalised), log text height, node type one-hot
GEO_DIM = 7 + len(NODE_TYPES)


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
    i, j = np.repeat(np.arange(n), kk), nn.ravel()
    code = np.unique(np.minimum(i, j) * n + np.maximum(i, j))      # sorted, each pair once
    return list(zip((code // n).tolist(), (code % n).tolist()))


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
    (ax, ay), (bx, by) = centers(a), centers(b)
    sect = sectors(a, b)
    gap = np.hypot(*gaps(a, b))
    dist = np.searchsorted(np.array(DIST_EDGES), gap / max(unit, 1e-6), side="right")
    tol = 0.5 * unit
    align = np.stack([same_lines(a, b), np.abs(a[:, 0] - b[:, 0]) <= tol, np.abs(a[:, 2] - b[:, 2]) <= tol,
                      np.abs(ax - bx) <= tol, np.abs(a[:, 1] - b[:, 1]) <= tol], 1).astype(np.float32)
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
    v[:, o] = np.clip((bx - ax) / (30 * unit), -1.0, 1.0)
    v[:, o + 1] = np.clip((by - ay) / (30 * unit), -1.0, 1.0)
    v[:, o + 2] = np.log1p(gap / unit) / 4
    return v, sect, dist


def node_geometry(box: Box, width: float, height: float, unit: float, node_type: int) -> list[float]:
    g = [box.x0 / width, box.y0 / height, box.x1 / width, box.y1 / height, box.width / width,
         box.height / height, math.log1p(box.height / max(unit, 1e-6))]
    t = [0.0] * len(NODE_TYPES)
    t[node_type] = 1.0
    return g + t


def node_geometries(arr: np.ndarray, node_types: list[int], width: float, height: float, unit: float) -> np.ndarray:
    """:func:`node_geometry` for many nodes at once: ``arr`` node boxes ``[N, 4]`` -> ``[N, GEO_DIM]``."""
    w, h = arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]
    geo = np.zeros((len(arr), GEO_DIM), dtype=np.float32)
    geo[:, :6] = np.stack([arr[:, 0] / width, arr[:, 1] / height, arr[:, 2] / width, arr[:, 3] / height,
                           w / width, h / height], 1)
    geo[:, 6] = np.log1p(h / max(unit, 1e-6))
    geo[np.arange(len(arr)), 7 + np.asarray(node_types, dtype=np.int64)] = 1.0
    return geo


def region_boxes(arr: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """``[len(groups), 4]``: the box around each (non-empty) group of the boxes ``arr``, as
    ``Box.union`` of its members gives it."""
    if not groups:
        return np.zeros((0, 4))
    flat = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    return np.concatenate([np.minimum.reduceat(arr[flat, :2], starts), np.maximum.reduceat(arr[flat, 2:], starts)], 1)


def both_ways(a: np.ndarray, b: np.ndarray, fwd: np.ndarray, back: np.ndarray):
    """Directed edges ``a[k] -> b[k]`` (containment ``fwd[k]``), each followed by ``b[k] -> a[k]``
    (containment ``back[k]``): ``(src, dst, contain)``."""
    return np.stack([a, b], 1).ravel(), np.stack([b, a], 1).ravel(), np.stack([fwd, back], 1).ravel()


def build_layout_graph(boxes: list[Box], width: float, height: float, entity_x: torch.Tensor,
                       k: int = 8, regions: bool = True, edge_types: bool = True):
    """A PyG ``Data`` for one page.

    ``entity_x`` ``[n, F]`` are the entity node features (text embeddings and the like);
    a region node's features are the mean of its member entities'. The first ``n`` nodes
    are the entities, in the order of ``boxes``. Fields: ``x`` ``[N, F]``, ``geo``
    ``[N, GEO_DIM]``, ``node_type`` ``[N]``, ``edge_index`` ``[2, E]``, ``edge_attr``
    ``[E, EDGE_DIM]``, and for inspection ``edge_sector``, ``edge_distance``,
    ``edge_contain`` ``[E]``, ``n_entities``, ``regions`` (list of (kind, members)).
    Edges: each k-nearest pair both ways, then each region with each of its members, both ways.
    """
    from torch_geometric.data import Data

    n = len(boxes)
    unit = median_height(boxes)
    arr = box_array(boxes)
    node_types = [0] * n
    region_list = []                           # (kind, member entities) of each region node, in order
    owner, member = [], []                     # region edges: (region node, member node), in order

    def add_region(kind: str, ents: list[int], children: list[int]) -> int:
        r = n + len(region_list)
        node_types.append(NODE_TYPES.index(kind))
        region_list.append((kind, ents))
        owner.extend([r] * len(children))
        member.extend(children)
        return r

    if regions and n:
        lay = analyse(boxes, unit)
        line_node = {}
        groups = [("line", g) for g in lay.lines if len(g) > 1] + [("block", g) for g in lay.blocks]
        for kind, g in groups:
            r = add_region(kind, list(g), list(g))
            if kind == "line":
                line_node[tuple(g)] = r
        for rows in lay.tables:
            kids = []
            for row in rows:
                child = line_node.get(tuple(lay.lines[row]))
                kids.extend([child] if child is not None else lay.lines[row])
            add_region("table", [i for row in rows for i in lay.lines[row]], kids)
    knn = np.array(knn_pairs(boxes, k), dtype=np.int64).reshape(-1, 2)
    n_knn, n_reg = len(knn), len(owner)
    src, dst, cont = both_ways(np.concatenate([knn[:, 0], np.array(owner, dtype=np.int64)]),
                               np.concatenate([knn[:, 1], np.array(member, dtype=np.int64)]),
                               np.repeat(np.array([0, 1], dtype=np.int64), [n_knn, n_reg]),
                               np.repeat(np.array([0, 2], dtype=np.int64), [n_knn, n_reg]))
    node_arr = np.concatenate([arr, region_boxes(arr, [ents for _, ents in region_list])])
    x_parts = [entity_x] if n else [entity_x.new_zeros(0, entity_x.shape[-1])]
    if region_list:
        x_parts.append(torch.stack([entity_x[ents].mean(0) for _, ents in region_list]))
    geo = torch.from_numpy(node_geometries(node_arr, node_types, width, height, unit))
    attrs, sect, dist = edge_arrays(node_arr, src, dst, cont, unit)
    edge_attr = torch.from_numpy(attrs)
    if not edge_types:
        edge_attr = torch.zeros_like(edge_attr)
    return Data(x=torch.cat(x_parts).float(), geo=geo, node_type=torch.tensor(node_types, dtype=torch.long),
                edge_index=torch.from_numpy(np.stack([src, dst])), edge_attr=edge_attr,
                edge_sector=torch.from_numpy(sect), edge_distance=torch.from_numpy(dist),
                edge_contain=torch.from_numpy(cont), n_entities=n, unit=unit,
                regions=region_list, num_nodes=len(node_arr))
