"""The MRE-ISE network: entity pair from MiniLM, masked GAT over the cross-modal graph with GIB
masks and a Gaussian bottleneck, latent multimodal topics, and a relation classifier.

* **Entity pair** from the fine-tuned MiniLM: the post is marked ``< head > ... [ tail ]`` and the image
  description appended as the second segment; the hidden states of the two opening markers are the
  head/tail representations. The top ``finetune_layers`` are fine-tuned; the bottom layers stay frozen
  (so their outputs can be cached) or, with ``lora_rank > 0``, are adapted by LoRA
  (:mod:`graphmie.nn.lora`).
* **Cross-modal graph** encoded by :class:`~graphmie.nn.masked_gat.MaskedGATLayer`: attention messages
  multiplied by the GIB edge masks, node features by the GIB node masks (:mod:`graphmie.nn.gib`).
* **Readout**: pair-conditioned attention pooling + mean of the head and tail nodes, squeezed through a
  Gaussian bottleneck.
* **Latent multimodal topics** (:mod:`graphmie.nn.topic`).
* **Consistency gate** (``use_gate``, :class:`~graphmie.nn.consistency_gate.ConsistencyGate`): a
  per-post value g in (0, 1) of how much the caption agrees with the text; it scales the caption's
  share of attention in the tuned encoder layers (log g added to the caption keys' attention scores),
  the features of the visual-side graph nodes and the caption's words in the topic model's input.
  With frozen bottom layers (``lora_rank`` 0) the caption still reaches the text through those
  layers' cached states; only the tuned layers are gated.
* A relation classifier over the concatenation; the loss is cross-entropy plus the weighted GIB,
  topic and gate-consistency terms (:func:`loss`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch_geometric.utils import softmax as pyg_softmax

from scene_graphs.crossmodal import NODE_TYPES

from ...nn.consistency_gate import ConsistencyGate
from ...nn.gib import GaussianBottleneck, GIBMasks
from ...nn.masked_gat import MaskedGATLayer
from ...nn.topic import NeuralTopicModel


def extended_mask(mask: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """[B, L] 0/1 padding mask -> the additive [B, 1, 1, L] attention mask of the BERT layers."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


#: node types of the cross-modal graph that come from the image or its description (gated)
VISUAL_NODE_TYPES = tuple(i for i, t in enumerate(NODE_TYPES) if not t.startswith("text:"))


