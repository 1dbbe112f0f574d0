"""The RE² network with its losses and its decoding.

:class:`FormRE2`: an input projection of block features and node geometry, edge-aware GAT
layers (:class:`~graphmie.nn.edge_gat.EdgeGATLayer`), an entity-label head and a pairwise
question→answer link scorer over ``[h_q, h_a, h_q*h_a, pair geometry]``. :class:`Ensemble`
averages the label and link probabilities of members trained from different seeds.

Losses: the pair BCE, RE²'s constraint objective (:func:`constraint_loss`: an answer's link
probabilities sum to at most 1) and its listwise form (:func:`listwise_loss`). Decoding:
:func:`constrained_decode` (an answer keeps its best question, a second only when very likely).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import configurable
from ...nn.edge_gat import EdgeGATLayer, with_self_loops
from .features import FEATURE_DIM

LABELS = ("question", "answer", "header", "other")


@configurable
class FormRE2(nn.Module):
    def __init__(self, in_dim: int = 398, geo_dim: int = 11, edge_dim: int = 23, pair_dim: int = 19,
                 hidden: int = 128, layers: int = 2, heads: int = 4, dropout: float = 0.1,
                 num_labels: int = len(LABELS)):
        super().__init__()
        self.in_proj = nn.Sequential(nn.Linear(in_dim + geo_dim, hidden), nn.GELU(), nn.LayerNorm(hidden))
        self.layers = nn.ModuleList(EdgeGATLayer(hidden, edge_dim, heads, dropout) for _ in range(layers))
        self.entity_head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                         nn.Linear(hidden, num_labels))
        self.link_head = nn.Sequential(nn.Linear(3 * hidden + pair_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                       nn.Linear(hidden, 1))

    def encode(self, x: torch.Tensor, geo: torch.Tensor, edge_index: torch.Tensor,
               edge_attr: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
        """Node states ``[N, hidden]``; ``self_loops=False``: the edges already carry
        :func:`~graphmie.nn.edge_gat.with_self_loops`' loops (an ensemble adds them once)."""
        h = self.in_proj(torch.cat([x, geo], -1))
        if self_loops:
            edge_index, edge_attr = with_self_loops(edge_index, edge_attr, h.shape[0])
        for layer in self.layers:
            h = layer(h, edge_index, edge_attr, self_loops=False)
        return h

    def entity_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.entity_head(h)

    def link_logits(self, h: torch.Tensor, pairs: torch.Tensor, pair_feats: torch.Tensor) -> torch.Tensor:
        """``pairs`` ``[P, 2]`` (question node, answer node) -> logits ``[P]``."""
        hq, ha = h[pairs[:, 0]], h[pairs[:, 1]]
        return self.link_head(torch.cat([hq, ha, hq * ha, pair_feats], -1)).squeeze(-1)

    def loss(self, ent_logits: torch.Tensor, labels: torch.Tensor, link_logits: torch.Tensor,
             link_targets: torch.Tensor, answers: torch.Tensor, entity_weight: float = 1.0,
             link_weight: float = 1.0, constraint_weight: float = 0.5, listwise_weight: float = 1.0,
             max_pos_weight: float = 5.0) -> torch.Tensor:
        """Entity cross-entropy + pair BCE (positives up-weighted, at most ``max_pos_weight``) +
        the constraint objective + the listwise loss; ``answers`` is each pair's answer node."""
        loss = entity_weight * F.cross_entropy(ent_logits, labels)
        if len(link_targets):
            pos = link_targets.sum().clamp(min=1)
            loss = loss + link_weight * F.binary_cross_entropy_with_logits(
                link_logits, link_targets, pos_weight=((len(link_targets) - pos) / pos).clamp(max=max_pos_weight))
            loss = loss + constraint_weight * constraint_loss(link_logits, answers)
            if listwise_weight:
                loss = loss + listwise_weight * listwise_loss(link_logits, answers, link_targets)
        return loss


def build_network(cfg: dict) -> FormRE2:
    """The network of a resolved config (block features, layout graph and pair feature sizes)."""
    from layout.graph import EDGE_DIM, GEO_DIM
    from layout.linking import PAIR_DIM

    return FormRE2(in_dim=FEATURE_DIM, geo_dim=GEO_DIM, edge_dim=EDGE_DIM, pair_dim=PAIR_DIM,
                   num_labels=len(LABELS), **cfg["model"])


