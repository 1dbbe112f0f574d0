"""Issue 16's recipe study on MNRE val: typed entity markers, the consistency gate, the tuned encoder, each
row over several seeds with the spread, and paired differences between rows over the same seeds.

    python3 -m bench.bench_post_recipe --rows base,typed --seeds 13 14 15 --jobs 2
    python3 -m bench.bench_post_recipe --ship text_only_lora 13 post_mre_ise_text   # ship one run
    python3 -m bench.bench_post_recipe --ship text_only_lora 15 post_mre_ise_text_trio post_mre_ise_text \
        post_mre_ise_text_s14                                                          # ... averaged with others
    python3 -m bench.bench_post_recipe --rows text_only_lora_kd --seeds 13 14 15 --jobs 3   # students of the trio
    python3 -m bench.bench_post_recipe --ship text_only_lora_kd 13 post_mre_ise_text_kd

Rows (``ROWS``): base (caption + cross-modal graph + GIB + topics, top 2 MiniLM layers tuned), typed (typed
entity markers), gate (the consistency gate), text_only, text_only_reversed (reversed pairs in training),
text_only_lora and gate_lora (LoRA r16 on every MiniLM layer), text_only_lora_r64 / _e8 (rank 64, 8 epochs),
text_only_lora_typed (typed markers whose types come from the shipped Twitter MNER tagger, ``model.type_source
= "mner"``), text_only_lora_kd (the text-only recipe distilled from the shipped average of its three seeds,
``training.distill_from``).

Each (row, seed) is one ``graphmie train configs/post_mre_ise.toml`` run (4 epochs, one schedule) into
``--runs/<row>/s<seed>``; a run that already has its ``run.json`` is collected, not retrained. MNRE's val
split is only scored once at the end of each run (no model selection on it); the rows were planned in this
order: base -> typed markers -> (typed markers scored 2.5 points below base at seed 13, so the gate
and the ablations were run on untyped markers) gate -> text-only ablation -> gate with reversed pairs
(the direction shortcut found in bench/bench_post_pairs.py).
Writes bench/results/post_recipe.json (every seed's figures, mean, stdev, paired differences).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "post_recipe.json"
TEXT_ONLY = ["model.use_caption=false", "model.use_graph=false", "model.use_gib=false", "model.use_topics=false"]
COMMON = ["training.epochs=4", "training.threads=1"]
ROWS = {  # name -> config overrides (on configs/post_mre_ise.toml)
    "base": [],
    "typed": ["model.typed_markers=true"],
    "gate": ["model.use_gate=true"],
    "text_only": TEXT_ONLY,
    "gate_reversed": ["model.use_gate=true", "data.reverse_pairs=1.0"],
    "text_only_reversed": TEXT_ONLY + ["data.reverse_pairs=1.0"],
    "text_only_lora": TEXT_ONLY + ["model.finetune_layers=0", "model.lora_rank=16", "training.lr_encoder=5e-4"],
    "gate_lora": ["model.use_gate=true", "model.finetune_layers=0", "model.lora_rank=16", "training.lr_encoder=5e-4"],
    # the entity tagger's recipe (rank 64, scale 1, rate 3e-4), and twice the epochs (issue 16, second search)
    "text_only_lora_r64": TEXT_ONLY + ["model.finetune_layers=0", "model.lora_rank=64", "model.lora_alpha=64.0",
                                       "training.lr_encoder=3e-4"],
    "text_only_lora_e8": TEXT_ONLY + ["model.finetune_layers=0", "model.lora_rank=16", "training.lr_encoder=5e-4",
                                      "training.epochs=8"],
    # typed markers again, the types now from the shipped Twitter MNER tagger instead of spaCy (issue 16)
    "text_only_lora_typed": TEXT_ONLY + ["model.finetune_layers=0", "model.lora_rank=16", "training.lr_encoder=5e-4",
                                         "model.typed_markers=true", "model.type_source=mner"],
    # the text-only recipe distilled from the average of its three seeds (issue 16, third search): the
    # teacher's label distribution at temperature 2 beside the gold label, half the weight each
    "text_only_lora_kd": TEXT_ONLY + ["model.finetune_layers=0", "model.lora_rank=16", "training.lr_encoder=5e-4",
                                      "training.distill_from=post_mre_ise_text_trio"],
}
PAIRS = [("typed", "base"), ("gate", "base"), ("gate", "text_only"), ("base", "text_only"),
         ("gate_reversed", "gate"), ("text_only_reversed", "text_only"), ("text_only_lora", "text_only"),
         ("gate_lora", "text_only_lora"), ("gate_lora", "gate"),
         ("text_only_lora_r64", "text_only_lora"), ("text_only_lora_e8", "text_only_lora"),
         ("text_only_lora_typed", "text_only_lora"), ("text_only_lora_kd", "text_only_lora")]
KEYS = ("precision", "recall", "f1", "accuracy")
ANCHORS_TEST_F1 = {"BERT (text)": 59.40, "MTB": 60.86, "MEGA": 66.41, "MRE-ISE": 84.03}


def command(row: str, seed: int, out: Path) -> list[str]:
    sets = COMMON + ROWS[row] + [f"training.seed={seed}"]
    return [sys.executable, "-m", "graphmie", "train", "configs/post_mre_ise.toml", "--out", str(out)] + \
        sum((["--set", s] for s in sets), [])


def run_one(row: str, seed: int, runs: Path) -> dict:
    out = runs / row / f"s{seed}"
    cmd = command(row, seed, out)
    if not (out / "run.json").exists():
        t0 = time.time()
        with open(runs / f"{row}_s{seed}.log", "w") as log:
            subprocess.run(cmd, cwd=REPO, check=True, stdout=log, stderr=subprocess.STDOUT)
        print(f"{row} seed {seed}: trained in {time.time() - t0:.0f} s", file=sys.stderr)
    m = json.loads((out / "run.json").read_text())["metrics"]
    return {**{k: m[k] for k in KEYS}, "seed": seed, "train_s": m["train_s"], "command": " ".join(cmd[1:])}


def gate_diagnostic(run: Path, data: Path) -> dict:
    """How the trained gate separates each val post's own caption from another post's: mean gate values and
    the AUC (probability that a post's own caption scores above a caption shifted from another post)."""
    import torch

    from graphmie.data.mnre import load_split
    from graphmie.engine.checkpoint import load_checkpoint
    from graphmie.methods.mre_ise import MREISE
    from graphmie.methods.mre_ise.samples import CACHE, sentence_vectors

    method = MREISE.from_checkpoint(load_checkpoint(run, "post_mre_ise", method="mre_ise"))
    samples, _ = load_split(data, "val", method.config["data"]["caption_source"])
    posts = list({(s.text, s.caption): None for s in samples if s.caption})
    t = sentence_vectors([a for a, _ in posts], CACHE)
    c = sentence_vectors([b for _, b in posts], CACHE)
    with torch.no_grad():
        own, other = method.model.gate(t, c), method.model.gate(t, c.roll(1, 0))
    auc = float((own[:, None] > other[None, :]).float().mean() + 0.5 * (own[:, None] == other[None, :]).float().mean())
    return {"posts": len(posts), "gate_own_caption_mean": round(float(own.mean()), 4),
            "gate_other_caption_mean": round(float(other.mean()), 4), "auc_own_vs_other": round(auc, 4),
            "run": str(run)}


def ship(row: str, seed: int, runs: Path, name: str, data: Path, members: list[str] = ()) -> dict:
    """Copy run ``row``/s``seed`` into graphmie/weights/``name`` (weights bytes unchanged, so the sidecar's
    SHA-256 stays valid), its record extended with how it was chosen and its fp16 file's own val figures.
    ``members``: shipped checkpoints averaged with it (its ``model.members``)."""
    from graphmie.engine.checkpoint import copy_with_members, load_checkpoint, read_sidecar, sidecar_path, \
        write_sidecar
    from graphmie.methods.mre_ise import MREISE

    run = runs / row / f"s{seed}"
    dst = REPO / "graphmie" / "weights" / f"{name}.safetensors"
    rec = dict(read_sidecar(run / "model.safetensors")["record"],
               shipped_from=f"bench/bench_post_recipe.py row {row!r} seed {seed}"
               + (f", averaged with {', '.join(members)}" if members else ""),
               training_command=" ".join(command(row, seed, Path(f"runs/bench_post_recipe/{row}/s{seed}"))[1:]),
               selection="the recipe was chosen on MNRE val among the rows of bench/results/post_recipe.json "
                         "(issue 16's fixed protocol); val is therefore not an unbiased figure for it")
    copy_with_members(run / "model.safetensors", dst, members, rec)
    side = read_sidecar(dst)
    method = MREISE.from_checkpoint(load_checkpoint(dst, name, method="mre_ise"))
    scored = method.evaluate(data, "val")
    rec.update(dev_metrics_shipped={k: scored[k] for k in ("precision", "recall", "f1", "accuracy")},
               dev_metrics_note="dev_metrics: fp32 model at the end of training; dev_metrics_shipped: this fp16 "
                                f"file scored with `python3 -m graphmie evaluate --task post --data {data} --split val"
                                f" --checkpoint {name}`")
    write_sidecar(dst, side["method"], side["config"], side["meta"], rec)
    print(f"shipped {run} as {dst.name} (+ {sidecar_path(dst).name}): val F1 {100 * scored['f1']:.2f}")
    return scored


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="base,typed,gate,text_only")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    ap.add_argument("--runs", default=str(REPO / "runs" / "bench_post_recipe"))
    ap.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnre"))
    ap.add_argument("--ship", nargs="+", metavar="ROW SEED NAME [MEMBER",
                    help="only copy that run into graphmie/weights/NAME.safetensors (+ sidecar) and score it; "
                         "shipped MEMBERs are averaged with it (model.members)")
    args = ap.parse_args()
    runs = Path(args.runs)
    if args.ship:
        if len(args.ship) < 3:
            ap.error("--ship needs ROW, SEED and NAME")
        ship(args.ship[0], int(args.ship[1]), runs, args.ship[2], Path(args.data), args.ship[3:])
        return 0
    runs.mkdir(parents=True, exist_ok=True)
    rows = args.rows.split(",")
    jobs = [(r, s) for r in rows for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda rs: run_one(rs[0], rs[1], runs), jobs))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update({"dataset": "MNRE v2", "split": "val (MNRE's own; no selection on it; anchors are on test)",
                    "metric": "micro-F1 over the 22 relation labels, 'None' the negative class",
                    "anchors_test_f1": ANCHORS_TEST_F1, "common_overrides": COMMON})
    table = results.setdefault("rows", {})
    for (row, seed), r in zip(jobs, done):
        per = {x["seed"]: x for x in table.get(row, {}).get("per_seed", [])}
        per[seed] = r
        per_seed = [per[s] for s in sorted(per)]
        f1 = [x["f1"] for x in per_seed]
        table[row] = {"overrides": ROWS[row], "per_seed": per_seed,
                      "mean": {k: round(statistics.mean(x[k] for x in per_seed), 4) for k in KEYS},
                      "stdev_f1": round(statistics.stdev(f1), 4) if len(f1) > 1 else 0.0}
    paired = {}
    for a, b in PAIRS:
        if a in table and b in table:
            fa = {x["seed"]: x["f1"] for x in table[a]["per_seed"]}
            fb = {x["seed"]: x["f1"] for x in table[b]["per_seed"]}
            common = sorted(set(fa) & set(fb))
            if common:
                d = [100 * (fa[s] - fb[s]) for s in common]
                paired[f"{a} - {b}"] = {"seeds": common, "f1_points": [round(x, 2) for x in d],
                                        "mean": round(statistics.mean(d), 2)}
    results["paired_differences"] = paired
    gated = [runs / r / f"s{s}" for r in rows if "model.use_gate=true" in ROWS[r] for s in args.seeds]
    if gated:
        results["gate_diagnostic"] = [gate_diagnostic(g, Path(args.data)) for g in gated]
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"{'row':24s} {'seeds':10s} {'P':>6s} {'R':>6s} {'F1':>6s} {'sd':>5s}")
    for row, t in table.items():
        m = t["mean"]
        print(f"{row:24s} {','.join(str(x['seed']) for x in t['per_seed']):10s} {100 * m['precision']:6.2f} "
              f"{100 * m['recall']:6.2f} {100 * m['f1']:6.2f} {100 * t['stdev_f1']:5.2f}")
    for k, v in paired.items():
        print(f"paired {k}: {v['f1_points']} (mean {v['mean']:+.2f})")
    for g in results.get("gate_diagnostic", []):
        print(f"gate {g['run']}: own caption {g['gate_own_caption_mean']}, another post's {g['gate_other_caption_mean']},"
              f" AUC {g['auc_own_vs_other']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
