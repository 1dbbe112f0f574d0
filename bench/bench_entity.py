"""GMNER benchmark on the Twitter-GMNER development split with the shipped weights.

Figures: MNER F1 (span + type), groundability P/R/F1 vs the majority baseline, GMNER / EEG F1
with the region judged through groundability (the tweet images are unavailable: upper bound =
a groundable prediction counts as the right box, lower bound = it counts as wrong), and the
grounding head's top-1 box accuracy on the dev gold boxes with simulated candidates (see
graphmie/methods/hindex/train.py) against random / largest-candidate choice.

    python3 -m bench.bench_entity [--data ../shared/data/gmner]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from graphmie.config import REPO_ROOT
from graphmie.io import atomic_write_text

ANCHORS = {"BERT-CRF (text only)": 77.93, "BARTNER": 79.83, "H-Index": 79.73, "RiVEG-BERT": 82.89}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "gmner")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "entity.json")
    a = ap.parse_args(argv)
    if not (a.data / f"{a.split}.txt").exists():
        print(f"skipped: no Twitter-GMNER data at {a.data}", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    from graphmie.data.gmner import read_split
    from graphmie.encoders.text import get_text_encoder
    from graphmie.grounding import get_grounder
    from graphmie.methods.hindex.train import build_rows, evaluate_head
    from graphmie.tasks.entity import EntityTask

    t0 = time.time()
    m = EntityTask.evaluate(a.data, split=a.split)
    eval_s = time.time() - t0
    rows = build_rows(read_split(a.data, a.split).tweets, seed=14)
    texts = sorted({r[0] for r in rows})
    emb = dict(zip(texts, get_text_encoder().encode(texts)))
    gh = evaluate_head(get_grounder().method.head, rows, emb)
    out = {
        "benchmark": "Twitter-GMNER (grounded multimodal NER)", "split": a.split,
        "note": "the official test split is held out; figures are on the official dev split (1,500 tweets); "
                "the model never trained on it (epochs chosen on 500 tweets carved from train, seed 13; the LoRA "
                "recipe was picked among a few runs by their dev figures, see docs/entity.md)",
        "mner_f1": round(100 * m["mner_f1"], 2), "mner_precision": round(100 * m["mner_precision"], 2),
        "mner_recall": round(100 * m["mner_recall"], 2), "mner_anchors_test": ANCHORS,
        "groundability": {"precision": round(100 * m["ground_precision"], 2),
                          "recall": round(100 * m["ground_recall"], 2), "f1": round(100 * m["ground_f1"], 2),
                          "accuracy": round(100 * m["ground_accuracy"], 2),
                          "majority_class": m["ground_majority_class"],
                          "majority_f1": round(100 * m["ground_majority_f1"], 2),
                          "majority_accuracy": round(100 * m["ground_majority_accuracy"], 2),
                          "all_groundable_f1": round(100 * m["ground_all_groundable_f1"], 2),
                          "judged_on": "gold entity spans"},
        "gmner_f1_upper": round(100 * m["gmner_f1"], 2), "gmner_f1_lower": round(100 * m["gmner_f1_lower"], 2),
        "eeg_f1_upper": round(100 * m["eeg_f1"], 2), "eeg_f1_lower": round(100 * m["eeg_f1_lower"], 2),
        "gmner_condition": m["region_judged_by"] + "; not comparable to published GMNER/EEG figures, "
                           "which judge real boxes on the images",
        "grounding_head_simulated_candidates": gh,
        "eval_seconds": round(eval_s, 1), "command": "python3 -m bench.bench_entity",
    }
    atomic_write_text(a.out, json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
