"""MNER with LLM auxiliary knowledge (PGIM / RiVEG), on the development splits, shipped taggers.

Rows (MNER micro-F1, span + type, as H-Index / PGIM / RiVEG define it):

- Twitter-GMNER dev (1,500 tweets): the text tagger (`entity_mner`, caption only); the knowledge
  tagger (`entity_mner_riveg`) with the RiVEG ChatGPT knowledge, with none, and with no caption;
  on the first ``--llm-tweets`` dev tweets also with knowledge from the local SmolLM2 (the file
  ``bench/bench_llm_knowledge.py`` writes; skipped when it is absent) against ChatGPT's and none
  on the same tweets.
- Twitter-2015 / Twitter-2017 valid: the single knowledge taggers (`entity_mner_t15`, `entity_mner_t17`, seed 13)
  with PGIM's ChatGPT knowledge and without; where the benchmark's default tagger (``EntityTask.benchmark_weights``)
  lists others in its ``model.members`` (an average of seeds), each member alone, the default tagger alone, the
  average of the first two, and the whole average with the knowledge and without.

Every row is also timed (tweets/s on one thread, loading included); generating the knowledge with the
local LLM is timed by ``bench/bench_llm_knowledge.py``.

    python3 -m bench.bench_entity_knowledge        # writes bench/results/entity_knowledge.json
    python3 -m bench.bench_entity_knowledge --ship runs/e13/t17_s15 entity_mner_t17_trio entity_mner_t17 entity_mner_t17_s14
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
BENCHMARKS = ("twitter-gmner", "twitter2015", "twitter2017")
#: what Twitter-GMNER adds (it has boxes): groundability, and GMNER / EEG judged through it
GROUNDING_KEYS = ("ground_f1", "ground_accuracy", "gmner_f1", "eeg_f1", "gmner_f1_lower", "eeg_f1_lower")


def row(root: Path, split: str, **kw) -> dict:
    """One ``EntityTask.evaluate`` run as a result row, timed (the tagger's loading included)."""
    from graphmie.tasks.entity import EntityTask

    extra = kw.pop("extra", {})
    t = time.perf_counter()
    m = EntityTask.evaluate(root, split, **kw)
    dt = time.perf_counter() - t
    return {"mner_f1": round(100 * m["mner_f1"], 2), "precision": round(100 * m["mner_precision"], 2),
            "recall": round(100 * m["mner_recall"], 2), "knowledge": m["knowledge"], "caption": m["caption"],
            "model": m["model"], "n_tweets": m["n_tweets"], "seconds": round(dt, 1),
            "tweets_per_s": round(m["n_tweets"] / dt, 1), **extra,
            **{k: round(100 * m[k], 2) for k in GROUNDING_KEYS if k in m}}


def with_members(src: Path, dst: Path, members: list[str], **record) -> Path:
    """Copy checkpoint ``src`` to ``dst`` (weights bytes unchanged), its sidecar's ``model.members`` set to
    ``members`` and ``record`` added to its training record (without members, the record's ``ensemble`` note is
    dropped)."""
    from graphmie.engine.checkpoint import copy_with_members, read_sidecar

    rec = {**read_sidecar(src)["record"], **record}
    if not members:
        rec.pop("ensemble", None)
    return copy_with_members(src, dst, members, rec)


def alone(name: str, tmp: Path) -> Path:
    """A copy of shipped checkpoint ``name`` without its ensemble members (the tagger by itself)."""
    from graphmie.engine.checkpoint import WEIGHTS_DIR

    return with_members(WEIGHTS_DIR / f"{name}.safetensors", tmp / f"{name}_alone.safetensors", [])


def ship(src: str, name: str, members: list[str]) -> Path:
    """Ship the tagger ``src`` (a run folder, a weights file or a shipped name) as graphmie/weights/``name``,
    listing the shipped taggers ``members`` in its ``model.members`` (all of them averaged; none: the tagger
    alone)."""
    from graphmie.engine.checkpoint import WEIGHTS_DIR, read_sidecar, resolve_checkpoint

    weights = resolve_checkpoint(src, "")
    old = read_sidecar(weights)["record"]
    seed = old.get("seed")
    record = {"shipped_from": f"{old['shipped_from']} (copied from {src})" if "shipped_from" in old else str(src)}
    if members:
        record["ensemble"] = (f"this tagger (seed {seed}) and {', '.join(members)} (its model.members), their tag and "
                              "groundability probabilities averaged; dev_metrics are this tagger's alone at the end "
                              "of its training")
    dst = with_members(weights, WEIGHTS_DIR / f"{name}.safetensors", members, **record)
    print(f"shipped {src} as {dst.name}" + (f", averaged with {', '.join(members)}" if members else " (alone)"))
    return dst


def seed_rows(root: Path, default: str, tmp: Path) -> dict:
    """The rows of a benchmark whose default tagger averages seeds: each member alone, the default alone, the first
    two averaged (when there are more), the whole average with the knowledge and without."""
    from graphmie.engine.checkpoint import WEIGHTS_DIR, read_sidecar

    members = read_sidecar(WEIGHTS_DIR / f"{default}.safetensors")["config"]["model"]["members"]
    seeds = {m: read_sidecar(WEIGHTS_DIR / f"{m}.safetensors")["record"].get("seed") for m in members + [default]}
    rows = {}
    for m in members[1:]:         # members[0] is the benchmark's single tagger, scored above
        rows[f"seed {seeds[m]} alone ({m}), PGIM knowledge + caption"] = row(root, "valid", checkpoint=m)
    rows[f"seed {seeds[default]} alone ({default} without members), PGIM knowledge + caption"] = row(
        root, "valid", checkpoint=alone(default, tmp), extra={"of": default})
    all_seeds = " + ".join(str(seeds[m]) for m in members + [default])
    if len(members) > 1:
        first_two = with_members(WEIGHTS_DIR / f"{members[1]}.safetensors", tmp / "first_two.safetensors",
                                 members[:1])
        rows[f"average of seeds {seeds[members[0]]} + {seeds[members[1]]}, PGIM knowledge + caption"] = row(
            root, "valid", checkpoint=first_two, extra={"members": members[:2]})
    rows[f"average of seeds {all_seeds} ({default}), PGIM knowledge + caption"] = row(root, "valid", checkpoint=default)
    rows[f"average of seeds {all_seeds} ({default}), no knowledge, caption"] = row(root, "valid", checkpoint=default,
                                                                                 knowledge="none")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-file", type=Path, default=REPO_ROOT / "runs" / "knowledge" / "smollm2_dev.txt")
    ap.add_argument("--llm-tweets", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "entity_knowledge.json")
    ap.add_argument("--benchmarks", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS),
                    help="run only these; the others' rows are kept from --out")
    ap.add_argument("--ship", nargs="+", metavar="RUN NAME [MEMBER",
                    help="only ship the tagger RUN (run folder, weights file or shipped name) as NAME, averaged with "
                         "the shipped taggers MEMBER... (none: alone)")
    a = ap.parse_args(argv)
    if a.ship:
        if len(a.ship) < 2:
            ap.error("--ship needs RUN and NAME")
        ship(a.ship[0], a.ship[1], a.ship[2:])
        return 0
    torch.set_num_threads(1)
    from graphmie.tasks.entity import EntityTask

    out: dict = {"metric": "MNER micro-F1 (exact span and type), percent", "anchors_test": ANCHORS,
                 "note": "development splits (the test splits are held out); every tagger chose its epoch on "
                         "tweets carved from its training split; tweets_per_s: one torch thread, the whole "
                         "evaluate call (loading the tagger and reading the split included), knowledge given",
                 "command": "python3 -m bench.bench_entity_knowledge",
                 "benchmarks": {}}
    if set(a.benchmarks) != set(BENCHMARKS) and a.out.exists():
        kept = json.loads(a.out.read_text())["benchmarks"]
        out["benchmarks"] = {b: kept[b] for b in BENCHMARKS if b in kept and b not in a.benchmarks}
    t0 = time.time()
    g = DATA / "gmner"
    if "twitter-gmner" in a.benchmarks and (g / "dev.txt").exists():
        rows = {"text tagger, caption": row(g, "dev", checkpoint="entity_mner"),
                "knowledge tagger, RiVEG knowledge + caption": row(g, "dev", checkpoint="entity_mner_riveg"),
                "knowledge tagger, RiVEG knowledge, no caption": row(g, "dev", checkpoint="entity_mner_riveg",
                                                                     caption="none"),
                "knowledge tagger, no knowledge, caption": row(g, "dev", checkpoint="entity_mner_riveg",
                                                               knowledge="none")}
        if a.llm_file.exists():
            n = a.llm_tweets
            sub = {"on": f"the first {n} dev tweets"}
            rows[f"text tagger, caption (first {n})"] = row(g, "dev", checkpoint="entity_mner", limit=n, extra=sub)
            for name, kw in (("RiVEG (ChatGPT) knowledge", {}), ("no knowledge", {"knowledge": "none"}),
                             ("local SmolLM2-135M knowledge", {"knowledge": str(a.llm_file)})):
                rows[f"knowledge tagger, {name} (first {n})"] = row(g, "dev", checkpoint="entity_mner_riveg",
                                                                    limit=n, extra=sub, **kw)
        out["benchmarks"]["twitter-gmner"] = rows
    for year, ck in (("2015", "entity_mner_t15"), ("2017", "entity_mner_t17")):
        root = DATA / f"twitter{year}"
        if f"twitter{year}" in a.benchmarks and (root / "valid.txt").exists():
            rows = {"knowledge tagger, PGIM knowledge + caption": row(root, "valid", checkpoint=ck),
                    "knowledge tagger, no knowledge, caption": row(root, "valid", checkpoint=ck, knowledge="none")}
            default = EntityTask.benchmark_weights[f"twitter{year}"]
            if default != ck:
                with tempfile.TemporaryDirectory() as tmp:
                    rows.update(seed_rows(root, default, Path(tmp)))
            out["benchmarks"][f"twitter{year}"] = rows
    if not out["benchmarks"]:
        print(f"skipped: no MNER data under {DATA}", file=sys.stderr)
        return 0
    out["seconds"] = round(time.time() - t0, 1)            # of this run (each row has its own)
    atomic_write_text(a.out, json.dumps(out, indent=2))
    for bench, rows in out["benchmarks"].items():
        for name, r in rows.items():
            speed = f"{r['tweets_per_s']:6.1f} tweets/s" if "tweets_per_s" in r else "(not timed)"
            print(f"{bench:14s} {name:58s} {r['mner_f1']:6.2f}   {speed}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
