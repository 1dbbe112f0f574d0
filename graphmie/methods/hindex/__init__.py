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

from ...engine.checkpoint import Checkpoint, load_state_into
from ...engine.method import Method
from .model import GroundingHead

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

    @classmethod
    def train(cls, config, out_dir):
        from .train import train

        return train(cls, config, out_dir)
