"""Training RE²: each ensemble member through the engine's Trainer, then one checkpoint.

A member is trained with AdamW and a one-cycle schedule (10 % warm-up), gradient clipping at
1.0, batches of ``batch_size`` forms reshuffled every epoch from the member's seed; members use
seeds ``seed``, ``seed + 1``, ... and are averaged (:class:`~.model.Ensemble`).
"""
from __future__ import annotations

import copy
import datetime as _dt
import math
from pathlib import Path

from ...data.funsd import dev_split
from ...engine.checkpoint import WEIGHTS_DIR, save_checkpoint
from ...engine.trainer import Trainer, command_line, write_run_record
from .data import Sample, batch_forward, make_sample, read_folder
from .evaluate import score_samples
from .features import Featurizer
from .model import LABELS, Ensemble, FormRE2, build_network


def train_member(cfg: dict, train: list[Sample], dev: list[Sample] | None, log=None) -> tuple[FormRE2, dict]:
    """One network from ``cfg["training"]["seed"]``; dev figures every ``eval_every`` epochs."""
    t = cfg["training"]
    trainer = Trainer(epochs=t["epochs"], seed=t["seed"], threads=t["threads"], schedule="onecycle", warmup=0.1,
                      weight_decay=t["weight_decay"], clip=1.0, eval_every=t["eval_every"], progress=False,
                      log=log, desc=f"re2 seed {t['seed']}")
    trainer.seed_everything()
    net = build_network(cfg)
    bs = t["batch_size"]
    weights = {k: t[k] for k in ("entity_weight", "link_weight", "constraint_weight", "listwise_weight",
                                 "max_pos_weight")}

    def batches(rng, epoch):
        order = train[:]
        rng.shuffle(order)
        return [order[i:i + bs] for i in range(0, len(order), bs)]

    def step(batch):
        ent_logits, labels, link_logits, py, pairs = batch_forward(net, batch)
        return net.loss(ent_logits, labels, link_logits, py, pairs[:, 1], **weights)

    def evaluate():
        d = score_samples(Ensemble([net]), cfg, dev)
        return {k: round(d[k], 4) for k in ("f1", "f1_predicted_labels", "entity_f1")}

    res = trainer.fit(net, [{"params": net.parameters(), "lr": t["lr"]}], batches, step,
                      steps_per_epoch=math.ceil(len(train) / bs), evaluate=evaluate if dev else None)
    return net, {"history": res.history, "train_seconds": res.seconds}


def train(method, config: dict, out_dir: Path) -> dict:
    """``graphmie train``: read the FUNSD folder, split off dev, train the members, score, save."""
    cfg = method.resolve_config(config, (config.get("meta") or {}).get("config_path"))
    dcfg = cfg["data"]
    folder = Path(dcfg["path"])
    docs = read_folder(folder)
    train_ids, dev_ids = dev_split([d.id for d in docs], dcfg["dev_seed"], dcfg["dev_fraction"])
    feats = Featurizer(cfg["features"]["text"], cache="form")
    feats.warm([e.text for d in docs for e in d.entities])
    samples = {d.id: make_sample(d, feats, cfg["graph"]) for d in docs}
    tr, dv = [samples[i] for i in train_ids], [samples[i] for i in dev_ids]
    members, seconds, history = [], 0.0, []
    for k in range(cfg["training"]["ensemble"]):
        mcfg = copy.deepcopy(cfg)
        mcfg["training"]["seed"] = cfg["training"]["seed"] + k
        net, info = train_member(mcfg, tr, dv)
        members.append(net)
        seconds += info["train_seconds"]
        history.append(info["history"])
    net = Ensemble(members)
    metrics = score_samples(net, cfg, dv)
    saved = {k: v for k, v in cfg.items() if k not in ("task", "method", "meta")}
    record = {"model": method.model_name, "data": {"path": str(folder), "train_forms": len(tr), "dev_forms": len(dv),
                                                   "dev_seed": dcfg["dev_seed"], "dev_fraction": dcfg["dev_fraction"],
                                                   "dev_ids": dev_ids},
              "command": command_line(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "train_seconds": round(seconds, 1), "members": len(members),
              "history": history if len(members) > 1 else history[0], "dev_metrics": metrics}
    meta = {"members": len(members), "labels": list(LABELS)}
    out_dir = Path(out_dir)
    targets = [out_dir]
    if cfg["output"]["ship"]:
        targets.append(WEIGHTS_DIR / f"{cfg['output']['name']}.safetensors")
    for target in targets:
        save_checkpoint(target, method.name, net.checkpoint_state(), saved, meta, record)
    write_run_record(out_dir, cfg, metrics, {"train_seconds": seconds})
    return metrics
