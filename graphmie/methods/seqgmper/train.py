"""Training SeqGMPER through the :class:`~graphmie.engine.trainer.Trainer`: on wikiHow-FG alone, or
adapted from the English recipe flow graphs, with the word encoder frozen or tuned.

Every stage is one ``Trainer.fit``: one document per step, the order shuffled each epoch by
``trainer.rng``, AdamW with a one-cycle schedule (``pct_start`` 0.1) and gradient clipping at 5.0.

* ``adaptation.mode = "none"``: wikiHow-FG only (the shipped model; bit-identical to before).
* ``"pretrain"``: first ``adaptation.epochs`` epochs on the recipes, then ``training.epochs`` on
  wikiHow-FG starting from those weights (the pre-training sees no wikiHow article, so
  cross-validation runs it once per seed, not per fold: :func:`pretrain`).
* ``"joint"``: ``training.epochs`` epochs over wikiHow-FG plus ``adaptation.recipes_per_epoch``
  recipes drawn afresh each epoch (0 = all), shuffled together; recipe losses weigh
  ``adaptation.recipe_weight``.

``adaptation.labels``: ``"mapped"`` reads the recipes in wikiHow-FG's labels
(:data:`graphmie.data.recipe_fg.ENTITY_MAP` / ``FLOW_MAP``) and trains one set of heads;
``"separate"`` keeps the recipe labels and gives them label heads of their own over the shared
encoder and graph (the wikiHow-FG heads start untrained after pre-training).

``encoder.tune = "lora"`` adds a last stage: LoRA adapters on every MiniLM layer
(:mod:`.encoder`), trained with the rest for ``encoder.epochs`` epochs on wikiHow-FG. The frozen
stages before it run on the cached features, so the expensive part (MiniLM forward and backward
for every step) is only those few epochs.
"""
from __future__ import annotations

import datetime
import random
import time
from pathlib import Path

from ...config import REPO_ROOT
from ...data import recipe_fg
from ...data.wikihow_fg import iter_article_paths, read_article
from ...engine.checkpoint import save_checkpoint
from ...engine.trainer import Trainer, command_line, write_run_record
from ...errors import GraphmieError
from . import DEFAULT_ADAPTATION, DEFAULT_ENCODER, DEFAULT_MODEL, DEFAULT_TRAINING
from .model import SeqGMPER
from .samples import RECIPE, WIKIHOW, Example, Featurizer, example_loss, predict_example, prepare

CHOICES = {("adaptation", "mode"): ("none", "pretrain", "joint"), ("adaptation", "labels"): ("mapped", "separate"),
           ("encoder", "tune"): ("frozen", "lora")}


def build_model(model_cfg: dict | None = None, adaptation: dict | None = None, encoder: dict | None = None) -> SeqGMPER:
    """The network of a resolved config: recipe heads when ``adaptation`` keeps the recipe labels
    apart, the LoRA word encoder when ``encoder`` tunes it."""
    ad = {**DEFAULT_ADAPTATION, **(adaptation or {})}
    enc = {**DEFAULT_ENCODER, **(encoder or {})}
    for (section, key), choices in CHOICES.items():
        value = (ad if section == "adaptation" else enc)[key]
        if value not in choices:
            raise GraphmieError("E022", None, name=f"{section}.{key}", value=value, choices=", ".join(choices))
    extra = {}
    if ad["mode"] != "none" and ad["labels"] == "separate":
        extra["source_heads"] = RECIPE.sizes
    if enc["tune"] == "lora":
        extra.update(lora_rank=int(enc["rank"]), lora_alpha=float(enc["alpha"]))
    return SeqGMPER.from_config({**DEFAULT_MODEL, **(model_cfg or {}), **extra})


