"""A FAISS index of region embeddings (EfficientNet-Lite0 crops, 1280-d, L2-normalised; cosine = inner product).

Index kinds:

- ``flat``: exact inner-product search (``IndexFlatIP``).
- ``ivf``: ``IndexIVFFlat`` with ``nlist = sqrt(n)`` inverted lists (k-means, 10 iterations); ``nprobe`` is
  *calibrated at build time*: up to 200 stored vectors are searched exactly (their self-match
  removed) and ``nprobe`` is doubled until the approximate top-k recall reaches ``target_recall``
  (default 0.97, a margin over the 0.95 goal).
- ``hnsw``: ``IndexHNSWFlat`` (M=32); ``efSearch`` calibrated the same way.
- ``auto``: flat up to 20,000 vectors, ivf above.

Metadata (image path, box, region kind) is a JSON list beside the index; every file of an
index folder is written atomically (temp file + rename).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..document import Box
from ..errors import GraphmieError
from ..io import atomic_write_bytes, atomic_write_text

AUTO_FLAT_MAX = 20_000


def _faiss():
    try:
        import faiss
    except ImportError:
        raise GraphmieError("E015", None, detail="faiss-cpu") from None
    return faiss


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k ids found in the approximate top-k."""
    return float(np.mean([len(set(a[a >= 0]) & set(e[e >= 0])) / max(int((e >= 0).sum()), 1)
                          for a, e in zip(approx, exact)]))


def _calibrate(index, x: np.ndarray, k: int, target: float, set_param, values, seed: int = 0):
    """Smallest search parameter (from ``values``) whose recall@k vs exact search reaches ``target``.

    Up to 200 stored vectors serve as queries; each one's own hit is removed from both the exact
    and the approximate result lists (a stored vector trivially finds itself, which would make
    the estimate optimistic), so this measures recall on the k *other* neighbours."""
    faiss = _faiss()
    rng = np.random.default_rng(seed)
    qi = rng.choice(len(x), size=min(200, len(x)), replace=False)
    q = x[qi]
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    kk = min(k + 1, len(x))
    _, gt = exact.search(q, kk)

    def drop_self(ids):
        return np.array([[i for i in row if i != s][:kk - 1] + [-1] * (kk - 1 - len([i for i in row if i != s][:kk - 1]))
                         for row, s in zip(ids, qi)])

    gt = drop_self(gt)
    rec, v = 0.0, values[0]
    for v in values:
        set_param(v)
        _, ids = index.search(q, kk)
        rec = recall_at_k(drop_self(ids), gt)
        if rec >= target:
            break
    return v, rec


TRAIN_PER_LIST = 40          # k-means training points per inverted list


