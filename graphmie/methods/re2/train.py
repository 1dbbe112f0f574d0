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
from ...engine.trainer import Trainer, command_line, set_threads, write_run_record
from .data import Sample, batch_forward, make_sample, read_folder
from .evaluate import evaluate_ocr, score_samples
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


def check_counts(cfg: dict) -> None:
    """E021 for member counts below 1 and a negative word-label weight (the config schema checks
    types only; zero members would otherwise fail deep inside training)."""
    from ...errors import GraphmieError

    source = (cfg.get("meta") or {}).get("config_path")
    for section, key, low in (("training", "ensemble", 1), ("segment", "ensemble", 1), ("segment", "label_weight", 0)):
        if cfg[section][key] < low:
            raise GraphmieError("E021", source, key=key, section=f"[{section}]",
                                expected=f"a number >= {low}", value=cfg[section][key])


def train_segmentation(cfg: dict, by_id: dict, train_ids: list[str], feats: Featurizer):
    """The OCR word segmenter trained on the training forms' cached OCR words, and (with
    ``data.ocr_blocks``) the training forms as the labeller/linker meets them from a scan: their
    OCR blocks from segmenters trained on the other half of the training forms (out of fold), with
    labels and links projected from the gold annotation. Returns (segmenter, extra samples, record)."""
    import time

    from tqdm import tqdm

    from layout.ocr import cached_ocr_words

    from .segment import Segmenter, project_gold, seg_sample, train_segmenters

    check_counts(cfg)
    s = cfg["segment"]
    t0 = time.perf_counter()
    words = {i: cached_ocr_words(by_id[i].pages[0].image)[0]
             for i in tqdm(train_ids, desc="OCR (cached)", unit="form")}
    seg_samples = {i: seg_sample(words[i], by_id[i], feats, s["line_cues"]) for i in train_ids}

    def fit(ids):
        net = train_segmenters([seg_samples[i] for i in ids], s["ensemble"], cfg["training"]["seed"],
                               epochs=s["epochs"], batch_size=1, label_weight=s["label_weight"],
                               line_cues=s["line_cues"])
        return Segmenter(net, s["threshold"], s["k"])

    segmenter = fit(train_ids)
    extra = []
    if cfg["data"]["ocr_blocks"]:
        halves = [train_ids[0::2], train_ids[1::2]]
        for k in (0, 1):
            inner = fit(halves[1 - k])
            for i in halves[k]:
                d = by_id[i]
                blocks = inner(words[i], d.pages[0].width, d.pages[0].height)
                if blocks:
                    extra.append(make_sample(project_gold(d, words[i], blocks), feats, cfg["graph"]))
    info = {"train_forms": len(train_ids), "epochs": s["epochs"], "threshold": s["threshold"], "k": s["k"],
            "label_weight": s["label_weight"], "line_cues": s["line_cues"], "ensemble": s["ensemble"],
            "ocr": "RapidOCR, layout.ocr.RAPIDOCR_PARAMS", "ocr_training_pages": len(extra),
            "seconds": round(time.perf_counter() - t0, 1)}
    return segmenter, extra, info


def train(method, config: dict, out_dir: Path) -> dict:
    """``graphmie train``: read the FUNSD folder, split off dev, train the members, score, save."""
    cfg = method.resolve_config(config, (config.get("meta") or {}).get("config_path"))
    check_counts(cfg)
    if cfg["training"]["threads"]:
        set_threads(cfg["training"]["threads"])   # the segmenters too, not only the members' Trainer
    dcfg = cfg["data"]
    folder = Path(dcfg["path"])
    docs = read_folder(folder)
    train_ids, dev_ids = dev_split([d.id for d in docs], dcfg["dev_seed"], dcfg["dev_fraction"])
    feats = Featurizer(cfg["features"]["text"], cache="form")
    feats.warm([e.text for d in docs for e in d.entities])
    samples = {d.id: make_sample(d, feats, cfg["graph"]) for d in docs}
    tr, dv = [samples[i] for i in train_ids], [samples[i] for i in dev_ids]
    by_id = {d.id: d for d in docs}
    seg_info, segmenter = {}, None
    if cfg["segment"]["train"] or dcfg["ocr_blocks"]:
        segmenter, extra, seg_info = train_segmentation(cfg, by_id, train_ids, feats)
        tr = tr + extra
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
    if segmenter is not None:
        dev_docs = [by_id[i] for i in dev_ids]
        for name, seg in (("rule", None), ("learned", segmenter)):
            e2e = evaluate_ocr(net, cfg, dev_docs, feats, segmenter=seg)
            metrics.update({f"{k}_{name}": v for k, v in e2e.items() if k.endswith("_f1") or "text_matched" in k})
    saved = {k: v for k, v in cfg.items() if k not in ("task", "method", "meta")}
    record = {"model": method.model_name, "data": {"path": str(folder), "train_forms": len(tr), "dev_forms": len(dv),
                                                   "dev_seed": dcfg["dev_seed"], "dev_fraction": dcfg["dev_fraction"],
                                                   "dev_ids": dev_ids},
              "command": command_line(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "train_seconds": round(seconds, 1), "members": len(members),
              "history": history if len(members) > 1 else history[0], "dev_metrics": metrics,
              "segmenter": seg_info}
    meta = {"members": len(members), "labels": list(LABELS)}
    out_dir = Path(out_dir)
    targets = [out_dir]
    if cfg["output"]["ship"]:
        targets.append(WEIGHTS_DIR / f"{cfg['output']['name']}.safetensors")
    for target in targets:
        save_checkpoint(target, method.name, net.checkpoint_state(), saved, meta, record)
    if segmenter is not None and cfg["segment"]["train"]:
        seg_record = {**seg_info, "command": record["command"], "date": record["date"], "dev_ids": dev_ids}
        segmenter.save(out_dir / "segment.safetensors", seg_record)
        if cfg["output"]["ship"]:
            segmenter.save(WEIGHTS_DIR / f"{cfg['segment']['weights']}.safetensors", seg_record)
    write_run_record(out_dir, cfg, metrics, {"train_seconds": seconds})
    return metrics