def recipe_examples(folder: str | Path, adaptation: dict, feat: Featurizer | None = None,
                    errors: list | None = None) -> list[Example]:
    """The recipes as gold examples in the labels ``adaptation["labels"]`` asks for; recipes that
    fail to read are appended to ``errors`` (a list) and left out."""
    feat = feat or Featurizer()
    docs = recipe_fg.read_corpus(_data_path(folder), errors if errors is not None else [])
    if adaptation["labels"] == "separate":
        exs = [prepare(d, feat, labels=RECIPE) for d in docs]
    else:
        exs = [prepare(recipe_fg.to_wikihow(d), feat, labels=WIKIHOW) for d in docs]
    feat.save()
    return exs


def _trainer(tr: dict, epochs: int, progress: bool, desc: str) -> Trainer:
    return Trainer(epochs=epochs, seed=int(tr["seed"]), threads=int(tr["threads"]), schedule="onecycle", warmup=0.1,
                   weight_decay=float(tr["weight_decay"]), clip=5.0, progress=progress,
                   log=None if progress else (lambda line: None), desc=desc)


def _fit(trainer: Trainer, model: SeqGMPER, groups: list[dict], pools: list[tuple[list[Example], int, float]],
         tr: dict) -> list[float]:
    """One stage: each epoch draws ``n`` examples of each pool (``n = 0``: all of it, in an order
    shuffled in place as before), shuffles them together and steps through them; a pool's losses
    weigh ``w``."""
    orders = [list(range(len(p))) for p, _, _ in pools]
    weight = {id(ex): w for p, _, w in pools for ex in p}

    def batches(rng: random.Random, epoch: int) -> list[Example]:
        if len(pools) == 1 and not pools[0][1]:
            rng.shuffle(orders[0])         # in place: each epoch shuffles the previous epoch's order
            return [pools[0][0][i] for i in orders[0]]
        items = []
        for (pool, n, _), order in zip(pools, orders):
            items += [pool[i] for i in (rng.sample(order, n) if n and n < len(pool) else order)]
        rng.shuffle(items)
        return items

    fw, nw, aw = float(tr["flow_weight"]), float(tr["none_weight"]), float(tr["attention_weight"])

    def step(ex: Example):
        loss = example_loss(model, ex, fw, nw, aw)
        return loss if weight[id(ex)] == 1.0 else loss * weight[id(ex)]

    n_steps = sum(n if n and n < len(p) else len(p) for p, n, _ in pools)
    res = trainer.fit(model, groups, batches, step=step, steps_per_epoch=n_steps)
    return [r["loss"] for r in res.history]


def pretrain(recipes: list[Example], model_cfg: dict | None = None, training: dict | None = None,
             adaptation: dict | None = None, progress: bool = False) -> dict:
    """The pre-training stage alone: ``adaptation["epochs"]`` epochs on the recipes from the seed's
    initial weights; returns the trained state (what :func:`train_model` starts from)."""
    tr = {**DEFAULT_TRAINING, **(training or {})}
    ad = {**DEFAULT_ADAPTATION, **(adaptation or {})}
    trainer = _trainer(tr, int(ad["epochs"]), progress, "pre-train procedure on recipes")
    trainer.seed_everything()
    model = build_model(model_cfg, ad)
    _fit(trainer, model, [{"params": model.parameters(), "lr": float(ad["lr"])}], [(recipes, 0, 1.0)], tr)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_model(examples: list[Example], model_cfg: dict | None = None, training: dict | None = None,
                progress: bool = False, *, adaptation: dict | None = None, encoder: dict | None = None,
                recipes: list[Example] | None = None, pretrained: dict | None = None) -> tuple[SeqGMPER, list[float]]:
    """Train a fresh model on gold wikiHow-FG examples (with ``recipes`` as ``adaptation`` says;
    ``pretrained``: the state :func:`pretrain` gave, computed here when not given); returns it
    (in eval mode) and the loss of each epoch of the wikiHow-FG stages."""
    tr = {**DEFAULT_TRAINING, **(training or {})}
    ad = {**DEFAULT_ADAPTATION, **(adaptation or {})}
    enc = {**DEFAULT_ENCODER, **(encoder or {})}
    if ad["mode"] != "none" and not recipes and pretrained is None:
        raise ValueError(f"adaptation mode {ad['mode']!r} needs the recipe examples")
    if ad["mode"] == "pretrain" and pretrained is None:
        pretrained = pretrain(recipes, model_cfg, tr, ad, progress)
    trainer = _trainer(tr, int(tr["epochs"]), progress, "train procedure")
    trainer.seed_everything()
    model = build_model(model_cfg, ad)
    if ad["mode"] == "pretrain":
        model.load_state_dict(pretrained)
    pools = [(examples, 0, 1.0)]
    if ad["mode"] == "joint":
        pools.append((recipes, int(ad["recipes_per_epoch"]), float(ad["recipe_weight"])))
    losses = _fit(trainer, model, [{"params": model.parameters(), "lr": float(tr["lr"])}], pools, tr)
    if enc["tune"] == "lora":
        trainer = _trainer(tr, int(enc["epochs"]), progress, "tune the encoder (LoRA)")
        trainer.seed_everything()
        model.attach_word_encoder(int(enc["rank"]), float(enc["alpha"]))
        lora = [p for n, p in model.named_parameters() if "lora_" in n]
        rest = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]
        losses += _fit(trainer, model, [{"params": lora, "lr": float(enc["lr"])},
                                        {"params": rest, "lr": float(enc["head_lr"])}], [(examples, 0, 1.0)], tr)
    model.eval()
    return model, losses