def make_ivf(d: int, n: int):
    """An untrained ``IndexIVFFlat`` (inner product) with ``nlist = sqrt(n)`` (at most n/39) lists."""
    faiss = _faiss()
    nlist = max(1, min(int(math.sqrt(n)), n // 39))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    return index, nlist


def nprobe_values(nlist: int) -> list[int]:
    return [v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if v < nlist] + [nlist]


@dataclass
class RegionIndex:
    index: object
    meta: list[dict]
    info: dict = field(default_factory=dict)

    # --- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, vectors: np.ndarray, meta: list[dict], kind: str = "auto", target_recall: float = 0.97,
              k: int = 10, seed: int = 0) -> "RegionIndex":
        faiss = _faiss()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(meta):
            raise GraphmieError("E012", None, detail=f"{x.shape} vectors for {len(meta)} metadata rows")
        n, d = x.shape
        if kind == "auto":
            kind = "flat" if n <= AUTO_FLAT_MAX else "ivf"
        info = {"kind": kind, "dim": d, "n": n, "metric": "inner_product"}
        if kind == "flat" or n == 0:
            index = faiss.IndexFlatIP(d)
            index.add(x)
        elif kind == "ivf":
            index, nlist = make_ivf(d, n)
            rng = np.random.default_rng(seed)
            index.train(x[rng.choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False)])
            index.add(x)
            nprobe, rec = _calibrate(index, x, min(k, n), target_recall, lambda v: setattr(index, "nprobe", v),
                                     nprobe_values(nlist))
            index.nprobe = nprobe
            info.update(nlist=nlist, nprobe=nprobe, calibrated_recall=rec)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.add(x)
            ef, rec = _calibrate(index, x, min(k, n), target_recall,
                                 lambda v: setattr(index.hnsw, "efSearch", v), [16, 32, 64, 128, 256, 512])
            index.hnsw.efSearch = ef
            info.update(M=32, efSearch=ef, calibrated_recall=rec)
        else:
            raise GraphmieError("E022", None, name="index kind", value=kind, choices="flat, ivf, hnsw, auto")
        return cls(index, list(meta), info)

    # --- search --------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 10) -> list[list[tuple[float, dict]]]:
        """Per query: up to ``k`` (score, metadata) pairs, best first."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.info.get("dim", q.shape[1]):
            raise GraphmieError("E012", None, detail=f"query dim {q.shape[1]} != index dim {self.info['dim']}")
        if self.index.ntotal == 0:
            return [[] for _ in q]
        scores, ids = self.index.search(q, min(k, self.index.ntotal))
        return [[(float(s), self.meta[i]) for s, i in zip(srow, irow) if i >= 0] for srow, irow in zip(scores, ids)]

    # --- persistence ---------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "index.faiss", faiss.serialize_index(self.index).tobytes())
        atomic_write_text(folder / "meta.json", json.dumps(self.meta))
        atomic_write_text(folder / "info.json", json.dumps(self.info, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "RegionIndex":
        faiss = _faiss()
        folder = Path(folder)
        for name in ("index.faiss", "meta.json", "info.json"):
            if not (folder / name).exists():
                raise GraphmieError("E016", folder, detail=f"no {name} (build it with 'graphmie index')")
        try:
            index = faiss.deserialize_index(np.frombuffer((folder / "index.faiss").read_bytes(), dtype=np.uint8))
        except RuntimeError as e:
            raise GraphmieError("E010", folder / "index.faiss", detail=str(e).splitlines()[0]) from None
        from ..io import read_json

        meta, info = read_json(folder / "meta.json"), read_json(folder / "info.json")
        if len(meta) != index.ntotal:
            raise GraphmieError("E012", folder, detail=f"{index.ntotal} vectors but {len(meta)} metadata rows")
        if "nprobe" in info:
            index.nprobe = info["nprobe"]
        if "efSearch" in info:
            index.hnsw.efSearch = info["efSearch"]
        return cls(index, meta, info)


def link_regions(index: RegionIndex, vectors: np.ndarray, meta: list[dict], k: int = 10,
                 min_score: float = 0.85) -> list[list[int]]:
    """Link the same object across posts: regions of *different* images whose embeddings are
    mutual near neighbours (cosine >= ``min_score``) are joined (union-find). Returns clusters of
    row indices into ``meta`` (only clusters spanning 2+ images)."""
    parent = list(range(len(meta)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pos = {(m["image"], tuple(m["box"])): i for i, m in enumerate(meta)}
    for i, hits in enumerate(index.search(vectors, k)):
        for s, m in hits:
            j = pos.get((m["image"], tuple(m["box"])))
            if j is not None and s >= min_score and m["image"] != meta[i]["image"]:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(meta)):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len({meta[i]["image"] for i in g}) > 1]


_CROP = re.compile(r"^(.*)_crop_\d+\.\w+$")


def load_detections(path: str | Path) -> dict[str, list[Box | tuple]]:
    """Detections file -> ``{image file name: [Box | ("norm", cx, cy, w, h)]}``.

    Two formats: ``{"<image name>": [[x0, y0, x1, y1], ...]}`` (pixels), or the MNRE/FocalMRE
    crop format ``{"<image stem>_crop_<k>.jpg": [cx, cy, w, h, area]}`` (normalised to the image
    size; converted once the image size is known, see :func:`resolve_boxes`).
    """
    from ..io import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise GraphmieError("E004", path, detail="expected an object mapping image names to boxes")
    out: dict[str, list] = {}
    for key, val in data.items():
        m = _CROP.match(key)
        if m and isinstance(val, list) and len(val) == 5 and all(isinstance(v, (int, float)) for v in val):
            out.setdefault(m.group(1), []).append(("norm", *val[:4]))
            continue
        if not isinstance(val, list):
            raise GraphmieError("E004", path, detail=f"{key!r}: expected a list of boxes")
        for b in val:
            try:
                out.setdefault(Path(key).stem, []).append(Box.from_list(b))
            except (TypeError, ValueError) as e:
                raise GraphmieError("E004", path, detail=f"{key!r}: bad box {b!r} ({e})") from None
    return out


def resolve_boxes(dets: list, width: float, height: float) -> list[Box]:
    out = []
    for d in dets:
        if isinstance(d, Box):
            out.append(d.clip(width, height))
        else:
            _, cx, cy, w, h = d
            out.append(Box(max((cx - w / 2) * width, 0), max((cy - h / 2) * height, 0),
                           min((cx + w / 2) * width, width), min((cy + h / 2) * height, height)))
    return [b for b in out if b.area > 0]
