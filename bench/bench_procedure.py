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

Recipe adaptation and the tuned encoder (issue 17) are rows of ``bench/results/procedure_adaptation.json``:

    python3 -m bench.bench_procedure --row NAME --seeds 31 32 [--adapt none|pretrain|joint]
        [--labels mapped|separate] [--adapt-epochs 5] [--recipes-per-epoch 0] [--recipe-weight 1.0]
        [--encoder frozen|lora] [--lora-epochs 2] [--lora-lr 5e-4] [--head-lr 2e-4] [--lora-rank 8] [--lora-alpha 16]
        [--purpose selection|confirmation] [--no-ablation | --ablation-only]

A row keeps its seeds: running it again with other seeds adds them (its settings must be the
same). The recipe pre-training sees no wikiHow-FG article, so it runs once per seed and model
(full, ablation) and every fold starts from it; joint training and the LoRA stage run per fold.
``--no-ablation`` (selection runs only) trains the full model alone; ``--ablation-only`` the ablation
alone, to pair with a full-only row of the same settings and seeds (seeded as in a paired run: the two
models of a seed start from the same weights).
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
from graphmie.io import atomic_write_text, update_json  # noqa: E402
from graphmie.methods.seqgmper import DEFAULT_ADAPTATION, DEFAULT_ENCODER, DEFAULT_MODEL, DEFAULT_TRAINING  # noqa: E402
from graphmie.methods.seqgmper.model import TAG_DECODES  # noqa: E402
from graphmie.methods.seqgmper.samples import Featurizer, predict_example, prepare  # noqa: E402
from graphmie.methods.seqgmper.train import pretrain, recipe_examples, train_model  # noqa: E402

KEYS = ("entity_f1", "flow_f1", "flow_f1_unlabelled", "flow_f1_within_step", "flow_f1_across_steps")


def cross_validate(exs, folds: int, seed: int, seq: bool, epochs: int, settings: dict | None = None,
                   adaptation: dict | None = None, encoder: dict | None = None, recipes=None) -> dict:
    idx = list(range(len(exs)))
    random.Random(0).shuffle(idx)
    parts = [idx[i::folds] for i in range(folds)]
    golds, preds_ge = [], []
    preds = {d: [] for d in TAG_DECODES}       # the same fold models, their tags decoded each way
    model_cfg, training = {**(settings or {}), "seq_attention": seq}, {"epochs": epochs, "seed": seed}
    decode = model_cfg.get("tag_decode", DEFAULT_MODEL["tag_decode"])
    pretrained = None
    if adaptation and adaptation["mode"] == "pretrain":
        pretrained = pretrain(recipes, model_cfg, training, adaptation)
    for part in parts:
        held = set(part)
        train = [exs[i] for i in idx if i not in held]
        model, _ = train_model(train, model_cfg, training, adaptation=adaptation, encoder=encoder, recipes=recipes,
                               pretrained=pretrained)
        for i in part:
            for d in TAG_DECODES:
                model.tag_decode = d
                preds[d].append(predict_example(model, exs[i]))
            model.tag_decode = decode
            preds_ge.append(predict_example(model, exs[i], gold_entities=True))
            golds.append(exs[i].doc)
    by_decode = {d: score(p, golds) for d, p in preds.items()}
    r = by_decode[decode]
    r["by_tag_decode"] = {d: {k: s[k] for k in KEYS} for d, s in by_decode.items()}
    ge = score(preds_ge, golds)
    r["flow_f1_gold_entities"] = ge["flow_f1"]
    r["flow_f1_unlabelled_gold_entities"] = ge["flow_f1_unlabelled"]
    return r


def _seed_pair(job) -> list:
    exs, folds, seed, epochs, settings, adaptation, encoder, recipes, models = job
    torch.set_num_threads(1)
    pair = []
    for name, seq in {2: (("full", True), ("no_seq_attention", False)), 1: (("full", True),),
                      "ablation": (("no_seq_attention", False),)}[models]:
        t = time.time()
        r = cross_validate(exs, folds, seed, seq, epochs, settings, adaptation, encoder, recipes)
        r["seed"] = seed
        if adaptation is not None:
            r["seconds"] = round(time.time() - t, 1)
        pair.append((name, r))
        print(f"{name} seed {seed}: " + ", ".join(f"{k}={r[k]:.4f}" for k in KEYS + ("flow_f1_gold_entities",))
              + f" ({time.time() - t:.0f}s)", file=sys.stderr, flush=True)
    return pair


