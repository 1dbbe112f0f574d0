"""Learned entity segmentation of OCR words: which OCR words belong to one entity block.

An OCR engine gives words grouped into *its* text lines; a form's entities are not those lines
(a question and its value often share one OCR line; a multi-line answer spans several). The
segmenter is an edge classifier over a graph of the page's words:

* **nodes**: OCR words, with the static MiniLM word-piece vector of the word, its text-shape
  cues (:func:`~.features.text_shape`), its box on the page, its height in text heights and its
  recognition confidence;
* **scored pairs** (:func:`structural_pairs`): consecutive words of an OCR line and of a row,
  and each word with its nearest words on the rows just below — the decisions that split a
  "label: value" line and join a wrapped answer; **context edges**: each word to its ``k``
  nearest words (box gap). Both directions, with the typed spatial features of the layout graph
  (:func:`layout.graph.edge_arrays`) plus OCR-line cues (same OCR line, next word on it, gaps in
  text heights, left-edge offset, height ratio, a colon ending the first word)
  and what the two words' OCR lines say (:func:`line_cue_arrays`: their edges, widths, ``:`` /
  ``.`` endings, case; segmenters saved before these cues read graphs without them);
* two edge-aware GAT layers (:class:`~graphmie.nn.edge_gat.EdgeGATLayer`), then a pair head on
  ``[h_i, h_j, h_i * h_j, edge]`` scoring "same entity", symmetric in ``i`` and ``j``, and
  optionally a word-label head trained beside it (the label of each word's entity);
* several such networks from different seeds average their pair probabilities
  (:class:`SegmenterEnsemble`, the shipped ``form_segment`` has 3).

Blocks are the connected components of the pairs scored ≥ ``threshold``. Training targets come
from aligning OCR words to the gold entities by box overlap (:func:`align_words`). Measured
choices (5-fold CV over the FUNSD training forms) are in ``docs/form.md``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...config import configurable
from ...document import Document
from ...nn.edge_gat import EdgeGATLayer, with_self_loops
from .features import SHAPE_DIM, TEXT_DIM, text_shape

WORD_GEO_DIM = 7
LINE_CUES = 9
LINE_DIM = 7 + LINE_CUES   # pair cues from the two words, then from their OCR lines (:func:`line_cue_arrays`)


def word_boxes(words) -> np.ndarray:
    from layout.graph import box_array

    return box_array([w.box for w in words])


def align_words(words, gold: Document, min_cover: float = 0.3) -> list[int]:
    """The gold entity index of each OCR word (``-1``: none): the entity whose gold words cover
    the largest share of the OCR word's box (at least ``min_cover``), else the entity whose box
    covers at least half of it."""
    if not words or not gold.entities:
        return [-1] * len(words)
    ow = word_boxes(words)
    tok_ent = np.full(len(gold.tokens), -1)
    for k, e in enumerate(gold.entities):
        for t in e.tokens:
            tok_ent[t] = k
    gw = np.array([t.box.to_list() for t in gold.tokens], dtype=np.float64).reshape(-1, 4)
    eb = np.array([e.box.to_list() for e in gold.entities], dtype=np.float64).reshape(-1, 4)

    def inter(a, b):
        ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
        return ix * iy

    area = np.maximum((ow[:, 2] - ow[:, 0]) * (ow[:, 3] - ow[:, 1]), 1e-6)
    cover = np.zeros((len(words), len(gold.entities)))
    if len(gw):
        wi = inter(ow, gw) / area[:, None]
        ok = tok_ent >= 0
        np.add.at(cover.T, tok_ent[ok], wi[:, ok].T)
    best = cover.argmax(1)
    out = []
    ecov = inter(ow, eb) / area[:, None]
    for i in range(len(words)):
        if cover[i, best[i]] >= min_cover:
            out.append(int(best[i]))
        elif ecov[i].max() >= 0.5:
            out.append(int(ecov[i].argmax()))
        else:
            out.append(-1)
    return out


@dataclass
class WordGraph:
    """The word graph of one page: node features, directed edges with features, and the
    undirected pairs the head scores (:func:`structural_pairs`; pair ``p``'s two directions are
    edge rows ``p`` and ``p + len(pairs)``; the other rows are nearest-neighbour context edges)."""

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    pairs: torch.Tensor               # [P, 2], i < j
    unit: float


def word_graph(words, width: float, height: float, text_vectors: torch.Tensor, k: int = 6,
               line_cues: bool = True) -> WordGraph:
    """The segmenter's graph of a page's OCR words (``text_vectors``: one row per word); without
    ``line_cues`` the edges carry the word-pair cues only (the features of segmenters trained before
    the line cues)."""
    from layout.geometry import median_height
    from layout.graph import EDGE_DIM, edge_arrays, knn_pairs

    n = len(words)
    boxes = [w.box for w in words]
    unit = median_height(boxes)
    arr = word_boxes(words)
    width, height = max(float(width), 1.0), max(float(height), 1.0)
    geo = np.stack([arr[:, 0] / width, arr[:, 1] / height, arr[:, 2] / width, arr[:, 3] / height,
                    np.log1p((arr[:, 3] - arr[:, 1]) / unit), np.log1p((arr[:, 2] - arr[:, 0]) / unit) / 3,
                    np.array([w.conf for w in words])], 1) if n else np.zeros((0, WORD_GEO_DIM))
    shape = torch.tensor([text_shape(w.text) for w in words], dtype=torch.float32).reshape(-1, SHAPE_DIM)
    x = torch.cat([text_vectors.float().reshape(n, TEXT_DIM), shape, torch.from_numpy(geo).float()], -1)
    by_line: dict[int, list[int]] = {}
    for i, w in enumerate(words):
        if w.line >= 0:
            by_line.setdefault(w.line, []).append(i)
    for members in by_line.values():
        members.sort(key=lambda i: arr[i, 0])
    pairs = structural_pairs(words, arr, by_line, unit)
    rest = sorted(set(knn_pairs(boxes, k)) - set(pairs))
    P = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    R = np.array(rest, dtype=np.int64).reshape(-1, 2)
    src = np.concatenate([P[:, 0], P[:, 1], R[:, 0], R[:, 1]])
    dst = np.concatenate([P[:, 1], P[:, 0], R[:, 1], R[:, 0]])
    if len(src):
        typed, _, _ = edge_arrays(arr, src, dst, np.zeros(len(src), dtype=np.int64), unit)
    else:
        typed = np.zeros((0, EDGE_DIM), dtype=np.float32)
    line = np.array([w.line for w in words], dtype=np.int64)
    nxt = {}
    for members in by_line.values():
        for a, b in zip(members, members[1:]):
            nxt[(a, b)] = nxt[(b, a)] = 1.0
    a, b = arr[src], arr[dst]
    gx = np.maximum(a[:, 0], b[:, 0]) - np.minimum(a[:, 2], b[:, 2])      # negative: overlap
    gy = np.maximum(a[:, 1], b[:, 1]) - np.minimum(a[:, 3], b[:, 3])
    ha, hb = a[:, 3] - a[:, 1], b[:, 3] - b[:, 1]
    extra = np.stack([((line[src] == line[dst]) & (line[src] >= 0)).astype(np.float32),
                      np.array([nxt.get((int(s), int(d)), 0.0) for s, d in zip(src, dst)], dtype=np.float32),
                      np.clip(gx / unit, -3, 6) / 3, np.clip(gy / unit, -3, 6) / 3,
                      np.clip((b[:, 0] - a[:, 0]) / unit, -10, 10) / 10,
                      np.log(np.maximum(hb, 1e-3) / np.maximum(ha, 1e-3)),
                      np.array([float(words[int(s)].text.rstrip().endswith(":")) for s in src],
                               dtype=np.float32)], 1) \
        if len(src) else np.zeros((0, LINE_DIM - LINE_CUES), dtype=np.float32)
    if line_cues:
        extra = np.concatenate([extra, line_cue_arrays(words, arr, line, src, dst, unit)], 1)
    edge_attr = torch.from_numpy(np.concatenate([typed, extra.astype(np.float32)], 1)).float()
    return WordGraph(x=x, edge_index=torch.from_numpy(np.stack([src, dst])).long(), edge_attr=edge_attr,
                     pairs=torch.from_numpy(P), unit=unit)


def line_cue_arrays(words, arr: np.ndarray, line: np.ndarray, src: np.ndarray, dst: np.ndarray,
                    unit: float) -> np.ndarray:
    """``[E, LINE_CUES]``: what the OCR lines of an edge's two words say about joining them — the
    decisions across rows are between lines more than between words. The offsets of the lines'
    left and right edges and their width ratio (in text heights), whether the first word's line
    ends with ``:`` or with ``.``, whether the second's starts with a lower-case letter or a digit,
    whether the first word ends its line and the second starts its line. A word without a line
    is a line of its own."""
    n = len(words)
    if not len(src):
        return np.zeros((0, LINE_CUES), dtype=np.float32)
    key = np.where(line >= 0, line, -1 - np.arange(n))
    _, grp = np.unique(key, return_inverse=True)
    g = int(grp.max()) + 1
    x0, x1 = np.full(g, np.inf), np.full(g, -np.inf)
    np.minimum.at(x0, grp, arr[:, 0])
    np.maximum.at(x1, grp, arr[:, 2])
    first, last = np.full(g, -1), np.full(g, -1)
    for i in np.argsort(-arr[:, 0], kind="stable"):   # right to left: the last write is the leftmost word
        first[grp[i]] = i
    for i in np.argsort(arr[:, 0], kind="stable"):
        last[grp[i]] = i
    end_text = [words[int(last[k])].text.rstrip() for k in range(g)]
    start_text = [words[int(first[k])].text.lstrip() for k in range(g)]
    ga, gb = grp[src], grp[dst]
    wa, wb = x1[ga] - x0[ga], x1[gb] - x0[gb]
    ends_colon = np.array([t.endswith(":") for t in end_text], dtype=np.float32)
    ends_stop = np.array([t.endswith(".") for t in end_text], dtype=np.float32)
    starts_lower = np.array([t[:1].islower() for t in start_text], dtype=np.float32)
    starts_digit = np.array([t[:1].isdigit() for t in start_text], dtype=np.float32)
    return np.stack([np.clip((x0[gb] - x0[ga]) / unit, -10, 10) / 10, np.clip((x1[gb] - x1[ga]) / unit, -10, 10) / 10,
                     np.clip(np.log(np.maximum(wb, 1e-3) / np.maximum(wa, 1e-3)), -3, 3) / 3,
                     ends_colon[ga], ends_stop[ga], starts_lower[gb], starts_digit[gb],
                     (last[ga] == src).astype(np.float32), (first[gb] == dst).astype(np.float32)], 1).astype(np.float32)


def structural_pairs(words, arr: np.ndarray, by_line: dict[int, list[int]], unit: float) -> list[tuple[int, int]]:
    """The word pairs whose "same entity" decision builds the blocks: consecutive words of an OCR
    line and of a row, and each word with its nearest words on the rows just below it (overlapping or
    left-aligned within two text heights, at most 2.5 text heights down)."""
    from layout.regions import group_lines

    pairs = set()
    for members in by_line.values():
        for a, b in zip(members, members[1:]):
            pairs.add((min(a, b), max(a, b)))
    rows = group_lines([w.box for w in words])
    for row in rows:                      # neighbours on a row, also across the engine's line boxes
        for a, b in zip(row, row[1:]):
            pairs.add((min(a, b), max(a, b)))
    row_of = {i: r for r, row in enumerate(rows) for i in row}
    for r, row in enumerate(rows):
        below = [j for rr in rows[r + 1:r + 3] for j in rr]
        for i in row:
            a = arr[i]
            cands = []
            for j in below:
                b = arr[j]
                vgap = b[1] - a[3]
                if row_of[j] == r or vgap > 2.5 * unit or b[1] < (a[1] + a[3]) / 2:
                    continue
                hov = min(a[2], b[2]) - max(a[0], b[0])
                if hov > 0 or abs(a[0] - b[0]) <= 2 * unit:
                    cands.append((max(vgap, 0.0), abs(a[0] - b[0]), j))
            for _, _, j in sorted(cands)[:2]:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def edge_dim(line_cues: bool = True) -> int:
    from layout.graph import EDGE_DIM

    return EDGE_DIM + LINE_DIM - (0 if line_cues else LINE_CUES)


@configurable
class WordSegmenter(nn.Module):
    """Scores "same entity" for the candidate word pairs of a :class:`WordGraph`; with
    ``num_labels`` it also labels each word with its entity's label (:data:`~.model.LABELS`),
    trained beside the pair loss (``label_weight`` of :func:`train_segmenter`)."""

    def __init__(self, in_dim: int = TEXT_DIM + SHAPE_DIM + WORD_GEO_DIM, edge_dim: int = 30, hidden: int = 96,
                 layers: int = 2, heads: int = 4, dropout: float = 0.1, num_labels: int = 0,
                 line_cues: bool = True):
        super().__init__()
        self.hidden, self.num_labels, self.line_cues, self.n_layers = hidden, num_labels, line_cues, layers
        self.in_proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.LayerNorm(hidden))
        self.layers = nn.ModuleList(EdgeGATLayer(hidden, edge_dim, heads, dropout) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(3 * hidden + edge_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))
        self.label_head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_labels)) if num_labels else None

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
               self_loops: bool = True) -> torch.Tensor:
        """Word states ``[N, hidden]``; ``self_loops=False``: the edges already carry
        :func:`~graphmie.nn.edge_gat.with_self_loops`' loops (an ensemble adds them once)."""
        h = self.in_proj(x)
        if self_loops:
            edge_index, edge_attr = with_self_loops(edge_index, edge_attr, h.shape[0])
        for layer in self.layers:
            h = layer(h, edge_index, edge_attr, self_loops=False)
        return h

    def pair_logits(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                    n_pairs: int) -> torch.Tensor:
        """Logits ``[n_pairs]`` of the undirected pairs whose two directed edges are rows ``p`` and
        ``p + n_pairs`` of ``edge_index`` (as :func:`word_graph` lays them out)."""
        s, d = edge_index[:, :2 * n_pairs]
        hs, hd = h[s], h[d]
        logit = self.head(torch.cat([hs, hd, hs * hd, edge_attr[:2 * n_pairs]], -1)).squeeze(-1)
        return (logit[:n_pairs] + logit[n_pairs:]) / 2

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                n_pairs: int) -> torch.Tensor:
        """The pair logits of a word graph (:meth:`encode`, then :meth:`pair_logits`)."""
        return self.pair_logits(self.encode(x, edge_index, edge_attr), edge_index, edge_attr, n_pairs)


