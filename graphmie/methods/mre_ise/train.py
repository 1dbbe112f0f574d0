"""Training MRE-ISE on MNRE: prepare (and cache) both splits, fit with the shared Trainer, score the dev split
once at the end (no model selection on it), write the checkpoint and ``run.json``."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ...config import REPO_ROOT
from ...engine.checkpoint import load_checkpoint, load_state_into, save_checkpoint
from ...engine.trainer import Trainer, command_line, set_threads, write_run_record
from .model import loss
from .samples import CACHE, BottomEncoder, Prepared, make_batch, prepare_samples


def length_bucketed(p: Prepared, batch_size: int):
    """Batches for one epoch: shuffled rows, sorted by length within chunks of 50 batches, batches shuffled
    (far less padding on CPU)."""
    def batches(rng, epoch):
        n = len(p.labels)
        idx = list(range(n))
        rng.shuffle(idx)
        out = []
        for s in range(0, n, batch_size * 50):
            c = sorted(idx[s:s + batch_size * 50], key=lambda i: p.hidden[i].size(0))
            out += [c[i:i + batch_size] for i in range(0, len(c), batch_size)]
        rng.shuffle(out)
        return out

    return batches


def with_reversed_pairs(samples, share: float, seed: int) -> tuple[list, int]:
    """``samples`` plus, for a seeded ``share`` of them, the reversed pair with the label MNRE's convention
    implies (:func:`.types.reverse_label`), unless the post already has that ordered pair.

    MNRE annotates each unordered pair once, and almost every "None" row has its head first in the text
    (7,708 of 7,744 in train), so without this the model learns "head after tail -> a relation" and calls
    most reversed pairs a relation when pairs are automatic (bench/bench_post_pairs.py)."""
    import random
    from dataclasses import replace

    from .types import reverse_label

    rng = random.Random(seed)
    have = {(tuple(s.tokens), s.img_id, s.head, s.tail) for s in samples}
    extra = [replace(s, head=s.tail, tail=s.head, head_name=s.tail_name, tail_name=s.head_name,
                     relation=reverse_label(s.relation))
             for s in samples if rng.random() < share and (tuple(s.tokens), s.img_id, s.tail, s.head) not in have]
    return samples + extra, len(extra)


def teacher_logits(method, spec: str, cfg: dict, labels: list[str], vocab: list[str], samples, p: Prepared):
    """Logits [N, C] of the trained post model ``spec`` (a shipped name or a path; an average of seeds
    included) on every row of ``p``: the soft targets of ``training.distill_from``. The teacher must read
    the same inputs as the model being trained (``member_keys``), with the same labels and topic
    vocabulary (E025 otherwise). Cached by the teacher's weights and the rows."""
    from ...engine.cache import FeatureStore, content_key
    from ...engine.checkpoint import read_sidecar, resolve_checkpoint
    from ...errors import GraphmieError
    from .samples import prepared_logits

    ckpt = load_checkpoint(spec, spec, method=method.name)
    sub = method.resolve_config(ckpt.config, ckpt.path)
    bad = [".".join(k) for k in method.member_keys if sub[k[0]][k[1]] != cfg[k[0]][k[1]]]
    if list(ckpt.meta["labels"]) != labels or list(ckpt.meta.get("vocab", [])) != vocab:
        bad.append("labels or topic vocabulary")
    if bad:
        raise GraphmieError("E025", ckpt.path, detail=f"named as training.distill_from, but differs from the "
                            f"model being trained in {', '.join(bad)}")
    members = [resolve_checkpoint(method.member_path(m, ckpt), m) for m in sub["model"]["members"]]
    shas = [read_sidecar(w)["weights_sha256"] for w in [ckpt.path, *members]]
    key = content_key(shas, [(s.tokens, s.head, s.tail, s.img_id, s.caption) for s in samples])
    store = FeatureStore(CACHE, "teacher_logits")
    teacher = method.from_checkpoint(ckpt) if key not in store else None
    out = store.get(key, lambda: prepared_logits(teacher.model, p).half())
    store.save()
    return out.float(), ckpt.name


