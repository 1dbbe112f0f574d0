"""SeqGMPER-style procedure extraction (after SeqGMPER, LREC-COLING 2024): step graphs with
sequential multimodal attention across steps.

Follows the paper: every step becomes a graph of its elements (words and image regions); every
element of step *t* attends to the elements of step *t-1* (:mod:`graphmie.nn.seq_attention`), so
the state of an entity carries over from the step that produced it; entities are tagged per word.
Differs: the target is wikiHow-FG (Shirai et al., RepL4NLP 2023), so besides the entities the
model predicts the flow graph (13 flow labels, within and across steps) with a pointer head
(each entity chooses one outgoing flow or none) and uses the sequential attention as flow
evidence (attention features, a log-attention prior, an attention loss on flows that cross one
step). The encoder is frozen MiniLM (no fine-tuning), the textual scene graph is the spaCy
dependency parse of the given words, and wikiHow-FG has no images: the image path (region
proposals, EfficientNet features) and the groundings of step objects and tools, by the shared
grounding service (:mod:`graphmie.grounding`), are untrained and unmeasured here.

Domain adaptation (the wikiHow-FG journal version adapts from recipes; issue 17): the
``[adaptation]`` section pre-trains on, or trains jointly with, the English recipe flow graphs
(:mod:`graphmie.data.recipe_fg`), their labels mapped onto wikiHow-FG's or given label heads of
their own; the ``[encoder]`` section tunes MiniLM with LoRA adapters on every layer
(:mod:`.encoder`) in a last stage instead of keeping it frozen. Defaults: neither (the shipped
model).

Parts: :mod:`.graph` (step graph), :mod:`.model` (network, losses, decoding), :mod:`.encoder`
(the LoRA word encoder), :mod:`.samples` (documents -> samples -> documents), :mod:`.train`
(training schedules through the Trainer).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ...document import Document
from ...engine.checkpoint import Checkpoint, load_state_into
from ...engine.method import Method, Result
from ...errors import GraphmieError
from .model import MODEL_NAME, SeqGMPER

DEFAULT_MODEL = {"hidden": 128, "heads": 4, "gat_layers": 1, "seq_attention": True, "dropout": 0.2, "max_gap": 2,
                 "flow_head": "pointer", "attention_prior": True, "seq_detach": True, "tag_decode": "argmax"}
DEFAULT_TRAINING = {"epochs": 30, "lr": 2e-3, "weight_decay": 1e-4, "seed": 13, "flow_weight": 1.0, "none_weight": 0.5,
                    "attention_weight": 0.3, "threads": 1}
#: recipe adaptation (graphmie.methods.seqgmper.train): mode none | pretrain | joint; labels mapped | separate
DEFAULT_ADAPTATION = {"mode": "none", "recipes": "../shared/data/recipe_fg_en", "labels": "mapped", "epochs": 5,
                      "lr": 2e-3, "recipes_per_epoch": 0, "recipe_weight": 1.0, "limit": 0}
#: the word encoder: frozen (cached MiniLM features) or lora (adapters on every MiniLM layer, a last stage)
DEFAULT_ENCODER = {"tune": "frozen", "rank": 8, "alpha": 16.0, "epochs": 2, "lr": 5e-4, "head_lr": 2e-4}

#: entity types that name visible things (objects, tools); actions, durations... are not grounded
GROUNDABLE_TYPES = ("I", "T")


class SeqGMPERMethod(Method):
    name = "seqgmper"
    task = "procedure"
    model_name = MODEL_NAME
    schema = {
        # a folder of wikiHow-FG article JSONs (any depth); dev_fraction 0 = train on all of them
        "data": {"path": "../shared/data/wikihow_fg/data", "dev_fraction": 0.0, "split_seed": 0},
        "model": DEFAULT_MODEL,
        "training": DEFAULT_TRAINING,
        # recipes (English recipe flow graphs): path = the corpus folder (Parser/*.conllu);
        # limit = use only the first N recipes (0 = all; for quick runs)
        "adaptation": DEFAULT_ADAPTATION,
        "encoder": DEFAULT_ENCODER,
        # half: store the weights in float16 (as the shipped ones)
        "output": {"half": True},
    }

    def __init__(self, ckpt: Checkpoint, model: SeqGMPER):
        from .samples import Featurizer

        super().__init__(ckpt)
        self.model = model
        self.feat = Featurizer()

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "SeqGMPERMethod":
        from .train import build_model

        cfg = cls.resolve_config(ckpt.config, ckpt.path)
        model = build_model(cfg["model"], cfg["adaptation"], cfg["encoder"])
        load_state_into(model, ckpt, trainable_only=model.word_encoder is not None)
        model.eval()
        return cls(ckpt, model)

    def predict(self, doc: Document, max_regions: int = 8) -> Result:
        """Entities, flows and (for steps with an image) regions and groundings; the artifact
        ``step_graph`` is the :class:`~.graph.StepGraph` (its size is also in ``doc.meta``)."""
        from .samples import predict_example, prepare, step_regions

        if max_regions < 0:
            raise GraphmieError("E009", doc.source, detail=f"max_regions must be >= 0, not {max_regions}")
        img_feats = step_regions(doc, max_regions) if any(s.image for s in doc.steps) else None
        ex = prepare(doc, self.feat, img_feats, gold=False)
        out = predict_example(self.model, ex, self.version)
        g = ex.graph
        out.meta["step_graph"] = {"nodes": len(g.node_kind), "edges": len(g.edges), "text_nodes": len(g.text_nodes()),
                                  "image_nodes": len(g.node_kind) - len(g.text_nodes()),
                                  "textual_scene_graph": "spaCy dependency parse (graphmie.methods.seqgmper)"}
        ground_steps(out)
        return Result(out, artifacts={"step_graph": g})

    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        from .train import train

        return train(cls.resolve_config(config, (config.get("meta") or {}).get("config_path")), Path(out_dir))

    def evaluate(self, data: Path, split: str | None = None, **options) -> dict:
        """Entity and flow figures (:mod:`graphmie.evaluation.procedure`) over every article under
        ``data`` (wikiHow-FG has no released splits: ``split`` is not used); unreadable articles
        are counted in ``files_failed``."""
        from tqdm import tqdm

        from ...data.wikihow_fg import iter_article_paths, read_article
        from ...evaluation.procedure import ProcedureScorer
        from .samples import predict_example, prepare

        scorer, failed = ProcedureScorer(), 0
        for p in tqdm(iter_article_paths(data), desc="evaluate procedure", unit="doc", file=sys.stderr):
            try:
                gold = read_article(p)
            except GraphmieError as e:
                failed += 1
                print(f"error: {e}", file=sys.stderr)
                continue
            scorer.update(predict_example(self.model, prepare(gold, self.feat), self.version), gold)
        self.feat.save()
        out = scorer.result()
        out["files_failed"] = failed
        return out


def ground_steps(doc: Document) -> None:
    """Ground the object/tool entities of each step that has an image in that step's regions,
    with the shared grounding head (trained on Twitter-GMNER; no procedure grounding supervision
    exists, so on procedures it is unmeasured)."""
    steps = [s for s in doc.steps if s.image]
    if not steps:
        return
    from ...grounding import get_grounder

    grounder = get_grounder()
    for st in steps:
        regs = [r for r in doc.regions if r.page == st.index]
        ents = [e for e in doc.entities if e.step == st.index and e.label in GROUNDABLE_TYPES]
        if ents and regs:
            grounder.ground(doc, regs, entities=ents)