class Ensemble(nn.Module):
    """Members trained from different seeds; their probabilities are averaged. One member saves
    with plain keys, several with ``members.<i>.`` prefixes (:meth:`checkpoint_state`)."""

    def __init__(self, members: list[FormRE2]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def checkpoint_state(self) -> dict:
        return self.members[0].state_dict() if len(self.members) == 1 else self.state_dict()

    def checkpoint_module(self) -> nn.Module:
        """The module whose ``load_state_dict`` takes :meth:`checkpoint_state`'s keys."""
        return self.members[0] if len(self.members) == 1 else self

    def encode(self, data) -> list[torch.Tensor]:
        edge_index, edge_attr = with_self_loops(data.edge_index, data.edge_attr, data.num_nodes)
        return [net.encode(data.x, data.geo, edge_index, edge_attr, self_loops=False) for net in self.members]

    def label_probs(self, hs: list[torch.Tensor], n: int) -> torch.Tensor:
        """``[n, labels]``: the members' mean label distribution of the first ``n`` nodes."""
        return torch.stack([torch.softmax(net.entity_logits(h[:n]), -1) for net, h in zip(self.members, hs)]).mean(0)

    def link_probs(self, hs: list[torch.Tensor], pairs: torch.Tensor, pair_feats: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.sigmoid(net.link_logits(h, pairs, pair_feats))
                            for net, h in zip(self.members, hs)]).mean(0)


def constraint_loss(link_logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """RE²'s constraint: each answer's link probabilities sum to at most 1, ``relu(Σ_q p(q,a) − 1)``
    averaged over the answers. ``answers`` ``[P]`` is the answer node of each pair."""
    if link_logits.numel() == 0:
        return link_logits.sum()
    p = torch.sigmoid(link_logits)
    n = int(answers.max()) + 1
    total = torch.zeros(n, dtype=p.dtype).index_add_(0, answers, p)
    return torch.relu(total - 1.0).sum() / max(len(torch.unique(answers)), 1)


def listwise_loss(link_logits: torch.Tensor, answers: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each answer picks among its candidate questions *or none* (a fixed null logit of 0,
    the point where the pair probability is 0.5): ``-log sum_{gold q} e^{s_qa} /
    (1 + sum_q e^{s_qa})``, or ``-log 1 / (1 + sum_q e^{s_qa})`` for an answer with no
    question. The softmax makes an answer's questions compete, the constraint in listwise form."""
    if link_logits.numel() == 0:
        return link_logits.sum()
    _, group = torch.unique(answers, return_inverse=True)
    g = int(group.max()) + 1
    z = link_logits
    zero = torch.zeros(g, dtype=z.dtype)
    gmax = zero.scatter_reduce(0, group, z, "amax", include_self=True)          # includes the null logit 0
    den = torch.exp(-gmax).index_add(0, group, torch.exp(z - gmax[group]))
    log_den = gmax + torch.log(den)
    pos = targets > 0.5
    zp = torch.where(pos, z, torch.full_like(z, -1e4))
    has_pos = torch.zeros(g, dtype=torch.bool).index_fill_(0, group[pos], True)
    pmax = torch.full((g,), -1e4, dtype=z.dtype).scatter_reduce(0, group, zp, "amax", include_self=True)
    num = torch.zeros(g, dtype=z.dtype).index_add(0, group, torch.exp(zp - pmax[group]) * pos)
    log_num = torch.where(has_pos, pmax + torch.log(num.clamp(min=1e-30)), torch.zeros_like(pmax))
    return (log_den - log_num).mean()


def constrained_decode(pairs: list[tuple[int, int]], probs: list[float], threshold: float = 0.5,
                       second_threshold: float = 0.9, constrained: bool = True) -> list[tuple[int, int, float]]:
    """(question, answer, prob) links. Constrained: per answer its best question if
    ``p >= threshold``, plus others only if ``p >= second_threshold``."""
    if not constrained:
        return [(q, a, p) for (q, a), p in zip(pairs, probs) if p >= threshold]
    by_answer: dict[int, list[tuple[float, int]]] = {}
    for (q, a), p in zip(pairs, probs):
        by_answer.setdefault(a, []).append((p, q))
    out = []
    for a, lst in by_answer.items():
        lst.sort(reverse=True)
        for rank, (p, q) in enumerate(lst):
            if p >= (threshold if rank == 0 else second_threshold):
                out.append((q, a, p))
    return out
