"""MNER with LLM auxiliary knowledge (PGIM / RiVEG), on the development splits, shipped taggers.

Rows (MNER micro-F1, span + type, as H-Index / PGIM / RiVEG define it):

- Twitter-GMNER dev (1,500 tweets): the text tagger (`entity_mner`, caption only); the knowledge
  tagger (`entity_mner_riveg`) with the RiVEG ChatGPT knowledge, with none, and with no caption;
  on the first ``--llm-tweets`` dev tweets also with knowledge from the local SmolLM2 (the file
  ``bench/bench_llm_knowledge.py`` writes; skipped when it is absent) against ChatGPT's and none
  on the same tweets.
- Twitter-2015 / Twitter-2017 valid: their knowledge taggers (`entity_mner_t15`, `entity_mner_t17`)
  with PGIM's ChatGPT knowledge and without.

    python3 -m bench.bench_entity_knowledge        # writes bench/results/entity_knowledge.json
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

DATA = REPO_ROOT.parent / "shared" / "data"
#: published test-split MNER F1 (the test splits are held out here)
ANCHORS = {
    "twitter-gmner": {"BERT-CRF (text only)": 77.93, "H-Index": 79.73, "RiVEG-BERT": 82.89, "RiVEG (best)": 85.94},
    "twitter2015": {"BERT-CRF (text only, UMT paper)": 71.81, "PGIM": 79.33},
    "twitter2017": {"BERT-CRF (text only, UMT paper)": 83.44, "PGIM": 91.43},
}


def row(m: dict, **extra) -> dict:
    return {"mner_f1": round(100 * m["mner_f1"], 2), "precision": round(100 * m["mner_precision"], 2),
            "recall": round(100 * m["mner_recall"], 2), "knowledge": m["knowledge"], "caption": m["caption"],
            "model": m["model"], "n_tweets": m["n_tweets"], **extra}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-file", type=Path, default=REPO_ROOT / "runs" / "knowledge" / "smollm2_dev.txt")
    ap.add_argument("--llm-tweets", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "entity_knowledge.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    from graphmie.tasks.entity import EntityTask

    out: dict = {"metric": "MNER micro-F1 (exact span and type), percent", "anchors_test": ANCHORS,
                 "note": "development splits (the test splits are held out); every tagger chose its epoch on "
                         "tweets carved from its training split", "command": "python3 -m bench.bench_entity_knowledge",
                 "benchmarks": {}}
    t0 = time.time()
    g = DATA / "gmner"
    if (g / "dev.txt").exists():
        ev = lambda **kw: EntityTask.evaluate(g, "dev", **kw)             # noqa: E731
        rows = {"text tagger, caption": row(ev(checkpoint="entity_mner")),
                "knowledge tagger, RiVEG knowledge + caption": row(ev(checkpoint="entity_mner_riveg")),
                "knowledge tagger, RiVEG knowledge, no caption": row(ev(checkpoint="entity_mner_riveg",
                                                                        caption="none")),
                "knowledge tagger, no knowledge, caption": row(ev(checkpoint="entity_mner_riveg", knowledge="none"))}
        if a.llm_file.exists():
            n = a.llm_tweets
            sub = {"on": f"the first {n} dev tweets"}
            rows[f"text tagger, caption (first {n})"] = row(ev(checkpoint="entity_mner", limit=n), **sub)
            for name, kw in (("RiVEG (ChatGPT) knowledge", {}), ("no knowledge", {"knowledge": "none"}),
                             ("local SmolLM2-135M knowledge", {"knowledge": str(a.llm_file)})):
                rows[f"knowledge tagger, {name} (first {n})"] = row(
                    ev(checkpoint="entity_mner_riveg", limit=n, **kw), **sub)
        out["benchmarks"]["twitter-gmner"] = rows
    for year, ck in (("2015", "entity_mner_t15"), ("2017", "entity_mner_t17")):
        root = DATA / f"twitter{year}"
        if (root / "valid.txt").exists():
            out["benchmarks"][f"twitter{year}"] = {
                "knowledge tagger, PGIM knowledge + caption": row(EntityTask.evaluate(root, "valid", checkpoint=ck)),
                "knowledge tagger, no knowledge, caption": row(EntityTask.evaluate(root, "valid", checkpoint=ck,
                                                                                   knowledge="none"))}
    if not out["benchmarks"]:
        print(f"skipped: no MNER data under {DATA}", file=sys.stderr)
        return 0
    out["seconds"] = round(time.time() - t0, 1)
    atomic_write_text(a.out, json.dumps(out, indent=2))
    for bench, rows in out["benchmarks"].items():
        for name, r in rows.items():
            print(f"{bench:14s} {name:58s} {r['mner_f1']:6.2f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