class PostREModel(nn.Module):
    """``n_node_types`` / ``n_edge_types``: the cross-modal graph's node and edge type counts (edges
    are also reversed, so ``2 * n_edge_types`` edge embeddings)."""

    def __init__(self, n_node_types: int, n_edge_types: int, top_layers=None, n_labels: int = 23,
                 hidden: int = 384, gnn_dim: int = 128, gnn_layers: int = 2, z_dim: int = 64, use_graph: bool = True,
                 use_gib: bool = True, use_topics: bool = True, vocab_size: int = 0, n_topics: int = 16,
                 tau: float = 0.5, prior: float = 0.7, dropout: float = 0.1, lora_layers: int = 0,
                 lora_rank: int = 0, lora_alpha: float | None = None, use_gate: bool = False,
                 caption_vocab_from: int | None = None):
        """``caption_vocab_from``: index of the first caption word (``v:``) in the topic vocabulary."""
        super().__init__()
        self.use_graph, self.use_gib, self.use_topics = use_graph, use_gib, use_topics and vocab_size > 0
        self.top = nn.ModuleList(copy.deepcopy(list(top_layers))) if top_layers is not None else nn.ModuleList()
        # the first `lora_layers` encoder layers stay frozen and get low-rank adapters
        self.lora_layers = lora_layers if lora_rank else 0
        if self.lora_layers:
            from ...nn.lora import add_lora

            for layer in self.top[:self.lora_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
                add_lora(layer, lora_rank, lora_alpha)
        self.drop = nn.Dropout(dropout)
        self.gate = ConsistencyGate(hidden) if use_gate else None
        self.caption_vocab_from = vocab_size if caption_vocab_from is None else caption_vocab_from
        feat = 2 * hidden
        if use_graph:
            self.node_emb = nn.Linear(hidden, gnn_dim)
            self.type_emb = nn.Embedding(n_node_types, gnn_dim)
            self.geo = nn.Linear(9, gnn_dim)
            self.role = nn.Linear(2, gnn_dim)
            self.edge_emb = nn.Embedding(2 * n_edge_types, 32)
            self.pair_proj = nn.Linear(2 * hidden, gnn_dim)
            self.gib = GIBMasks(gnn_dim, 32, tau=tau, prior=prior) if use_gib else None
            self.gnn = nn.ModuleList(MaskedGATLayer(gnn_dim, 32, dropout=dropout) for _ in range(gnn_layers))
            self.pool_att = nn.Linear(2 * gnn_dim, 1)
            self.bottleneck = GaussianBottleneck(3 * gnn_dim, z_dim) if use_gib else nn.Linear(3 * gnn_dim, z_dim)
            feat += z_dim
        if self.use_topics:
            self.ntm = NeuralTopicModel(vocab_size, n_topics, dim_out=64)
            feat += n_topics + 64
        self.classifier = nn.Sequential(nn.Linear(feat, hidden), nn.GELU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, n_labels))

    def is_trainable_key(self, k: str) -> bool:
        """Saved tensors: everything but the frozen weights of LoRA-adapted layers."""
        return not any(k.startswith(f"top.{i}.") for i in range(self.lora_layers)) or ".lora_" in k

    def trainable_state(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if self.is_trainable_key(k)}

    def encode_top(self, hidden, mask, caption_bias=None):
        """``caption_bias``: [B, L] added to the attention scores of those keys (the gate's log g on
        caption tokens)."""
        ext = extended_mask(mask, hidden.dtype)
        if caption_bias is not None:
            ext = ext + caption_bias[:, None, None, :].to(ext.dtype)
        for layer in self.top:
            hidden = layer(hidden, ext)
        return hidden

    def graph_features(self, g: dict, pair: torch.Tensor, gate: torch.Tensor | None = None):
        x = (self.node_emb(g["emb"].float()) + self.type_emb(g["node_type"]) + self.geo(g["geo"])
             + self.role(g["role"]))
        if gate is not None:       # visual-side nodes scaled by their post's gate value
            visual = torch.isin(g["node_type"], torch.tensor(VISUAL_NODE_TYPES, device=x.device))
            x = x * torch.where(visual, gate[g["batch"]], torch.ones_like(gate[g["batch"]])).unsqueeze(-1)
        ea = self.edge_emb(g["edge_type"])
        p = self.pair_proj(pair)
        batch, ei = g["batch"], g["edge_index"]
        aux = x.new_zeros(())
        node_mask = edge_mask = None
        if self.gib is not None:
            node_mask, edge_mask, aux = self.gib(x, ei, ea, p, batch)
            x = x * node_mask.unsqueeze(-1)
        for layer in self.gnn:
            x = layer(x, ei, ea, edge_mask)
        B = pair.size(0)
        att = pyg_softmax(self.pool_att(torch.cat([x, p[batch]], -1)).squeeze(-1), batch, num_nodes=x.size(0))
        pooled = x.new_zeros(B, x.size(1)).index_add_(0, batch, x * att.unsqueeze(-1))
        roles = []
        for k in range(2):
            w = g["role"][:, k:k + 1]
            s = x.new_zeros(B, x.size(1)).index_add_(0, batch, x * w)
            c = x.new_zeros(B, 1).index_add_(0, batch, w)
            roles.append(s / c.clamp(min=1))
        h = torch.cat([pooled] + roles, -1)
        if self.use_gib:
            z, kl = self.bottleneck(h)
            aux = aux + kl
        else:
            z = self.bottleneck(h)
        return z, aux, (node_mask, edge_mask)

    def gate_values(self, text_vec, cap_vec, gate_override=None):
        """[B] gate values (``gate_override``: a fixed value, e.g. 0 to remove the caption), or None."""
        if gate_override is not None:
            return torch.full((text_vec.size(0),), float(gate_override), device=text_vec.device)
        return self.gate(text_vec, cap_vec) if self.gate is not None else None

    def features(self, hidden, mask, head_pos, tail_pos, graph=None, bow=None, caption_mask=None, text_vec=None,
                 cap_vec=None, gate_override=None):
        """The classifier's input parts: ``{"pair", "graph", "topics"}`` feature tensors, the aux losses, the
        GIB masks and the gate values."""
        aux = {}
        gate = None
        if self.gate is not None and text_vec is not None:
            gate = self.gate_values(text_vec, cap_vec, gate_override)
            if self.training:
                aux["consistency"] = self.gate.consistency_loss(text_vec, cap_vec)
        bias = None
        if gate is not None and caption_mask is not None:
            bias = caption_mask.to(hidden.dtype) * torch.log(gate.clamp(min=1e-4)).unsqueeze(-1)
        h = self.encode_top(hidden, mask, bias)
        ar = torch.arange(h.size(0), device=h.device)
        pair = torch.cat([h[ar, head_pos], h[ar, tail_pos]], -1)
        feats = {"pair": self.drop(pair)}
        masks = (None, None)
        if self.use_graph:
            z, gib_loss, masks = self.graph_features(graph, pair, gate)
            feats["graph"] = z
            aux["gib"] = gib_loss
        if self.use_topics:
            if gate is not None:
                scale = torch.ones_like(bow)
                scale[:, self.caption_vocab_from:] = gate.unsqueeze(-1)
                bow = bow * scale
            tfeat, _, ntm_loss = self.ntm(bow)
            feats["topics"] = tfeat
            aux["topic"] = ntm_loss
        return feats, aux, masks, gate

    def classify(self, feats: dict, drop: str | None = None) -> torch.Tensor:
        """Relation logits from the feature parts (``drop``: one branch zeroed, to measure its share)."""
        return self.classifier(torch.cat([torch.zeros_like(v) if k == drop else v for k, v in feats.items()], -1))

    def forward(self, hidden, mask, head_pos, tail_pos, graph=None, bow=None, caption_mask=None, text_vec=None,
                cap_vec=None):
        """hidden: [B, L, H] outputs of the frozen bottom layers. Returns (logits, aux dict, masks); with the
        gate ``aux["gate"]`` holds its values."""
        feats, aux, masks, gate = self.features(hidden, mask, head_pos, tail_pos, graph, bow, caption_mask,
                                                text_vec, cap_vec)
        if gate is not None:
            aux["gate"] = gate
        return self.classify(feats), aux, masks


