"""H-Index-style grounding (Yu et al., ACL 2023, "Grounded Multimodal Named Entity Recognition on
Social Media"): a head that scores an entity's candidate regions and decides groundability.

Follows the paper: grounding is choosing one of the candidate regions, trained with H-Index's
soft targets (IoU with the gold boxes, < 0.5 -> 0, normalised) and a KL loss, plus a
groundability decision. Differs: the tweet images are not obtainable here, so the shipped head
has no visual path (``use_visual=False``): it learns the text + geometry prior of the region
scorer from the gold boxes with simulated candidates (:mod:`.train`; ``graphmie train
configs/entity_hindex.toml``). The groundability head that reads the tagger's states lives with
the tagger (:mod:`graphmie.methods.mner`). At extraction time :mod:`graphmie.grounding` runs
this head for every task that grounds entities.
"""
from __future__ import annotations

import torch

from ...engine.checkpoint import Checkpoint, load_state_into
from ...engine.method import Method
from .model import GroundingHead, normalise_boxes

MODEL_NAME = "graphmie.entity.grounding_head"


class HIndex(Method):
    name = "hindex"
    task = "entity"
    model_name = MODEL_NAME
    schema = {
        "data": {"root": "../shared/data/gmner", "train_split": "train", "dev_split": "dev", "limit": 0},
        "model": {"entity_dim": 384, "region_dim": 1280, "hidden": 256, "use_visual": False, "dropout": 0.1},
        "training": {"epochs": 6, "batch_size": 64, "lr": 2e-3, "weight_decay": 1e-4, "ground_weight": 0.5,
                     "seed": 13, "threads": 1},
    }

    def __init__(self, ckpt: Checkpoint, head: GroundingHead):
        super().__init__(ckpt)
        self.head = head

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "HIndex":
        cfg = cls.resolve_config(ckpt.config, ckpt.path)
        head = GroundingHead(**cfg["model"])
        load_state_into(head, ckpt)
        head.eval()
        return cls(ckpt, head)

    @torch.no_grad()
    def choose(self, entity_texts: list[str], boxes: list, size, threshold: float = 0.5,
               ground_probs: list | None = None) -> list[tuple]:
        """For each entity text, ``(candidate index or None, its softmax score, groundability)``
        among the pixel ``boxes`` of an image of ``size`` (w, h). ``ground_probs`` (one per entity,
        None where the caller has none) replaces the head's own groundability."""
        from ...encoders.text import get_text_encoder

        emb = get_text_encoder().encode(entity_texts)
        n, R = len(entity_texts), len(boxes)
        norm = normalise_boxes(boxes, *size) if R else torch.zeros(0, 4)
        out = self.head(emb, norm[None].expand(n, R, 4) if R else torch.zeros(n, 0, 4))
        gp = None
        if ground_probs is not None:
            own = out.ground_logit.sigmoid()
            gp = torch.tensor([float(p) if p is not None else float(own[i]) for i, p in enumerate(ground_probs)])
        return self.head.predict(out, threshold=threshold, ground_prob=gp)

    @classmethod
    def train(cls, config, out_dir):
        from .train import train

        return train(cls, config, out_dir)