def _data_path(path: str | Path) -> Path:
    path = Path(path)
    return REPO_ROOT / path if not path.is_absolute() and not path.exists() else path


def train(cfg: dict, out_dir: Path) -> dict:
    """``graphmie train``: read the articles (and the recipes), hold out ``dev_fraction`` of the
    articles, train, write the checkpoint (``model.safetensors`` + sidecar) and ``run.json``;
    return the figures."""
    from ...evaluation.procedure import score

    data = _data_path(cfg["data"]["path"])
    docs = [read_article(p) for p in iter_article_paths(data)]
    feat = Featurizer()
    exs = [prepare(d, feat) for d in docs]
    feat.save()
    idx = list(range(len(exs)))
    random.Random(cfg["data"]["split_seed"]).shuffle(idx)
    n_dev = int(round(cfg["data"]["dev_fraction"] * len(exs)))
    dev, trn = [exs[i] for i in idx[:n_dev]], [exs[i] for i in idx[n_dev:]]
    ad, recipes, recipe_errors = cfg["adaptation"], None, []
    if ad["mode"] != "none":
        recipes = recipe_examples(ad["recipes"], ad, feat, recipe_errors)
        if ad["limit"]:
            recipes = recipes[:int(ad["limit"])]
    t0 = time.time()
    model, losses = train_model(trn, cfg["model"], cfg["training"], progress=True, adaptation=ad,
                                encoder=cfg["encoder"], recipes=recipes)
    metrics = {"train_loss": losses[-1], "train_documents": len(trn), "train_seconds": round(time.time() - t0, 1)}
    if recipes is not None:
        metrics["recipe_documents"] = len(recipes)
    if dev:
        metrics.update({f"dev_{k}": v for k, v in score([predict_example(model, e) for e in dev],
                                                         [e.doc for e in dev]).items()})
    record = {"command": command_line(), "data": str(data), "date": datetime.date.today().isoformat(),
              "dev_articles": [exs[i].doc.id for i in idx[:n_dev]], "train_metrics": metrics,
              "loss_per_epoch": [round(x, 4) for x in losses]}
    if recipes is not None:
        record.update(recipes=str(_data_path(ad["recipes"])), recipes_skipped=recipe_errors)
    save_checkpoint(out_dir, "seqgmper", model.trainable_state(), cfg, record=record, half=cfg["output"]["half"])
    write_run_record(out_dir, cfg, metrics, extra={"losses": losses})
    return metrics
