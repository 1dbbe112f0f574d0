"""The step graph of a procedure (SeqGMPER's multimodal step graphs).

A procedure becomes one graph whose nodes are the *elements* of its steps: every word of a
step's text (the textual scene graph: the words linked by their dependency arcs, plus word
order) and, where the step has an image, its region proposals (the visual scene graph:
regions linked to each other and to every word of the same step). Consecutive steps are
linked root-to-root (``next_step`` edges); the dense step-``t`` -> step-``t-1`` attention of
SeqGMPER is added on top by :class:`~graphmie.nn.seq_attention.SequentialElementAttention`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

EDGE_TYPES = ("dep", "dep_rev", "next_word", "prev_word", "text_image", "image_text", "image_image",
              "next_step", "prev_step")


@dataclass
class StepGraph:
    """Nodes are (kind, step, ref): ``ref`` indexes ``Document.tokens`` (text) or the step's
    region list (image). ``edges`` are ``(src, dst, type)`` with ``type`` in :data:`EDGE_TYPES`."""

    node_kind: list[str] = field(default_factory=list)
    node_step: list[int] = field(default_factory=list)
    node_ref: list[int] = field(default_factory=list)
    edges: list[tuple[int, int, str]] = field(default_factory=list)
    roots: dict[int, int] = field(default_factory=dict)          # step -> node id of its root word

    def edge_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.edges:
            return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        ei = torch.tensor([[s for s, _, _ in self.edges], [d for _, d, _ in self.edges]], dtype=torch.long)
        et = torch.tensor([EDGE_TYPES.index(t) for _, _, t in self.edges], dtype=torch.long)
        return ei, et

    def text_nodes(self) -> list[int]:
        return [i for i, k in enumerate(self.node_kind) if k == "text"]


def build_step_graph(step_tokens: list[list[int]], dep_heads: list[list[int]],
                     step_regions: list[int] | None = None) -> StepGraph:
    """``step_tokens[s]``: the document token indices of step ``s``; ``dep_heads[s][k]``: the
    position (within step ``s``) of word ``k``'s syntactic head, or ``-1`` for the root;
    ``step_regions[s]``: how many image regions step ``s`` has (default none).

    Text nodes come first in step order, then image nodes in step order."""
    g = StepGraph()
    text_node: dict[tuple[int, int], int] = {}
    for s, toks in enumerate(step_tokens):
        for k, ti in enumerate(toks):
            text_node[(s, k)] = len(g.node_kind)
            g.node_kind.append("text"), g.node_step.append(s), g.node_ref.append(ti)
    image_nodes: dict[int, list[int]] = {}
    for s, n in enumerate(step_regions or []):
        for r in range(n):
            image_nodes.setdefault(s, []).append(len(g.node_kind))
            g.node_kind.append("image"), g.node_step.append(s), g.node_ref.append(r)
    for s, toks in enumerate(step_tokens):
        heads = dep_heads[s] if s < len(dep_heads) else []
        if len(heads) != len(toks):
            heads = [-1 if k == 0 else 0 for k in range(len(toks))]     # no parse: first word heads all
        for k in range(len(toks)):
            if k + 1 < len(toks):
                g.edges += [(text_node[(s, k)], text_node[(s, k + 1)], "next_word"),
                            (text_node[(s, k + 1)], text_node[(s, k)], "prev_word")]
            h = heads[k]
            if h < 0 or h == k or h >= len(toks):
                g.roots.setdefault(s, text_node[(s, k)])
            else:
                g.edges += [(text_node[(s, h)], text_node[(s, k)], "dep"), (text_node[(s, k)], text_node[(s, h)], "dep_rev")]
        for i in image_nodes.get(s, []):
            for k in range(len(toks)):
                g.edges += [(text_node[(s, k)], i, "text_image"), (i, text_node[(s, k)], "image_text")]
            for j in image_nodes[s]:
                if i != j:
                    g.edges.append((i, j, "image_image"))
        if s not in g.roots:
            if toks:
                g.roots[s] = text_node[(s, 0)]
            elif image_nodes.get(s):
                g.roots[s] = image_nodes[s][0]
    steps_with_root = sorted(g.roots)
    for a, b in zip(steps_with_root, steps_with_root[1:]):
        g.edges += [(g.roots[a], g.roots[b], "next_step"), (g.roots[b], g.roots[a], "prev_step")]
    return g


def candidate_pairs(ent_steps: list[int], max_gap: int = 2) -> list[tuple[int, int]]:
    """Ordered entity pairs a flow may join: same step (both ways) or head step earlier by
    at most ``max_gap`` (wikiHow-FG flows never go backwards across steps)."""
    out = []
    for i, si in enumerate(ent_steps):
        for j, sj in enumerate(ent_steps):
            if i != j and 0 <= sj - si <= max_gap:
                out.append((i, j))
    return out