class PostEnsemble(nn.Module):
    """Relation models of the same labels and inputs averaged (``model.members``): the mean of the members'
    label distributions, returned as its log so that :func:`decode` and the calibration read it as logits.
    The same calls as :class:`PostREModel` for inference: ``features`` gives each branch as a list with one
    tensor per member and ``classify`` takes that back; the GIB masks are the first member's, the gate
    the members' mean. Inference only (each member is trained alone)."""

    def __init__(self, members: list[PostREModel]):
        super().__init__()
        self.members = nn.ModuleList(members)
        first = members[0]
        # what make_batch and predict read of the model: the inputs every member shares
        self.use_graph, self.use_topics, self.gate = first.use_graph, first.use_topics, first.gate
        self.ntm = first.ntm if first.use_topics else None

    def features(self, gate_override=None, **inputs):
        outs = [m.features(**inputs, gate_override=gate_override) for m in self.members]
        feats = {k: [o[0][k] for o in outs] for k in outs[0][0]}
        gate = None if outs[0][3] is None else torch.stack([o[3] for o in outs]).mean(0)
        return feats, {}, outs[0][2], gate

    def classify(self, feats: dict, drop: str | None = None) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m.classify({k: v[i] for k, v in feats.items()}, drop).float(), -1)
                             for i, m in enumerate(self.members)]).mean(0)
        return probs.clamp_min(1e-12).log()

    def forward(self, **inputs):
        feats, aux, masks, gate = self.features(**inputs)
        if gate is not None:
            aux["gate"] = gate
        return self.classify(feats), aux, masks


def loss(logits: torch.Tensor, aux: dict, target: torch.Tensor, gib_weight: float,
         topic_weight: float, gate_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy plus the GIB compression term, the topic model's ELBO and the gate's consistency
    loss, weighted."""
    out = torch.nn.functional.cross_entropy(logits, target)
    if "consistency" in aux:
        out = out + gate_weight * aux["consistency"]
    if "gib" in aux:
        out = out + gib_weight * aux["gib"]
    if "topic" in aux:
        out = out + topic_weight * aux["topic"]
    return out


def decode(logits: torch.Tensor, labels: list[str]) -> list[tuple[str, float]]:
    """The most probable label of each row and its probability."""
    score, k = torch.softmax(logits.float(), -1).max(-1)
    return [(labels[int(j)], float(sc)) for j, sc in zip(k.cpu(), score.cpu())]
