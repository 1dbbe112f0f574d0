"""Step graphs and the SeqGMPER-style procedure model.

**Step graph.** A procedure becomes one graph whose nodes are the *elements* of its
steps: every word of a step's text (the textual scene graph: the words linked by their
dependency arcs, plus word order) and, where the step has an image, its region proposals
(the visual scene graph: regions linked to each other and to every word of the same
step). Consecutive steps are linked root-to-root (``next_step`` edges), and the
:class:`~graphmie.nn.seq_attention.SequentialElementAttention` layer adds the dense
step-``t`` -> step-``t-1`` attention of SeqGMPER on top.

**Model.** Frozen MiniLM word features and EfficientNet region features are projected to a
common width, passed through a relation-aware GATv2 over the step graph (the step-local
state), then through sequential element attention (the carried-over state). Two heads read
the result:

* entity recognition: a BIO tagger over the words (wikiHow-FG's nine types) on the
  step-local state;
* flow prediction: pair scores over ordered entity pairs (same step both ways, or from an
  earlier step to one up to ``max_gap`` steps later) for the 13 flow labels. With the
  ``pointer`` head (default) every entity *chooses* one (tail, label) among its candidates or
  "no outgoing flow" (a softmax over its choices, trained on the gold choice: 96 % of
  wikiHow-FG entities have out-degree 1); the older ``pairwise`` head classifies each pair
  alone into the labels + ``none`` and keeps each entity's best pair that beats ``none``.
  With ``attention_prior`` the log of the sequential attention mass tail -> head is added to
  the scores of pairs one step apart (the attention acts as a tail-side pointer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import configurable
from .seq_attention import SequentialElementAttention

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


@configurable
class SeqGMPER(nn.Module):
    def __init__(self, text_dim: int = 384, image_dim: int = 1280, hidden: int = 128, heads: int = 4,
                 gat_layers: int = 1, seq_attention: bool = True, dropout: float = 0.2, max_gap: int = 2,
                 flow_head: str = "pointer", attention_prior: bool = True, seq_detach: bool = True,
                 n_tags: int = 19, n_types: int = 9, n_labels: int = 13):
        super().__init__()
        from torch_geometric.nn import GATv2Conv

        self.hidden, self.max_gap = hidden, max_gap
        self.n_labels = n_labels
        if flow_head not in ("pairwise", "pointer"):
            raise ValueError(f"flow_head must be 'pairwise' or 'pointer', not {flow_head!r}")
        self.flow_head = flow_head
        self.text_in = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim, hidden), nn.GELU())
        self.image_in = nn.Sequential(nn.Linear(image_dim, hidden), nn.GELU())
        self.kind_emb = nn.Embedding(2, hidden)
        self.edge_emb = nn.Embedding(len(EDGE_TYPES), 16)
        self.gats = nn.ModuleList([GATv2Conv(hidden, hidden // heads, heads=heads, edge_dim=16, dropout=dropout,
                                             add_self_loops=True) for _ in range(gat_layers)])
        self.gat_norm = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(gat_layers)])
        self.seq = None
        if seq_attention:
            # initialised from a separate random stream (and with its own dropout generator), so that
            # for one seed the full model and the ablation start from the same weights everywhere else
            # and see the same dropout masks: the two are compared pairwise, seed by seed
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(torch.initial_seed() + 1)
                self.seq = SequentialElementAttention(hidden, heads=heads, dropout=dropout, detach_context=seq_detach)
        self.drop = nn.Dropout(dropout)
        # the tagger reads the step-local state only: entity recognition needs no carry-over (measured)
        self.tagger = nn.Sequential(nn.Linear(hidden + text_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, n_tags))
        self.type_emb = nn.Embedding(n_types, 16)
        self.dist_emb = nn.Embedding(max_gap + 2, 16)           # 0..max_gap steps, + "head after tail" in-step
        self.span_proj = nn.Linear(4 * hidden, hidden)
        self.pair = nn.Sequential(nn.Linear(3 * hidden + 2 * 16 + 16 + 2, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_labels + 1))  # last class = none
        # pointer head: each entity chooses one (tail, label) among its candidates or "no outgoing flow"
        self.no_flow = nn.Sequential(nn.Linear(hidden + 16, hidden), nn.GELU(), nn.Linear(hidden, 1)) \
            if flow_head == "pointer" else None
        # the sequential attention as a tail-side pointer: log(relative attention mass tail -> head)
        # added to the flow-label scores of pairs one step apart, with a learned weight
        self.att_prior = nn.Parameter(torch.tensor(0.5)) if attention_prior and seq_attention else None
        self._att = None                                       # last sequential attention [heads, N, N]

    def encode(self, text_x: torch.Tensor, image_x: torch.Tensor, graph: StepGraph) -> torch.Tensor:
        """Node states ``[N, 2 * hidden]`` (text nodes first, then image nodes, as in the graph):
        the step-local state (after the step-graph GAT) next to the state after sequential
        attention. In the ablation without sequential attention both halves are the local state,
        so the heads have the same shape and the only difference is the carry-over."""
        parts = [self.text_in(text_x) + self.kind_emb.weight[0]]
        if image_x is not None and image_x.numel():
            parts.append(self.image_in(image_x) + self.kind_emb.weight[1])
        x = torch.cat(parts)
        ei, et = graph.edge_index()
        ea = self.edge_emb(et)
        for conv, norm in zip(self.gats, self.gat_norm):
            x = norm(x + self.drop(conv(x, ei, ea)))
        self._att = None
        y = x
        if self.seq is not None:
            y, self._att = self.seq(x, torch.tensor(graph.node_step, dtype=torch.long), return_attention=True)
        return torch.cat([x, y], dim=-1)     # step-local state | state carried over from the previous step

    def tag_logits(self, h_text: torch.Tensor, text_x: torch.Tensor) -> torch.Tensor:
        """BIO tag logits from the step-local half of the node states ``[n, 2 * hidden]``."""
        return self.tagger(torch.cat([h_text[:, :self.hidden], text_x], dim=-1))

    def span_reps(self, h: torch.Tensor, spans: list[list[int]]) -> torch.Tensor:
        """``spans``: node ids of each entity's words -> ``[E, hidden]`` (first word + mean of the
        ``[N, 2 * hidden]`` node states)."""
        if not spans:
            return h.new_zeros(0, self.hidden)
        first = h[torch.tensor([s[0] for s in spans])]
        mean = torch.stack([h[torch.tensor(s)].mean(0) for s in spans])
        return self.span_proj(torch.cat([first, mean], dim=-1))

    def pair_attention(self, spans: list[list[int]], pairs: list[tuple[int, int]]) -> torch.Tensor:
        """``[P, 3]``: how much the tail's words attend to the head's words in the sequential
        attention (mass, averaged over heads and tail words; the same relative to a uniform
        spread over the previous step, /10 capped at 1; and the log of that ratio). Zero when there
        is no sequential attention (ablation) or the head is not in the step just before the tail."""
        if self._att is None or not pairs:
            return torch.zeros(len(pairs), 3)
        att = self._att.mean(0)                                            # [N, N]
        n_prev = (att > 0).sum(1).clamp(min=1).float()
        member = torch.zeros(len(spans), att.size(0))
        for e, nodes in enumerate(spans):
            member[e, torch.tensor(nodes)] = 1.0
        mean = member / member.sum(1, keepdim=True).clamp(min=1)
        mass = mean @ att @ member.T                                        # [tail E, head E]
        rel = mean @ (att * n_prev.view(-1, 1)) @ mean.T                    # 1 = uniform attention
        hi = torch.tensor([p[0] for p in pairs])
        ti = torch.tensor([p[1] for p in pairs])
        m, r = mass[ti, hi], rel[ti, hi]
        log_rel = torch.where(m > 0, torch.log(r.clamp(min=1e-3)).clamp(-5.0, 5.0), torch.zeros_like(r))
        return torch.stack([m, r.clamp(max=10.0) / 10.0, log_rel], dim=-1)

    def attention_loss(self, spans: list[list[int]], flows: list[tuple[int, int]]) -> torch.Tensor:
        """Supervise the sequential attention with the gold flows that cross exactly one step:
        the tail's words should put their attention mass on the head's words (``-log mass``).
        This is what makes "the state of this entity comes from that one" explicit."""
        if self._att is None or not flows:
            return torch.zeros(())
        att = self._att.mean(0)
        losses = []
        for a, b in flows:
            mass = att[torch.tensor(spans[b])][:, torch.tensor(spans[a])].sum(1).mean()
            losses.append(-torch.log(mass.clamp(min=1e-6)))
        return torch.stack(losses).mean()

    def pair_logits(self, ents: torch.Tensor, types: torch.Tensor, steps: list[int], starts: list[int],
                    pairs: list[tuple[int, int]], spans: list[list[int]] | None = None) -> torch.Tensor:
        """``[P, n_labels + 1]`` logits for ordered entity pairs (head, tail)."""
        if not pairs:
            return ents.new_zeros(0, self.n_labels + 1)
        hi = torch.tensor([p[0] for p in pairs])
        ti = torch.tensor([p[1] for p in pairs])
        gap = []
        for a, b in pairs:
            d = steps[b] - steps[a]
            gap.append(self.max_gap + 1 if d == 0 and starts[a] > starts[b] else min(d, self.max_gap))
        gap = torch.tensor(gap)
        h, t = ents[hi], ents[ti]
        att = self.pair_attention(spans, pairs) if spans is not None else torch.zeros(len(pairs), 3)
        feats = torch.cat([h, t, h * t, self.type_emb(types[hi]), self.type_emb(types[ti]), self.dist_emb(gap),
                           att[:, :2]], -1)
        logits = self.pair(feats)
        if self.att_prior is not None:
            prior = torch.zeros_like(logits)
            prior[:, :self.n_labels] = self.att_prior * att[:, 2:3]
            logits = logits + prior
        return logits

    def head_choices(self, logits: torch.Tensor, ents: torch.Tensor, types: torch.Tensor,
                     pairs: list[tuple[int, int]]) -> dict[int, tuple[list[int], torch.Tensor]]:
        """Pointer head: for every head entity, the joint scores of choosing each of its candidate
        pairs with each label, then "no outgoing flow" last: ``{head: (pair indices, [k * n_labels + 1])}``.
        A softmax over one head's scores is its choice; training maximises the gold choice."""
        nf = self.no_flow(torch.cat([ents, self.type_emb(types)], -1)).squeeze(-1)     # [E]
        groups: dict[int, list[int]] = {}
        for k, (a, _) in enumerate(pairs):
            groups.setdefault(a, []).append(k)
        return {a: (idx, torch.cat([logits[idx, :self.n_labels].reshape(-1), nf[a:a + 1]]))
                for a, idx in groups.items()}