class SegmenterEnsemble(nn.Module):
    """Word segmenters trained from different seeds on the same pages: the pair logit is that of the
    members' mean "same entity" probability (the members share the graph's features: same
    ``line_cues``)."""

    def __init__(self, members: list[WordSegmenter]):
        super().__init__()
        if len({m.line_cues for m in members}) != 1:
            raise ValueError("the members of a segmenter ensemble must read the same graph features")
        self.members = nn.ModuleList(members)
        m = members[0]
        self.hidden, self.num_labels, self.line_cues, self.n_layers = m.hidden, m.num_labels, m.line_cues, m.n_layers

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                n_pairs: int) -> torch.Tensor:
        loops, loop_attr = with_self_loops(edge_index, edge_attr, x.shape[0])
        p = torch.stack([torch.sigmoid(m.pair_logits(m.encode(x, loops, loop_attr, self_loops=False), edge_index,
                                                     edge_attr, n_pairs)) for m in self.members]).mean(0)
        return torch.logit(p, eps=1e-6)


def components(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of ``n`` nodes under ``pairs``, each sorted, ordered by first member."""
    from layout.regions import _DSU

    dsu = _DSU(n)
    for a, b in pairs:
        dsu.union(a, b)
    return sorted((sorted(g) for g in dsu.groups()), key=lambda g: g[0])


def reading_order(words, block: list[int]) -> list[int]:
    """A block's words in reading order: rows top to bottom, each left to right."""
    from layout.regions import group_lines

    boxes = [words[i].box for i in block]
    return [block[i] for row in group_lines(boxes) for i in row]


def gold_pair_targets(g: WordGraph, owner: list[int]) -> torch.Tensor:
    """1 where both words of a candidate pair align to the same gold entity."""
    o = torch.tensor(owner, dtype=torch.long)
    a, b = o[g.pairs[:, 0]], o[g.pairs[:, 1]]
    return ((a == b) & (a >= 0)).float()


@torch.inference_mode()
def segment_page(net: WordSegmenter | SegmenterEnsemble, words, width: float, height: float, text_vectors: torch.Tensor,
                 threshold: float = 0.5, k: int = 6) -> list[list[int]]:
    """Entity blocks (lists of word indices in reading order) of one page's OCR words."""
    if not words:
        return []
    g = word_graph(words, width, height, text_vectors, k, net.line_cues)
    if len(g.pairs):
        p = torch.sigmoid(net(g.x, g.edge_index, g.edge_attr, len(g.pairs)))
        keep = [tuple(pr) for pr, q in zip(g.pairs.tolist(), p.tolist()) if q >= threshold]
    else:
        keep = []
    blocks = [reading_order(words, b) for b in components(len(words), keep)]
    return sorted(blocks, key=lambda b: (min(words[i].box.y0 for i in b), min(words[i].box.x0 for i in b)))


@dataclass
class SegSample:
    """One training page: its word graph, the "same entity" target of each candidate pair and
    each word's label index (its aligned gold entity's, :data:`~.model.LABELS`; -100: no entity)."""

    graph: WordGraph
    target: torch.Tensor
    word_labels: torch.Tensor | None = None


def seg_sample(words, gold: Document, feats, line_cues: bool = True) -> SegSample:
    """A training page from OCR words and the gold form (``feats``: a :class:`~.features.Featurizer`)."""
    from .model import LABELS

    page = gold.pages[0]
    g = word_graph(words, page.width, page.height, feats.text_vectors([w.text for w in words]), line_cues=line_cues)
    owner = align_words(words, gold)
    labels = torch.tensor([LABELS.index(gold.entities[k].label) if k >= 0 else -100 for k in owner],
                          dtype=torch.long)
    return SegSample(g, gold_pair_targets(g, owner), labels)


def train_segmenter(samples: list[SegSample], epochs: int = 30, lr: float = 2e-3, batch_size: int = 8,
                    seed: int = 0, hidden: int = 96, layers: int = 2, label_weight: float = 0.0,
                    line_cues: bool = True, log=None) -> WordSegmenter:
    """Fit a :class:`WordSegmenter` on pages (pair BCE, plus ``label_weight`` times the word-label
    cross-entropy when it is > 0; AdamW, one-cycle schedule). ``line_cues`` must be what the
    samples' graphs were built with (:func:`seg_sample`)."""
    from .model import LABELS

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = WordSegmenter(edge_dim=edge_dim(line_cues), hidden=hidden, layers=layers,
                        num_labels=len(LABELS) if label_weight > 0 else 0, line_cues=line_cues)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(samples) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    net.train()
    for ep in range(epochs):
        order = torch.randperm(len(samples), generator=gen).tolist()
        total = 0.0
        for b in range(0, len(order), batch_size):
            batch = [samples[i] for i in order[b:b + batch_size]]
            loss = 0.0
            for s in batch:
                if not len(s.target):
                    continue
                g = s.graph
                h = net.encode(g.x, g.edge_index, g.edge_attr)
                logit = net.pair_logits(h, g.edge_index, g.edge_attr, len(g.pairs))
                loss = loss + nn.functional.binary_cross_entropy_with_logits(logit, s.target)
                if label_weight > 0 and s.word_labels is not None and bool((s.word_labels >= 0).any()):
                    loss = loss + label_weight * nn.functional.cross_entropy(net.label_head(h), s.word_labels,
                                                                             ignore_index=-100)
            if isinstance(loss, float):
                continue
            opt.zero_grad()
            (loss / len(batch)).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        if log:
            log(f"segmenter epoch {ep + 1}/{epochs} loss {total / max(len(samples), 1):.4f}")
    net.eval()
    return net


def train_segmenters(samples: list[SegSample], members: int = 1, seed: int = 0,
                     **kwargs) -> WordSegmenter | SegmenterEnsemble:
    """``members`` segmenters from seeds ``seed``, ``seed + 1``, ... (:func:`train_segmenter`, ``kwargs``
    passed on): the one network, or their :class:`SegmenterEnsemble`."""
    nets = [train_segmenter(samples, seed=seed + k, **kwargs) for k in range(members)]
    return nets[0] if len(nets) == 1 else SegmenterEnsemble(nets)


SEGMENTER_METHOD = "re2.segment"
DEFAULT_WEIGHTS = "form_segment"


class Segmenter:
    """A trained :class:`WordSegmenter` with its text features and threshold, as the form reader
    uses it: ``segmenter(words, width, height)`` -> entity blocks (word indices in reading order)."""

    def __init__(self, net: WordSegmenter | SegmenterEnsemble, threshold: float = 0.5, k: int = 6,
                 name: str = "learned"):
        from .features import Featurizer

        self.net, self.threshold, self.k, self.name = net.eval(), threshold, k, name
        self.feats = Featurizer("static")

    def __call__(self, words, width: float, height: float) -> list[list[int]]:
        return segment_page(self.net, words, width, height, self.feats.text_vectors([w.text for w in words]),
                            self.threshold, self.k)

    def save(self, path, record: dict | None = None):
        from ...engine.checkpoint import save_checkpoint

        members = len(self.net.members) if isinstance(self.net, SegmenterEnsemble) else 1
        cfg = {"model": {"hidden": self.net.hidden, "layers": self.net.n_layers, "labels": self.net.num_labels,
                         "members": members},
               "decode": {"threshold": self.threshold, "k": self.k}, "features": {"line_cues": self.net.line_cues}}
        return save_checkpoint(path, SEGMENTER_METHOD, self.net.state_dict(), cfg,
                               {"edge_dim": edge_dim(self.net.line_cues)}, record)


def load_segmenter(spec=None) -> Segmenter:
    """The shipped segmenter (``form_segment``), a shipped name, a ``.safetensors`` file or a run folder."""
    from ...engine.checkpoint import load_checkpoint, load_state_into
    from ...errors import GraphmieError

    ckpt = load_checkpoint(spec, DEFAULT_WEIGHTS, SEGMENTER_METHOD)
    cues = bool((ckpt.config.get("features") or {}).get("line_cues", False))   # segmenters before the cues
    if ckpt.meta.get("edge_dim") != edge_dim(cues):
        raise GraphmieError("E025", ckpt.path,
                            detail=f"edge features {ckpt.meta.get('edge_dim')}, expected {edge_dim(cues)}")
    m, d = ckpt.config.get("model", {}), ckpt.config.get("decode", {})
    def member():
        return WordSegmenter(edge_dim=edge_dim(cues), hidden=int(m.get("hidden", 96)), layers=int(m.get("layers", 2)),
                             num_labels=int(m.get("labels", 0)), line_cues=cues)

    n = int(m.get("members", 1))
    net = member() if n == 1 else SegmenterEnsemble([member() for _ in range(n)])
    load_state_into(net, ckpt)
    return Segmenter(net, float(d.get("threshold", 0.5)), int(d.get("k", 6)), name=ckpt.path.stem)


def project_gold(gold: Document, words, blocks: list[list[int]], source: str | None = None) -> Document:
    """The OCR form Document of ``blocks`` with training targets taken from ``gold``: a block's
    label is the label of the gold entity most of its words align to (``other`` when none does),
    and two blocks are linked when their gold entities are."""
    from layout.ocr import words_to_form

    from ...data.funsd import LINK_LABEL
    from ...document import Relation

    page = gold.pages[0]
    doc = words_to_form(words, source or gold.source, page.width, page.height, image=page.image, blocks=blocks,
                        segmentation="projected")
    owner = align_words(words, gold)
    gid = []
    for ent, b in zip(doc.entities, blocks):
        votes = [owner[i] for i in b if owner[i] >= 0]
        top = max(set(votes), key=votes.count) if votes else -1
        ok = top >= 0 and votes.count(top) * 2 >= len(b)
        gid.append(top if ok else -1)
        ent.label = gold.entities[top].label if ok else "other"
    by_gold: dict[str, list[str]] = {}
    for ent, g in zip(doc.entities, gid):
        if g >= 0:
            by_gold.setdefault(gold.entities[g].id, []).append(ent.id)
    rels = []
    for r in gold.relations:
        if r.label != LINK_LABEL:
            continue
        for h in by_gold.get(r.head, ()):
            for t in by_gold.get(r.tail, ()):
                rels.append(Relation(id=f"r{len(rels)}", head=h, tail=t, label=LINK_LABEL))
    doc.relations = rels
    doc.meta["gold"] = True
    return doc
