"""H-Index-style grounding head: score candidate regions for an entity, and decide groundability.

H-Index (Yu et al., ACL 2023, "Grounded Multimodal Named Entity Recognition on Social Media")
casts entity grounding as choosing one of the detector's candidate regions. Training uses
*soft* targets: the IoU of each candidate with the gold box(es), with IoU < 0.5 set to 0 and the
rest normalised to a distribution; the region scores are trained with KL divergence to it. At
inference the top-scoring region is the grounding when the entity is predicted groundable.

Interface (shared with the procedure task)::

    head = GroundingHead(entity_dim=384, region_dim=1280, use_visual=True)
    out = head(entity, boxes, regions=feats, mask=mask)   # entity [B,De], boxes [B,R,4] in 0..1,
                                                          # regions [B,R,Dr] or None, mask [B,R] bool
    out.region_logits   # [B,R] (masked candidates at -inf)
    out.ground_logit    # [B]   (is the entity visible at all?)
    loss = head.loss(out, soft_targets(cands, golds) per row, groundable [B])
    head.predict(out)   # per row: candidate index or None

Region representation = a projection of the region's visual feature (optional; zero when the
head is used geometry-only) + an embedding of its box geometry (normalised x0,y0,x1,y1, w, h,
area, log aspect). Scoring is additive attention ``v^T tanh(W_e e + W_r r)`` plus a bilinear
term ``(W_e e) . (W_r r)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from ...config import configurable
from ...document import Box

IOU_THRESHOLD = 0.5


def box_geometry(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] boxes normalised to 0..1 -> [..., 8] geometry features."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    w, h = (x1 - x0).clamp(min=1e-4), (y1 - y0).clamp(min=1e-4)
    return torch.stack([x0, y0, x1, y1, w, h, w * h, torch.log(w / h)], -1)


def normalise_boxes(boxes: Sequence[Box], width: float, height: float) -> torch.Tensor:
    """Pixel boxes -> [R,4] tensor in 0..1 of the image size."""
    if not boxes:
        return torch.zeros(0, 4)
    return torch.tensor([[b.x0 / width, b.y0 / height, b.x1 / width, b.y1 / height] for b in boxes],
                        dtype=torch.float32).clamp(0, 1)


def soft_targets(candidates: Sequence[Box], gold: Sequence[Box], threshold: float = IOU_THRESHOLD) -> torch.Tensor:
    """H-Index soft targets: max IoU of each candidate with any gold box, < threshold -> 0, normalised.

    Returns a zero vector when no candidate reaches the threshold (the row then carries no
    region loss, only the groundability loss).
    """
    t = torch.tensor([max((c.iou(g) for g in gold), default=0.0) for c in candidates], dtype=torch.float32)
    t = torch.where(t >= threshold, t, torch.zeros_like(t))
    s = t.sum()
    return t / s if s > 0 else t


@dataclass
class GroundingOutput:
    region_logits: torch.Tensor   # [B, R]
    ground_logit: torch.Tensor    # [B]
    mask: torch.Tensor            # [B, R] bool


@configurable
class GroundingHead(nn.Module):
    def __init__(self, entity_dim: int = 384, region_dim: int = 1280, hidden: int = 256, use_visual: bool = True,
                 dropout: float = 0.1):
        super().__init__()
        self.entity_dim, self.region_dim, self.hidden, self.use_visual = entity_dim, region_dim, hidden, use_visual
        self.ent = nn.Sequential(nn.Linear(entity_dim, hidden), nn.Tanh())
        self.geo = nn.Sequential(nn.Linear(8, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
        self.vis = nn.Linear(region_dim, hidden) if use_visual else None
        self.attn_e = nn.Linear(hidden, hidden, bias=False)
        self.attn_r = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)
        self.drop = nn.Dropout(dropout)
        self.ground = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, entity: torch.Tensor, boxes: torch.Tensor, regions: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> GroundingOutput:
        B, R = boxes.shape[:2]
        if mask is None:
            mask = torch.ones(B, R, dtype=torch.bool)
        e = self.drop(self.ent(entity))                                   # [B,H]
        r = self.geo(box_geometry(boxes))                                 # [B,R,H]
        if self.vis is not None and regions is not None:
            r = r + self.vis(self.drop(regions))
        r = self.drop(torch.tanh(r))
        add = self.v(torch.tanh(self.attn_e(e)[:, None, :] + self.attn_r(r))).squeeze(-1)
        bil = (self.attn_e(e)[:, None, :] * r).sum(-1) / math.sqrt(self.hidden)
        logits = (add + bil).masked_fill(~mask, float("-inf"))
        # groundability from the entity and an attention summary of its candidates
        has = mask.any(1)
        att = torch.where(has[:, None], logits.softmax(-1).nan_to_num(0.0), torch.zeros_like(logits))
        ctx = (att[..., None] * r).sum(1)
        best = torch.where(has, logits.max(-1).values, torch.zeros(B)) if R else torch.zeros(B)
        n = mask.sum(1).float()
        ground = self.ground(torch.cat([e, ctx, best[:, None], torch.log1p(n)[:, None]], -1)).squeeze(-1)
        return GroundingOutput(logits, ground, mask)

    @staticmethod
    def loss(out: GroundingOutput, targets: torch.Tensor, groundable: Optional[torch.Tensor] = None,
             ground_weight: float = 1.0) -> torch.Tensor:
        """KL(targets || softmax(region_logits)) over rows whose targets are non-zero, plus BCE on
        groundability when ``groundable`` [B] (0/1) is given."""
        rows = targets.sum(-1) > 0
        total = torch.zeros(())
        if rows.any():
            logp = out.region_logits[rows].log_softmax(-1)
            t = targets[rows]
            kl = torch.where(t > 0, t * (t.clamp(min=1e-12).log() - logp), torch.zeros_like(t)).sum(-1)
            total = total + kl.mean()
        if groundable is not None:
            total = total + ground_weight * nn.functional.binary_cross_entropy_with_logits(
                out.ground_logit, groundable.float())
        return total

    @staticmethod
    def predict(out: GroundingOutput, threshold: float = 0.5, ground_prob: Optional[torch.Tensor] = None):
        """Per row: (index of the best candidate or None, its softmax score, groundability prob).
        ``ground_prob`` overrides the head's own groundability (e.g. the tagger's)."""
        p = (out.ground_logit.sigmoid() if ground_prob is None else ground_prob).detach()
        logits = out.region_logits.detach()
        res = []
        for i in range(logits.shape[0]):
            if not out.mask[i].any() or p[i] < threshold:
                res.append((None, None, float(p[i])))
                continue
            sm = logits[i].softmax(-1)
            j = int(sm.argmax())
            res.append((j, float(sm[j]), float(p[i])))
        return res
