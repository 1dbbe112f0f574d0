"""k-fold cross-validation of the procedure model on wikiHow-FG: full model vs. no sequential attention.

    python3 -m bench.bench_procedure [--folds 5] [--seeds 13 14] [--epochs 15] [--data DIR] [--jobs N]
                                     [--add-to bench/results/procedure.json] [--set KEY=VALUE ...] [--out FILE]

Articles are shuffled with ``random.Random(0)`` and dealt into ``folds`` folds; for every seed
and fold a model is trained on the other folds and scored on the held-out one. Scores are
micro-averaged over all held-out articles of one seed (every article is scored exactly once
per seed), then the mean and spread over seeds are reported, and the per-seed difference between
the two models. Also reported: flow F1 when the gold entities are given (a diagnostic of the flow
head alone). ``--jobs N`` runs N seeds at once (one process each); ``--add-to FILE`` keeps the
seeds already in an earlier results file and adds the new ones; ``--set KEY=VALUE`` changes a
model setting of both models (e.g. ``--set attention_prior=false``; values are JSON). The two
models of one seed are a paired comparison: the ablation's weights start equal to the full
model's (the sequential attention draws its initial weights and dropout from streams of its
own). Writes ``bench/results/procedure.json``.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphmie.config import package_versions  # noqa: E402
from graphmie.data.wikihow_fg import read_folder  # noqa: E402
from graphmie.evaluation.procedure import score  # noqa: E402
from graphmie.io import atomic_write_text  # noqa: E402
from graphmie.tasks.procedure import DEFAULT_MODEL, DEFAULT_TRAINING, Featurizer, predict_example, \
    prepare, train_model  # noqa: E402

KEYS = ("entity_f1", "flow_f1", "flow_f1_unlabelled", "flow_f1_within_step", "flow_f1_across_steps")


def cross_validate(exs, folds: int, seed: int, seq: bool, epochs: int, settings: dict | None = None) -> dict:
    idx = list(range(len(exs)))
    random.Random(0).shuffle(idx)
    parts = [idx[i::folds] for i in range(folds)]
    preds, golds, preds_ge = [], [], []
    for part in parts:
        held = set(part)
        train = [exs[i] for i in idx if i not in held]
        model, _ = train_model(train, {**(settings or {}), "seq_attention": seq}, {"epochs": epochs, "seed": seed})
        for i in part:
            preds.append(predict_example(model, exs[i]))
            preds_ge.append(predict_example(model, exs[i], gold_entities=True))
            golds.append(exs[i].doc)
    r = score(preds, golds)
    ge = score(preds_ge, golds)
    r["flow_f1_gold_entities"] = ge["flow_f1"]
    r["flow_f1_unlabelled_gold_entities"] = ge["flow_f1_unlabelled"]
    return r


def _seed_pair(job) -> list:
    exs, folds, seed, epochs, settings = job
    torch.set_num_threads(1)
    pair = []
    for name, seq in (("full", True), ("no_seq_attention", False)):
        t = time.time()
        r = cross_validate(exs, folds, seed, seq, epochs, settings)
        r["seed"] = seed
        pair.append((name, r))
        print(f"{name} seed {seed}: " + ", ".join(f"{k}={r[k]:.4f}" for k in KEYS + ("flow_f1_gold_entities",))
              + f" ({time.time() - t:.0f}s)", file=sys.stderr, flush=True)
    return pair


def summarise(runs: dict, args, t0: float) -> dict:
    results = {}
    for name, rs in runs.items():
        keys = [k for k in rs[0] if k.startswith(("entity_", "flow_"))]
        results[name] = {"per_seed": rs, "mean": {k: statistics.mean(r[k] for r in rs) for k in keys},
                         "stdev": {k: statistics.pstdev(r[k] for r in rs) for k in keys}}
    full, abl = results["full"]["mean"], results["no_seq_attention"]["mean"]
    deltas = [f["flow_f1"] - a["flow_f1"] for f, a in zip(runs["full"], runs["no_seq_attention"])]
    return {
        "task": "procedure", "dataset": "wikiHow-FG (96 articles, 4 domains, as released in ../shared/data)",
        "protocol": f"{args.folds}-fold CV, articles shuffled with random.Random(0), folds = idx[i::{args.folds}]; "
                    f"seeds {[r['seed'] for r in runs['full']]}; micro-averaged over all held-out articles per "
                    f"seed; mean/stdev over seeds; full and ablation of one seed share their initial weights "
                    f"(paired comparison)",
        "matching": "entity = exact (step, word span, type); flow = exact head span, tail span and label "
                    "(unlabelled: spans only); flows between predicted entities (end to end)",
        "model": {**DEFAULT_MODEL, **args.model}, "training": {**DEFAULT_TRAINING, "epochs": args.epochs},
        "results": results,
        "full_beats_ablation_on_flow_f1": full["flow_f1"] > abl["flow_f1"],
        "delta_flow_f1": full["flow_f1"] - abl["flow_f1"],
        "delta_flow_f1_per_seed": deltas,
        "seeds_where_full_wins": sum(d > 0 for d in deltas),
        "delta_flow_f1_stdev": statistics.pstdev(deltas) if len(deltas) > 1 else 0.0,
        "paper_anchor": "Shirai et al. 2023 (RepL4NLP), 'Towards Flow Graph Prediction of Open-Domain Procedural "
                        "Texts': see docs/procedure.md for the comparison and the differences in setting",
        "seconds": round(time.time() - t0, 1), "versions": package_versions(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "wikihow_fg" / "data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "procedure.json")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run at once, one process each")
    ap.add_argument("--add-to", type=Path, help="an earlier results file whose seeds are kept")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a model setting for both models, value in JSON (e.g. attention_prior=false)")
    args = ap.parse_args(argv)
    args.model = {}
    for kv in args.set:
        key, sep, value = kv.partition("=")
        if not sep or key not in DEFAULT_MODEL or key == "seq_attention":
            ap.error(f"--set {kv!r}: expected KEY=VALUE with KEY one of "
                     f"{sorted(k for k in DEFAULT_MODEL if k != 'seq_attention')}")
        try:
            args.model[key] = json.loads(value)
        except json.JSONDecodeError:
            args.model[key] = value                    # a bare string such as pairwise
    torch.set_num_threads(1)
    docs = read_folder(args.data)
    feat = Featurizer()
    exs = [prepare(d, feat) for d in docs]
    feat.save()
    t0 = time.time()
    runs: dict[str, list] = {"full": [], "no_seq_attention": []}
    if args.add_to:
        old = json.loads(args.add_to.read_text())["results"]
        runs = {name: list(old[name]["per_seed"]) for name in runs}
    done = {r["seed"] for r in runs["full"]}
    seeds = [s for s in args.seeds if s not in done]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # each finished seed is a complete pair (full + ablation)
        for seed, pair in zip(seeds, pool.map(_seed_pair, [(exs, args.folds, s, args.epochs, args.model) for s in seeds])):
            for name, r in pair:
                runs[name].append(r)
            out = summarise(runs, args, t0)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out, json.dumps(out, indent=2))
    out = summarise(runs, args, t0)
    full, abl = out["results"]["full"]["mean"], out["results"]["no_seq_attention"]["mean"]
    print(f"full: {json.dumps({k: round(full[k], 4) for k in KEYS})}")
    print(f"no_seq_attention: {json.dumps({k: round(abl[k], 4) for k in KEYS})}")
    print(json.dumps({"flow_f1": full["flow_f1"], "flow_f1_ablation": abl["flow_f1"],
                      "entity_f1": full["entity_f1"], "flow_f1_unlabelled": full["flow_f1_unlabelled"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
