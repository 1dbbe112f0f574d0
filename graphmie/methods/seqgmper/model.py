"""The SeqGMPER network with its losses and its decoding.

Frozen MiniLM word features and EfficientNet region features are projected to a common width,
passed through a relation-aware GATv2 over the step graph (the step-local state), then through
sequential element attention (the carried-over state). Two heads read the result:

* entity recognition: a BIO tagger over the words (wikiHow-FG's nine types) on the step-local
  state;
* flow prediction: pair scores over ordered entity pairs (same step both ways, or from an
  earlier step to one up to ``max_gap`` steps later) for the 13 flow labels. With the
  ``pointer`` head (default) every entity *chooses* one (tail, label) among its candidates or
  "no outgoing flow" (a softmax over its choices, trained on the gold choice: 96 % of
  wikiHow-FG entities have out-degree 1); the older ``pairwise`` head classifies each pair
  alone into the labels + ``none`` and keeps each entity's best pair that beats ``none``.
  With ``attention_prior`` the log of the sequential attention mass tail -> head is added to
  the scores of pairs one step apart (the attention acts as a tail-side pointer).

Flows go in and out as ``{(head, tail): label}`` (training targets) and ``(head, tail, label,
score)`` tuples (decoded), with entity indices and label ids; how the pointer head lays out one
head's choices is internal to this file.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...config import configurable
from ...errors import GraphmieError
from ...nn.seq_attention import SequentialElementAttention
from .graph import EDGE_TYPES, StepGraph, candidate_pairs

#: the model name predicted facts carry in their provenance
MODEL_NAME = "graphmie.procedure.seqgmper"
#: how word tags are decoded (:meth:`SeqGMPER.decode_tags`)
TAG_DECODES = ("argmax", "bio")


@dataclass
class EntityInputs:
    """What the flow heads read of a document's entities: the node ids of each entity's words
    (``spans``), the type ids ``[E]``, each entity's step and first token index."""

    spans: list[list[int]]
    types: torch.Tensor
    steps: list[int]
    starts: list[int]


@dataclass
class FlowScores:
    """The scored candidate flows of one document: ``pairs`` (head, tail) entity indices,
    ``logits`` ``[P, n_labels + 1]`` (last = none), the entity representations and type ids."""

    pairs: list[tuple[int, int]]
    logits: torch.Tensor
    reps: torch.Tensor
    types: torch.Tensor
    domain: int = 0


