"""Training the grounding head on Twitter-GMNER gold boxes without the images.

The tweet images are not obtainable, so the head cannot learn visual matching here. What it can
learn from the gold boxes is the *text + geometry prior* of H-Index's region scorer: which box
shapes and positions an entity of a given text/type occupies. Candidates are simulated per image
(seeded): two jittered copies of every gold box (IoU typically 0.5-0.9 with it) among random
proposals drawn like a proposer's (log-uniform area 1-90 % of the image, aspect 1:3-3:1). The
head (``use_visual=False``) is trained with the KL soft-target loss plus groundability BCE
through :class:`~graphmie.engine.trainer.Trainer` (AdamW at a constant rate, no clipping: the
shipped run's recipe, reproduced bit for bit); on the dev split we report
top-1 accuracy (chosen candidate IoU >= 0.5 with a gold box) against picking a random
candidate and the largest candidate. At extraction time the same head ranks real candidates
(detections or proposer boxes).
"""
from __future__ import annotations

import datetime
import random
from pathlib import Path

import torch

from ...data.gmner import Tweet
from ...document import Box
from ...engine.checkpoint import save_checkpoint
from ...engine.trainer import Trainer, command_line, write_run_record
from .model import GroundingHead, normalise_boxes, soft_targets

N_CANDIDATES = 20


def simulate_candidates(size: tuple[int, int], gold: list[Box], rng: random.Random,
                        n: int = N_CANDIDATES) -> list[Box]:
    W, H = size
    cands = []
    for g in gold[: n // 4]:
        for _ in range(2):
            dx, dy = rng.uniform(-0.12, 0.12) * g.width, rng.uniform(-0.12, 0.12) * g.height
            sw, sh = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)
            cx, cy = g.center[0] + dx, g.center[1] + dy
            cands.append(Box(max(cx - g.width * sw / 2, 0), max(cy - g.height * sh / 2, 0),
                             min(cx + g.width * sw / 2, W), min(cy + g.height * sh / 2, H)))
    while len(cands) < n:
        area = W * H * 10 ** rng.uniform(-2, -0.05)
        asp = 3 ** rng.uniform(-1, 1)
        w, h = min((area * asp) ** 0.5, W), min((area / asp) ** 0.5, H)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        cands.append(Box(x, y, x + w, y + h))
    rng.shuffle(cands)
    return cands


def entity_text(e, t: Tweet) -> str:
    return f"{e.text} ({e.type})"


def build_rows(tweets: list[Tweet], seed: int):
    """(entity text, normalised candidate boxes [R,4], soft targets [R], groundable, candidates, gold)."""
    rng = random.Random(seed)
    rows = []
    for t in tweets:
        size = t.image_size or (500, 500)
        for e in t.entities:
            cands = simulate_candidates(size, e.boxes, rng)
            rows.append((entity_text(e, t), normalise_boxes(cands, *size), soft_targets(cands, e.boxes),
                         float(e.groundable), cands, e.boxes))
    return rows


def fit_head(cfg: dict, train: list[Tweet], dev: list[Tweet], trainer: Trainer):
    """Train a head on ``train`` (simulated candidates, seed ``training.seed``); its dev figures
    (candidates seeded ``seed + 1``) and the Trainer's result. ``trainer`` must be freshly seeded."""
    from ...encoders.text import get_text_encoder

    tr = cfg["training"]
    enc = get_text_encoder()
    tr_rows, dv_rows = build_rows(train, tr["seed"]), build_rows(dev, tr["seed"] + 1)
    texts = sorted({r[0] for r in tr_rows + dv_rows})
    emb = dict(zip(texts, enc.encode(texts, progress=True)))
    head = GroundingHead(**dict(cfg["model"], entity_dim=enc.dim))
    bs = tr["batch_size"]

    def batches(rng, epoch):
        order = list(range(len(tr_rows)))
        rng.shuffle(order)
        return [[tr_rows[j] for j in order[i:i + bs]] for i in range(0, len(order), bs)]

    def step(rows):
        out = head(torch.stack([emb[r[0]] for r in rows]), torch.stack([r[1] for r in rows]))
        return head.loss(out, torch.stack([r[2] for r in rows]), torch.tensor([r[3] for r in rows]),
                         ground_weight=tr["ground_weight"])

    res = trainer.fit(head, [{"params": head.parameters(), "lr": tr["lr"]}], batches=batches, step=step,
                      steps_per_epoch=(len(tr_rows) + bs - 1) // bs)
    return head, evaluate_head(head, dv_rows, emb), res


@torch.no_grad()
def evaluate_head(head: GroundingHead, rows, emb) -> dict:
    head.eval()
    rows = [r for r in rows if r[3] > 0]
    hit = rand = largest = 0.0
    for i in range(0, len(rows), 256):
        chunk = rows[i:i + 256]
        out = head(torch.stack([emb[r[0]] for r in chunk]), torch.stack([r[1] for r in chunk]))
        for k, r in enumerate(chunk):
            cands, gold = r[4], r[5]
            ok = [any(c.iou(g) >= 0.5 for g in gold) for c in cands]
            hit += ok[int(out.region_logits[k].argmax())]
            rand += sum(ok) / len(ok)
            largest += ok[max(range(len(cands)), key=lambda j: cands[j].area)]
    n = max(len(rows), 1)
    return {"top1_iou50": hit / n, "random_candidate": rand / n, "largest_candidate": largest / n,
            "n_groundable_entities": len(rows), "candidates_per_entity": N_CANDIDATES}


def train(method, config: dict, out_dir: Path) -> dict:
    """``graphmie train configs/entity_hindex.toml``: train the head on the gold boxes of the
    training split, score it on the dev split, write ``model.safetensors`` + sidecar and ``run.json``."""
    from ...config import REPO_ROOT
    from ...data.gmner import read_split

    cfg = method.resolve_config(config, ((config or {}).get("meta") or {}).get("config_path"))
    d, tr = cfg["data"], cfg["training"]
    trainer = Trainer(tr["epochs"], seed=tr["seed"], threads=tr["threads"], schedule="constant",
                      weight_decay=tr["weight_decay"], clip=0.0, desc="grounding head")
    trainer.seed_everything()
    root = Path(d["root"])
    if not root.is_absolute() and not root.exists():
        root = REPO_ROOT / root
    train_tweets, dev_tweets = read_split(root, d["train_split"]).tweets, read_split(root, d["dev_split"]).tweets
    if d["limit"]:                           # small runs (tests): the first N tweets of each split
        train_tweets, dev_tweets = train_tweets[:d["limit"]], dev_tweets[:d["limit"]]
    head, metrics, res = fit_head(cfg, train_tweets, dev_tweets, trainer)
    metrics["train_seconds"] = res.seconds
    record = {"model": "GroundingHead (text + geometry prior)" if not cfg["model"]["use_visual"] else "GroundingHead",
              "command": command_line(), "data": f"{root}: {d['train_split']}.txt + xml gold boxes; candidates "
              "simulated (see graphmie/methods/hindex/train.py)", "seed": tr["seed"],
              "date": datetime.date.today().isoformat(), "dev_metrics": metrics,
              "dev_metrics_on": f"{d['dev_split']}.txt groundable entities, simulated candidates",
              "history": res.history}
    save_checkpoint(out_dir, method.name, head.state_dict(), cfg, {}, record)
    write_run_record(out_dir, cfg, metrics, extra={"history": res.history})
    return metrics