def summarise(runs: dict, args, t0: float) -> dict:
    results = {}
    for name, rs in runs.items():
        if not rs:
            continue
        keys = [k for k in rs[0] if k.startswith(("entity_", "flow_"))]
        results[name] = {"per_seed": rs, "mean": {k: statistics.mean(r[k] for r in rs) for k in keys},
                         "stdev": {k: statistics.pstdev(r[k] for r in rs) for k in keys}}
    out = {
        "task": "procedure", "dataset": "wikiHow-FG (96 articles, 4 domains, as released in ../shared/data)",
        "protocol": f"{args.folds}-fold CV, articles shuffled with random.Random(0), folds = idx[i::{args.folds}]; "
                    f"seeds {[r['seed'] for r in runs['full'] or runs['no_seq_attention']]}; micro-averaged over all held-out articles per "
                    f"seed; mean/stdev over seeds; full and ablation of one seed share their initial weights "
                    f"(paired comparison)",
        "matching": "entity = exact (step, word span, type); flow = exact head span, tail span and label "
                    "(unlabelled: spans only); flows between predicted entities (end to end)",
        "model": {**DEFAULT_MODEL, **args.model}, "training": {**DEFAULT_TRAINING, "epochs": args.epochs},
        "results": results,
    }
    if not runs["no_seq_attention"] or not runs["full"]:
        return out
    full, abl = results["full"]["mean"], results["no_seq_attention"]["mean"]
    deltas = [f["flow_f1"] - a["flow_f1"] for f, a in zip(runs["full"], runs["no_seq_attention"])]
    across = [f["flow_f1_across_steps"] - a["flow_f1_across_steps"]
              for f, a in zip(runs["full"], runs["no_seq_attention"])]
    if args.row:
        out.update(delta_flow_f1=full["flow_f1"] - abl["flow_f1"], delta_flow_f1_per_seed=deltas,
                   seeds_where_full_wins=sum(d > 0 for d in deltas),
                   delta_flow_f1_stdev=statistics.pstdev(deltas) if len(deltas) > 1 else 0.0,
                   delta_across_steps_per_seed=across, seeds_where_full_wins_across=sum(d > 0 for d in across))
        return out
    return {
        **out,
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
    row = ap.add_argument_group("recipe adaptation / tuned encoder rows (-> bench/results/procedure_adaptation.json)")
    row.add_argument("--row", help="the row's name; with it the run is a row of the adaptation results")
    row.add_argument("--purpose", choices=("selection", "confirmation"), default="selection")
    row.add_argument("--adapt", choices=("none", "pretrain", "joint"), default="none")
    row.add_argument("--labels", choices=("mapped", "separate"), default=DEFAULT_ADAPTATION["labels"])
    row.add_argument("--recipes", type=Path, default=ROOT.parent / "shared" / "data" / "recipe_fg_en")
    row.add_argument("--adapt-epochs", type=int, default=DEFAULT_ADAPTATION["epochs"])
    row.add_argument("--adapt-lr", type=float, default=DEFAULT_ADAPTATION["lr"])
    row.add_argument("--recipes-per-epoch", type=int, default=DEFAULT_ADAPTATION["recipes_per_epoch"])
    row.add_argument("--recipe-weight", type=float, default=DEFAULT_ADAPTATION["recipe_weight"])
    row.add_argument("--encoder", choices=("frozen", "lora"), default="frozen")
    row.add_argument("--lora-rank", type=int, default=DEFAULT_ENCODER["rank"])
    row.add_argument("--lora-alpha", type=float, default=DEFAULT_ENCODER["alpha"])
    row.add_argument("--lora-epochs", type=int, default=DEFAULT_ENCODER["epochs"])
    row.add_argument("--lora-lr", type=float, default=DEFAULT_ENCODER["lr"])
    row.add_argument("--head-lr", type=float, default=DEFAULT_ENCODER["head_lr"])
    only = row.add_mutually_exclusive_group()
    only.add_argument("--no-ablation", action="store_true", help="train the full model only (selection runs)")
    only.add_argument("--ablation-only", action="store_true",
                      help="train the ablation only (to pair with a full-only row of the same settings and seeds)")
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
    if args.row:
        return run_row(args)
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
        jobs = [(exs, args.folds, s, args.epochs, args.model, None, None, None, 2) for s in seeds]
        for seed, pair in zip(seeds, pool.map(_seed_pair, jobs)):
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


ADAPTATION_OUT = ROOT / "bench" / "results" / "procedure_adaptation.json"


def _with_row(table: dict | None, name: str, entry: dict) -> dict:
    table = table or {"task": "procedure",
                      "what": "issue 17: recipe adaptation and the tuned encoder, 5-fold CV on wikiHow-FG", "rows": {}}
    table["rows"][name] = entry
    return table


def run_row(args) -> int:
    """One row of ``procedure_adaptation.json``: the seeds of ``--seeds`` not yet in the row."""
    adaptation = {**DEFAULT_ADAPTATION, "mode": args.adapt, "labels": args.labels, "epochs": args.adapt_epochs,
                  "lr": args.adapt_lr, "recipes_per_epoch": args.recipes_per_epoch,
                  "recipe_weight": args.recipe_weight, "recipes": str(args.recipes)}
    encoder = {**DEFAULT_ENCODER, "tune": args.encoder, "rank": args.lora_rank, "alpha": args.lora_alpha,
               "epochs": args.lora_epochs, "lr": args.lora_lr, "head_lr": args.head_lr}
    settings = {"model": {**DEFAULT_MODEL, **args.model}, "training": {**DEFAULT_TRAINING, "epochs": args.epochs},
                "adaptation": {k: v for k, v in adaptation.items() if k not in ("recipes", "limit")},
                "encoder": encoder, "folds": args.folds,
                "models": 1 if args.no_ablation else "ablation" if args.ablation_only else 2}
    out_path = args.out if args.out != ROOT / "bench" / "results" / "procedure.json" else ADAPTATION_OUT
    table = json.loads(out_path.read_text()) if out_path.exists() else {"rows": {}}
    old = table["rows"].get(args.row)
    if old is not None and old["settings"] != settings:
        print(f"error: row {args.row!r} exists with other settings: {json.dumps(old['settings'])}", file=sys.stderr)
        return 2
    runs = {name: list(old["results"].get(name, {}).get("per_seed", [])) if old else []
            for name in ("full", "no_seq_attention")}
    done = {r["seed"] for r in runs["full"] + runs["no_seq_attention"]}
    seeds = [s for s in args.seeds if s not in done]
    docs = read_folder(args.data)
    feat = Featurizer()
    exs = [prepare(d, feat) for d in docs]
    recipes, skipped = None, []
    if args.adapt != "none":
        recipes = recipe_examples(args.recipes, adaptation, feat, skipped)
    feat.save()
    t0 = time.time()
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = [(exs, args.folds, s, args.epochs, args.model, adaptation, encoder, recipes, settings["models"])
                for s in seeds]
        for pair in pool.map(_seed_pair, jobs):
            for name, r in pair:
                runs[name].append(r)
            entry = summarise(runs, args, t0)
            entry.update(settings=settings, purpose=args.purpose, command=" ".join(["python3 -m bench.bench_procedure"]
                                                                                  + sys.argv[1:]),
                         recipes_used=len(recipes) if recipes else 0, recipes_skipped=len(skipped),
                         versions=package_versions())
            # other rows may have been written meanwhile by runs beside this one: read again, under a lock
            table = update_json(out_path, lambda t, e=entry: _with_row(t, args.row, e))
    entry = table["rows"].get(args.row)
    if entry:
        for name, res in entry["results"].items():
            print(f"{args.row} {name}: " + json.dumps({k: f"{res['mean'][k]:.4f} ± {res['stdev'][k]:.4f}"
                                                       for k in KEYS}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