@configurable
class SeqGMPER(nn.Module):
    def __init__(self, text_dim: int = 384, image_dim: int = 1280, hidden: int = 128, heads: int = 4,
                 gat_layers: int = 1, seq_attention: bool = True, dropout: float = 0.2, max_gap: int = 2,
                 flow_head: str = "pointer", attention_prior: bool = True, seq_detach: bool = True,
                 n_tags: int = 19, n_types: int = 9, n_labels: int = 13, source_heads: tuple[int, int, int] | None = None,
                 lora_rank: int = 0, lora_alpha: float = 16.0, tag_decode: str = "argmax"):
        super().__init__()
        from torch_geometric.nn import GATv2Conv

        if tag_decode not in TAG_DECODES:
            raise GraphmieError("E022", None, name="model.tag_decode", value=tag_decode, choices=", ".join(TAG_DECODES))
        self.tag_decode = tag_decode
        self.hidden, self.max_gap = hidden, max_gap
        self.n_labels = n_labels
        if flow_head not in ("pairwise", "pointer"):
            raise GraphmieError("E022", None, name="model.flow_head", value=flow_head, choices="pairwise, pointer")
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
        # a second domain's label heads (tags, types, flow labels) over the shared encoder and graph;
        # drawn from a random stream of their own, so the shared part starts as without them
        self.src = None
        if source_heads:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(torch.initial_seed() + 2)
                self.src = self._label_heads(*source_heads, text_dim, hidden, dropout)
        # the word encoder tuned with LoRA (None: the words come as frozen MiniLM features)
        self.word_encoder = None
        if lora_rank:
            self.attach_word_encoder(lora_rank, lora_alpha)

    def attach_word_encoder(self, rank: int, alpha: float) -> None:
        """Compute the word vectors with MiniLM + LoRA adapters (:mod:`.encoder`) from now on; the
        adapters draw their initial weights from a random stream of their own."""
        from .encoder import LoRAWordEncoder

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + 3)
            self.word_encoder = LoRAWordEncoder(rank, alpha)

    def _label_heads(self, n_tags: int, n_types: int, n_labels: int, text_dim: int, hidden: int,
                     dropout: float) -> nn.ModuleDict:
        """The label heads of a source domain, shaped as the target's."""
        heads = nn.ModuleDict({
            "tagger": nn.Sequential(nn.Linear(hidden + text_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, n_tags)),
            "type_emb": nn.Embedding(n_types, 16),
            "pair": nn.Sequential(nn.Linear(3 * hidden + 2 * 16 + 16 + 2, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_labels + 1))})
        if self.flow_head == "pointer":
            heads["no_flow"] = nn.Sequential(nn.Linear(hidden + 16, hidden), nn.GELU(), nn.Linear(hidden, 1))
        heads.n_labels = n_labels
        return heads

    def heads(self, domain: int = 0):
        """``(tagger, type_emb, pair, no_flow, n_labels)`` of domain 0 (the target) or 1 (the source)."""
        if domain == 0:
            return self.tagger, self.type_emb, self.pair, self.no_flow, self.n_labels
        if self.src is None:
            raise GraphmieError("E009", None, detail=f"domain {domain}: this model has no source-domain heads")
        no_flow = self.src["no_flow"] if "no_flow" in self.src else None
        return self.src["tagger"], self.src["type_emb"], self.src["pair"], no_flow, self.src.n_labels

    def is_trainable_key(self, key: str) -> bool:
        """State keys a checkpoint holds: all but the frozen pretrained weights of the word encoder."""
        return not key.startswith("word_encoder.") or "lora_" in key

    def trainable_state(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if self.is_trainable_key(k)}

    # --- encoder ------------------------------------------------------------------------
    def encode(self, text_x: torch.Tensor, image_x: torch.Tensor | None,
               graph: StepGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node states ``[N, 2 * hidden]`` (text nodes first, then image nodes, as in the graph):
        the step-local state (after the step-graph GAT) next to the state after sequential
        attention; and that attention ``[heads, N, N]`` (None in the ablation without it, where
        both halves are the local state, so the heads have the same shape and the only
        difference is the carry-over)."""
        parts = [self.text_in(text_x) + self.kind_emb.weight[0]]
        if image_x is not None and image_x.numel():
            parts.append(self.image_in(image_x) + self.kind_emb.weight[1])
        x = torch.cat(parts)
        ei, et = graph.edge_index()
        ea = self.edge_emb(et)
        for conv, norm in zip(self.gats, self.gat_norm):
            x = norm(x + self.drop(conv(x, ei, ea)))
        att, y = None, x
        if self.seq is not None:
            y, att = self.seq(x, torch.tensor(graph.node_step, dtype=torch.long), return_attention=True)
        return torch.cat([x, y], dim=-1), att   # step-local state | state carried over from the previous step

    def tag_logits(self, h_text: torch.Tensor, text_x: torch.Tensor, domain: int = 0) -> torch.Tensor:
        """BIO tag logits from the step-local half of the node states ``[n, 2 * hidden]``."""
        return self.heads(domain)[0](torch.cat([h_text[:, :self.hidden], text_x], dim=-1))

    def span_reps(self, h: torch.Tensor, spans: list[list[int]]) -> torch.Tensor:
        """``spans``: node ids of each entity's words -> ``[E, hidden]`` (first word + mean of the
        ``[N, 2 * hidden]`` node states)."""
        if not spans:
            return h.new_zeros(0, self.hidden)
        first = h[torch.tensor([s[0] for s in spans])]
        mean = torch.stack([h[torch.tensor(s)].mean(0) for s in spans])
        return self.span_proj(torch.cat([first, mean], dim=-1))

    # --- the sequential attention as flow evidence --------------------------------------
    @staticmethod
    def pair_attention(att: torch.Tensor | None, spans: list[list[int]], pairs: list[tuple[int, int]]) -> torch.Tensor:
        """``[P, 3]``: how much the tail's words attend to the head's words in the sequential
        attention ``att`` (mass, averaged over heads and tail words; the same relative to a uniform
        spread over the previous step, /10 capped at 1; and the log of that ratio). Zero when there
        is no sequential attention (ablation) or the head is not in the step just before the tail."""
        if att is None or not pairs:
            return torch.zeros(len(pairs), 3)
        att = att.mean(0)                                                  # [N, N]
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

    @staticmethod
    def attention_loss(att: torch.Tensor | None, spans: list[list[int]], flows: list[tuple[int, int]]) -> torch.Tensor:
        """Supervise the sequential attention with the gold flows that cross exactly one step:
        the tail's words should put their attention mass on the head's words (``-log mass``).
        This is what makes "the state of this entity comes from that one" explicit."""
        if att is None or not flows:
            return torch.zeros(())
        att = att.mean(0)
        losses = []
        for a, b in flows:
            mass = att[torch.tensor(spans[b])][:, torch.tensor(spans[a])].sum(1).mean()
            losses.append(-torch.log(mass.clamp(min=1e-6)))
        return torch.stack(losses).mean()

    # --- flow scores --------------------------------------------------------------------
    def pair_logits(self, ents: torch.Tensor, types: torch.Tensor, steps: list[int], starts: list[int],
                    pairs: list[tuple[int, int]], spans: list[list[int]] | None = None,
                    att: torch.Tensor | None = None, domain: int = 0) -> torch.Tensor:
        """``[P, n_labels + 1]`` logits for ordered entity pairs (head, tail); ``spans`` and the
        sequential attention ``att`` give the attention features and prior."""
        _, type_emb, pair, _, n_labels = self.heads(domain)
        if not pairs:
            return ents.new_zeros(0, n_labels + 1)
        hi = torch.tensor([p[0] for p in pairs])
        ti = torch.tensor([p[1] for p in pairs])
        gap = []
        for a, b in pairs:
            d = steps[b] - steps[a]
            gap.append(self.max_gap + 1 if d == 0 and starts[a] > starts[b] else min(d, self.max_gap))
        gap = torch.tensor(gap)
        h, t = ents[hi], ents[ti]
        pa = self.pair_attention(att, spans, pairs) if spans is not None else torch.zeros(len(pairs), 3)
        feats = torch.cat([h, t, h * t, type_emb(types[hi]), type_emb(types[ti]), self.dist_emb(gap),
                           pa[:, :2]], -1)
        logits = pair(feats)
        if self.att_prior is not None:
            prior = torch.zeros_like(logits)
            prior[:, :n_labels] = self.att_prior * pa[:, 2:3]
            logits = logits + prior
        return logits

    def flow_scores(self, h: torch.Tensor, att: torch.Tensor | None, ents: EntityInputs,
                    domain: int = 0) -> FlowScores | None:
        """The candidate flows of a document's entities, scored (None: fewer than two entities
        or no candidate pair)."""
        if len(ents.spans) < 2:
            return None
        pairs = candidate_pairs(ents.steps, self.max_gap)
        if not pairs:
            return None
        reps = self.span_reps(h, ents.spans)
        logits = self.pair_logits(reps, ents.types, ents.steps, ents.starts, pairs, ents.spans, att, domain)
        return FlowScores(pairs, logits, reps, ents.types, domain)

    def _choices(self, s: FlowScores) -> dict[int, tuple[list[int], torch.Tensor]]:
        """Pointer head: for every head entity, the joint scores of choosing each of its candidate
        pairs with each label, then "no outgoing flow" last: ``{head: (pair indices, [k * n_labels + 1])}``,
        score ``j`` meaning pair ``idx[j // n_labels]`` with label ``j % n_labels``."""
        _, type_emb, _, no_flow, n_labels = self.heads(s.domain)
        nf = no_flow(torch.cat([s.reps, type_emb(s.types)], -1)).squeeze(-1)     # [E]
        groups: dict[int, list[int]] = {}
        for k, (a, _) in enumerate(s.pairs):
            groups.setdefault(a, []).append(k)
        return {a: (idx, torch.cat([s.logits[idx, :n_labels].reshape(-1), nf[a:a + 1]]))
                for a, idx in groups.items()}

    # --- losses -------------------------------------------------------------------------
    def flow_loss(self, s: FlowScores, gold: dict[tuple[int, int], int], none_weight: float = 1.0) -> torch.Tensor:
        """The flow loss for gold flows ``{(head, tail): label}``. Pointer head: each head entity's
        ``-log`` probability of its gold choices (several gold flows from one head share the mass);
        heads with no gold flow are scored on "no flow" and weighted by ``none_weight``. Pairwise
        head: cross-entropy of each pair's label (or none, weighted by ``none_weight``)."""
        n_labels = self.heads(s.domain)[4]
        if self.flow_head == "pairwise":
            y = torch.tensor([gold.get(p, n_labels) for p in s.pairs])
            w = torch.ones(n_labels + 1)
            w[n_labels] = none_weight
            return nn.functional.cross_entropy(s.logits, y, weight=w)
        losses, weights = [], []
        for idx, sc in self._choices(s).values():
            pos = [j * n_labels + gold[s.pairs[k]] for j, k in enumerate(idx) if s.pairs[k] in gold]
            weights.append(1.0 if pos else none_weight)
            pos = pos or [sc.numel() - 1]
            losses.append(torch.logsumexp(sc, 0) - torch.logsumexp(sc[torch.tensor(pos)], 0))
        w = torch.tensor(weights)
        return (torch.stack(losses) * w).sum() / w.sum()

    def loss(self, text_x: torch.Tensor, image_x: torch.Tensor | None, graph: StepGraph, tags: torch.Tensor,
             ents: EntityInputs, flows: dict[tuple[int, int], int], flow_weight: float = 1.0,
             none_weight: float = 1.0, attention_weight: float = 0.0, domain: int = 0) -> torch.Tensor:
        """The training objective of one document: tag cross-entropy over its words (``tags``: gold
        tag ids of the text nodes) + ``flow_weight`` x the flow loss over the gold entities ``ents``
        and flows ``{(head, tail): label}`` + ``attention_weight`` x the attention loss; with the
        label heads of ``domain``."""
        h, att = self.encode(text_x, image_x, graph)
        loss = nn.functional.cross_entropy(self.tag_logits(h[graph.text_nodes()], text_x, domain), tags)
        s = self.flow_scores(h, att, ents, domain)
        if s is not None:
            loss = loss + flow_weight * self.flow_loss(s, flows, none_weight)
            if attention_weight > 0:
                cross = [(a, b) for (a, b) in flows if ents.steps[b] - ents.steps[a] == 1]
                loss = loss + attention_weight * self.attention_loss(att, ents.spans, cross)
        return loss

    # --- decoding -----------------------------------------------------------------------
    def decode_tags(self, h: torch.Tensor, text_x: torch.Tensor, graph: StepGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """The tag id of every text node and its probability: each word's most probable tag
        (``tag_decode = "argmax"``), or each step's best tag path under the BIO constraints
        (``"bio"``: no ``I-X`` that does not continue an ``X``)."""
        probs = torch.softmax(self.tag_logits(h[graph.text_nodes()], text_x), -1)
        if self.tag_decode == "argmax":
            conf, pred = probs.max(-1)
            return pred, conf
        from itertools import groupby

        from ...data.wikihow_fg import BIO_TAGS
        from ...nn.bio import bio_viterbi

        logp = probs.clamp_min(1e-12).log()
        path, start = [], 0
        for _, words in groupby(graph.node_step[n] for n in graph.text_nodes()):   # a step's words are consecutive
            end = start + len(list(words))
            path += bio_viterbi(logp[start:end], BIO_TAGS)
            start = end
        pred = torch.tensor(path, dtype=torch.long)
        return pred, probs.gather(1, pred[:, None]).squeeze(1)

    def decode_flows(self, s: FlowScores | None) -> list[tuple[int, int, int, float]]:
        """At most one outgoing flow per head entity, ``(head, tail, label, probability)`` in head
        order: the pointer head's argmax choice unless it is "no flow"; the pairwise head's best
        pair whose best label beats none."""
        if s is None:
            return []
        n_labels = self.heads(s.domain)[4]
        best: dict[int, tuple[int, int, float]] = {}
        if self.flow_head == "pointer":
            for a, (idx, sc) in self._choices(s).items():
                pr = torch.softmax(sc, 0)
                j = int(pr.argmax())
                if j < pr.numel() - 1:
                    best[a] = (s.pairs[idx[j // n_labels]][1], j % n_labels, float(pr[j]))
        else:
            for (a, b), row in zip(s.pairs, torch.softmax(s.logits, -1)):
                lp, lab = row[:n_labels].max(0)
                if float(lp) > float(row[n_labels]) and float(lp) > best.get(a, (0, 0, 0.0))[2]:
                    best[a] = (b, int(lab), float(lp))
        return [(a, b, lab, p) for a, (b, lab, p) in sorted(best.items())]
