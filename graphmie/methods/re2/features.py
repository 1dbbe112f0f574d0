"""Block features: a text vector ‖ text-shape cues ‖ ink cues of the grey page.

The text vector is either the engine's static word-piece embedder (``features.text =
"static"``, the shipped model: the mean of MiniLM's input word-piece embeddings, first 64 pieces)
or frozen contextual MiniLM sentence embeddings (``"minilm"``), kept in the engine's
:class:`~graphmie.engine.cache.FeatureStore` (``form/minilm.pt`` on disk for dataset runs).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ...engine.cache import FeatureStore
from ...errors import GraphmieError

TEXT_DIM = 384
SHAPE_DIM = 10
INK_DIM = 4
FEATURE_DIM = TEXT_DIM + SHAPE_DIM + INK_DIM
TEXT_FEATURES = ("minilm", "static")


def text_shape(text: str) -> list[float]:
    """Cheap cues of a block's role: colon at the end, digits, capitals, length, blanks."""
    t = text.strip()
    n = max(len(t), 1)
    words = t.split()
    return [float(t.endswith(":")), float(":" in t), sum(map(str.isdigit, t)) / n,
            sum(map(str.isupper, t)) / n, float(t.isupper() and any(map(str.isalpha, t))),
            math.log1p(len(words)) / 3, math.log1p(len(t)) / 5, float(not t),
            float(t.endswith("?")), float(any(c in "_$%/#" for c in t))]


def ink_features(image: str | None, boxes) -> torch.Tensor:
    """Cheap visual cues per block from the grey page: ink coverage, darkness, contrast
    (bold print, handwriting and stamps differ), and a flag saying an image was there.
    Zeros for a PDF page (its boxes are in points, the picture is not read)."""
    import numpy as np

    if not image or not Path(image).exists() or Path(image).suffix.lower() == ".pdf":
        return torch.zeros(len(boxes), INK_DIM)
    try:
        from PIL import Image

        with Image.open(image) as im:
            grey = np.asarray(im if im.mode == "L" else im.convert("L"))      # a grey scan as it is
    except Exception:  # noqa: BLE001 - no image cues for an unreadable image; the text path still works
        return torch.zeros(len(boxes), INK_DIM)
    H, W = grey.shape
    # grey levels in [0, 1], converted only under the boxes (most of a page is outside them) but
    # into a page-sized array: each crop is then the same strided view as a crop of the whole
    # converted page, so numpy's sums run in the same order and give the same figures
    g = np.empty((H, W), dtype=np.float32)
    rows = []
    for b in boxes:
        x0, y0 = max(int(b.x0), 0), max(int(b.y0), 0)
        x1, y1 = min(max(int(math.ceil(b.x1)), x0 + 1), W), min(max(int(math.ceil(b.y1)), y0 + 1), H)
        crop = g[y0:y1, x0:x1]
        if crop.size == 0:
            rows.append((0.0,) * INK_DIM)
            continue
        np.divide(grey[y0:y1, x0:x1], np.float32(255.0), out=crop, dtype=np.float32)
        rows.append((np.count_nonzero(crop < 0.5) / crop.size, float(1 - crop.mean()), float(crop.std()), 1.0))
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, INK_DIM)


class Featurizer:
    """Entity features ``[n, FEATURE_DIM]`` = text vector ‖ :func:`text_shape` ‖ :func:`ink_features`.
    ``cache``: the cache folder of the MiniLM vectors (None = memory only)."""

    def __init__(self, text: str = "static", cache: str | None = None):
        if text not in TEXT_FEATURES:
            raise GraphmieError("E022", None, name="features.text", value=text, choices=", ".join(TEXT_FEATURES))
        self.text = text
        if text == "minilm":
            from ...encoders.text import get_text_encoder

            self.encoder = get_text_encoder()
            self.store = FeatureStore(cache, "minilm")
        else:
            from ...engine.embedder import get_static_embedder

            self.encoder = get_static_embedder(64)
            self.store = None

    def text_vectors(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        if self.store is None:
            return self.encoder.encode(texts, progress=progress)
        todo = [t for t in dict.fromkeys(texts) if t not in self.store]
        if todo:
            self.store.update(dict(zip(todo, self.encoder.encode(todo, progress=progress))))
        if not texts:
            return torch.zeros(0, self.encoder.dim)
        return torch.stack([self.store.data[t] for t in texts])

    def warm(self, texts: list[str]) -> None:
        """Compute (and, with a disk cache, save) the text vectors of a whole dataset at once."""
        self.text_vectors(texts, progress=True)
        if self.store is not None:
            self.store.save()

    def clear(self) -> None:
        """Forget the in-memory text vectors (to time the text encoder)."""
        self.encoder._cache.clear()
        if self.store is not None:
            self.store.data.clear()

    def __call__(self, texts: list[str], boxes=None, image: str | None = None) -> torch.Tensor:
        emb = self.text_vectors(texts)
        shape = torch.tensor([text_shape(t) for t in texts], dtype=torch.float32).reshape(-1, SHAPE_DIM)
        ink = ink_features(image, boxes) if boxes is not None else torch.zeros(len(texts), INK_DIM)
        return torch.cat([emb.float(), shape, ink], -1)