def train(method, config: dict, out_dir: Path) -> dict:
    from ...data.mnre import load_rel2id, load_split
    from ...evaluation.mre import mre_scores
    from ...nn.topic import build_vocab

    cfg = method.resolve_config(config, (config.get("meta") or {}).get("config_path"))
    d, m, t = cfg["data"], cfg["model"], cfg["training"]
    set_threads(t["threads"])
    data_dir = Path(d["dir"])
    if not data_dir.is_absolute() and not data_dir.exists():
        data_dir = REPO_ROOT / data_dir
    t0 = time.time()
    rel2id = load_rel2id(data_dir)
    labels = [lab for lab, _ in sorted(rel2id.items(), key=lambda kv: kv[1])]
    train_s, skipped = load_split(data_dir, d["train_split"], d["caption_source"], limit=d["limit"] or None)
    dev_s, dev_skipped = load_split(data_dir, d["dev_split"], d["caption_source"], limit=d["dev_limit"] or None)
    vocab = build_vocab([s.text for s in train_s], [s.caption for s in train_s]) if m["use_topics"] else []
    vindex = {w: i for i, w in enumerate(vocab)}
    n_reversed = 0
    if d["reverse_pairs"]:
        train_s, n_reversed = with_reversed_pairs(train_s, d["reverse_pairs"], t["seed"])
    enc = BottomEncoder(m["finetune_layers"], m["max_length"], m["lora_rank"], m["typed_markers"])
    enc.backbone.to(t["device"])
    train_p = prepare_samples(train_s, enc, m, vindex, cache=CACHE)
    dev_p = prepare_samples(dev_s, enc, m, vindex, cache=CACHE)
    t_prep = time.time() - t0

    trainer = Trainer(epochs=t["epochs"], seed=t["seed"], threads=t["threads"], device=t["device"],
                      schedule="linear", warmup=t["warmup"], weight_decay=0.01, clip=1.0, eval_every=t["epochs"],
                      desc="mre_ise")
    soft, teacher = None, ""
    if t["distill_from"]:     # distillation: the teacher's tempered label distribution beside the gold label
        soft, teacher = teacher_logits(method, t["distill_from"], cfg, labels, vocab, train_s, train_p)
        soft = soft.to(t["device"])
    temp, alpha = t["distill_temperature"], t["distill_weight"]
    trainer.seed_everything()          # after the teacher: its loading draws no numbers the training would
    model = method.build_model(cfg, enc, len(labels), vocab)
    if t["init_from"]:        # continue from a checkpoint of the same architecture / labels / vocab
        load_state_into(model, load_checkpoint(t["init_from"], method.default_weights, method=method.name),
                        trainable_only=True)
    device = t["device"]
    model.to(device)
    y = torch.tensor([labels.index(lab) for lab in train_p.labels], device=device)

    def step(rows):
        b = make_batch(train_p, rows, model, device)
        logits, aux, _ = model(**b)
        out = loss(logits, aux, y[rows], t["gib_weight"], t["topic_weight"], t["gate_weight"])
        if soft is not None:
            kd = torch.nn.functional.kl_div(torch.log_softmax(logits / temp, -1), torch.softmax(soft[rows] / temp, -1),
                                            reduction="batchmean") * temp * temp
            out = (1 - alpha) * out + alpha * kd
        return out

    dev = {}

    def evaluate():
        preds = [lab for lab, _ in method.predict_prepared(model, dev_p, labels)]
        dev.update(mre_scores(preds, dev_p.labels))
        return {"dev_f1": dev["f1"]}

    groups = [{"params": [p for n, p in model.named_parameters() if n.startswith("top.") and p.requires_grad],
               "lr": t["lr_encoder"]},
              {"params": [p for n, p in model.named_parameters() if not n.startswith("top.")], "lr": t["lr_head"]}]
    fit = trainer.fit(model, groups, batches=length_bucketed(train_p, t["batch_size"]), step=step,
                      steps_per_epoch=(len(train_p.labels) + t["batch_size"] - 1) // t["batch_size"],
                      evaluate=evaluate)
    metrics = dict(dev, split=d["dev_split"], train_rows=len(train_s), reversed_rows=n_reversed, skipped_train=len(skipped),
                   skipped_dev=len(dev_skipped), distilled_from=teacher, prep_s=round(t_prep, 1), train_s=round(time.time() - t0, 1),
                   loss_history=[r["loss"] for r in fit.history])
    out_dir = Path(out_dir)
    record = {"dev_metrics": metrics, "trained_on": f"{data_dir} split {d['train_split']}",
              "scored_on": f"{data_dir} split {d['dev_split']} (no model selection on it)", "seed": t["seed"],
              "command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "history": fit.history}
    save_checkpoint(out_dir, method.name, model.trainable_state(), cfg, {"labels": labels, "vocab": vocab}, record)
    write_run_record(out_dir, cfg, metrics)
    return metrics
