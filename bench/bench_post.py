"""Benchmark for posts (MNRE): the full MRE-ISE-style model and its ablations, training time, inference speed.

    python3 bench/bench_post.py                  # train missing variants into --runs, evaluate, write JSON
    python3 bench/bench_post.py --no-train       # only collect existing runs + measure inference speed
    python3 bench/bench_post.py --speed-only     # only re-measure inference speed (kept variants untouched)
    python3 bench/bench_post.py --speed-only --speed-checkpoint post_mre_ise_text_trio   # time other weights

Variants (same recipe and seed, scored on MNRE's own val split, no model selection on val):
  full             caption segment + cross-modal graph + GIB + topics       (all 12,247 train rows)
  text_only        the post's text alone (no caption, no graph, no topics) (all 12,247 train rows)
  no_gib           full without the GIB masks / bottleneck                  (all 12,247 train rows)
  no_topics        full without the latent multimodal topics                (all 12,247 train rows)
  small_full       full, on the first 3,000 train rows                      } the earlier small-scale
  small_no_gib     full without the GIB masks / bottleneck, 3,000 rows      } ablation
  small_no_topics  full without the latent multimodal topics, 3,000 rows    }
Writes bench/results/post.json. The full-scale rows in that file were trained with a 2 + 2 epoch recipe
(a second `train` run with `training.init_from` the first run's weights); each row records its commands.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TEXT_ONLY = ["model.use_caption=false", "model.use_graph=false", "model.use_gib=false", "model.use_topics=false"]
VARIANTS = {  # name -> (run folder under --runs, config overrides)
    "full": ("full", []),
    "text_only": ("textonly", TEXT_ONLY),
    "no_gib": ("no_gib", ["model.use_gib=false"]),
    "no_topics": ("no_topics", ["model.use_topics=false"]),
    "small_full": ("small/full", ["data.limit=3000"]),
    "small_no_gib": ("small/no_gib", ["data.limit=3000", "model.use_gib=false"]),
    "small_no_topics": ("small/no_topics", ["data.limit=3000", "model.use_topics=false"]),
}
ANCHORS_TEST_F1 = {"BERT (text)": 59.40, "MTB": 60.86, "MEGA": 66.41, "HVPNeT": 81.85, "MRE-ISE": 84.03, "TMR": 89.05}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnre"))
    ap.add_argument("--runs", default=str(REPO / "runs" / "bench_post"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--speed-rows", type=int, default=800)
    ap.add_argument("--speed-threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    ap.add_argument("--speed-only", action="store_true", help="keep bench/results/post.json, re-time inference")
    ap.add_argument("--speed-checkpoint", default="",
                    help="the weights timed (default: the shipped default; others go to inference_by_checkpoint)")
    args = ap.parse_args()
    runs = Path(args.runs)
    out_file = REPO / "bench" / "results" / "post.json"
    results = {"dataset": "MNRE v2", "split": "val (MNRE's own; anchors are on test)", "variants": {},
               "anchors_test_f1": ANCHORS_TEST_F1}
    if args.speed_only:
        results = json.loads(out_file.read_text())
    for name in ([] if args.speed_only else args.variants.split(",")):
        sub, overrides = VARIANTS[name]
        out = runs / sub
        cmd = [sys.executable, "-m", "graphmie", "train", "configs/post_mre_ise.toml", "--out", str(out)] + \
            sum((["--set", s] for s in overrides), [])
        if not (out / "run.json").exists():
            if args.no_train:
                continue
            t0 = time.time()
            subprocess.run(cmd, cwd=REPO, check=True)
            print(f"{name}: trained in {time.time() - t0:.0f} s", file=sys.stderr)
        rec = json.loads((out / "run.json").read_text())
        m = rec["metrics"]
        results["variants"][name] = {k: m[k] for k in ("precision", "recall", "f1", "accuracy", "train_s", "prep_s",
                                                       "train_rows")}
        results["variants"][name]["command"] = " ".join(cmd[1:])
    v = results["variants"]
    if "full" in v and "text_only" in v and not args.speed_only:
        results["full_minus_text_only_f1_points"] = round(100 * (v["full"]["f1"] - v["text_only"]["f1"]), 2)
    for abl in ("small_no_gib", "small_no_topics"):
        if "small_full" in v and abl in v:
            results[f"small_full_minus_{abl[6:]}_f1_points"] = round(100 * (v["small_full"]["f1"] - v[abl]["f1"]), 2)
    # inference speed of the shipped model, captions given (parse + graphs + MiniLM + GNN + classifier)
    import torch

    from graphmie.data.mnre import load_split
    from graphmie.engine.checkpoint import load_checkpoint
    from graphmie.methods.mre_ise import MREISE

    import os

    from graphmie.tasks.post import PostTask

    method = MREISE.from_checkpoint(load_checkpoint(args.speed_checkpoint, PostTask.default_weights, method="mre_ise"))
    samples, _ = load_split(args.data, "val", method.config["data"]["caption_source"], limit=args.speed_rows)
    method.prepare(samples[:16], progress=False)   # warm-up
    speed = {}
    for n in args.speed_threads:
        torch.set_num_threads(n)
        t0 = time.time()
        p = method.prepare(samples, progress=False)
        method.predict_prepared(method.model, p, method.labels)
        dt = time.time() - t0
        speed[str(n)] = {"seconds": round(dt, 2), "posts_per_s": round(len(samples) / dt, 1)}
    timed = {"posts": len(samples), "by_threads": speed, "posts_per_s": max(x["posts_per_s"] for x in speed.values()),
             "machine_cores": os.cpu_count(), "load_average_after": os.getloadavg(), "checkpoint": method.ckpt.name,
             "note": "shipped weights, captions given (spaCy parse + scene graphs + MiniLM + GNN + "
                     "classifier, as far as the model reads them); posts_per_s is the best over the thread counts timed"}
    if method.ckpt.name == PostTask.default_weights:
        results["inference"] = timed
    else:
        results.setdefault("inference_by_checkpoint", {})[method.ckpt.name] = timed
    if not args.speed_only:
        shipped = method.ckpt.record["dev_metrics"]
        results["shipped_dev_metrics"] = {k: shipped[k] for k in ("precision", "recall", "f1", "accuracy")}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(results, indent=2))
    for name, m in v.items():
        print(f"{name:16s} P {100 * m['precision']:.2f}  R {100 * m['recall']:.2f}  F1 {100 * m['f1']:.2f}  "
              f"acc {100 * m['accuracy']:.2f}  train {m['train_s']:.0f} s")
    print("inference: " + ", ".join(f"{x['posts_per_s']} posts/s with {n} thread(s)" for n, x in speed.items()))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
