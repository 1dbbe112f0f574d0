"""Cross-validated form figures over the FUNSD training forms (issue 12): the learned model
against the geometric rule, from gold boxes and end to end from the page image.

``--folds`` folds (fixed-seed shuffle of the sorted form ids, :func:`graphmie.data.funsd.cv_folds`);
in each fold every model is trained on the other folds only, with the shipped config
(``configs/form_re2.toml``: network, epochs, ensemble size), and scored on the held-out fold.
The rows (``--rows``):

* ``gold``: the ensemble trained on gold blocks; linking with gold boxes and gold labels
  (model and the nearest-question rule, per fold), with predicted labels, entity labelling;
* ``segment``: the OCR word segmenter alone — block F1 (IoU ≥ 0.5, one to one) on the held-out
  fold for the row rule and the learned segmenter at each of ``--seg-thresholds``, and, when the
  segmenter also labels words (``--seg-label-weight`` > 0), the accuracy of its word labels on
  the held-out words that align to a gold entity;
* ``ocr``: end to end from the cached OCR words of the page images — block F1 (IoU ≥ 0.5, one
  to one), link F1 and entity F1 through matched blocks, and the text-matched variant — for
  the rule's row segments and the learned segmenter, each with the labeller/linker trained on
  gold blocks only and also on the training forms' OCR blocks (out-of-fold segmenter output,
  ``data.ocr_blocks``, the shipped recipe); the same networks are also scored on gold boxes.
  ``--ocr-ensemble`` members per network (1 by default, for time).

Folds run ``--jobs`` at a time, one torch thread each.

    python3 -m bench.bench_form_cv [--rows gold,ocr,segment] [--folds 5] [--jobs 2] [--out bench/results/form_cv.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from graphmie.config import load_config  # noqa: E402
from graphmie.data.funsd import cv_folds  # noqa: E402
from graphmie.methods.re2 import RE2  # noqa: E402
from graphmie.methods.re2.data import make_sample, read_folder  # noqa: E402
from graphmie.methods.re2.evaluate import score_samples  # noqa: E402
from graphmie.methods.re2.features import Featurizer  # noqa: E402
from graphmie.methods.re2.model import Ensemble  # noqa: E402
from graphmie.methods.re2.train import check_counts, train_member  # noqa: E402

OCR_KEYS = ("ocr_block_f1", "ocr_link_f1", "ocr_entity_f1", "ocr_block_f1_text_matched", "ocr_link_f1_text_matched",
            "ocr_entity_f1_text_matched")
GOLD_KEYS = ("f1", "baseline_f1", "f1_predicted_labels", "baseline_f1_predicted_labels", "entity_f1")


TARGETS = {"gold_labels_model_minus_rule_min": 0.03, "predicted_labels_link_f1_min": 0.80, "entity_f1_min": 0.88,
           "end_to_end_link_f1_min": 0.65, "end_to_end_block_f1_min": 0.85}
ANCHORS = {"LayoutLMv3-base FUNSD test entity F1": 0.903,
           "PEneo (ACM MM 2024) RFUND-EN key-value pair F1 from annotated lines, LayoutLMv3-base": 0.79,
           "PEneo, LiLT": 0.74}


def train_ensemble(cfg: dict, samples) -> Ensemble:
    members = []
    for k in range(cfg["training"]["ensemble"]):
        mcfg = copy.deepcopy(cfg)
        mcfg["training"]["seed"] = cfg["training"]["seed"] + k
        members.append(train_member(mcfg, samples, None)[0])
    return Ensemble(members).eval()


def ocr_fold(f: int, test: list[str], by_id: dict, cfg: dict, opts: dict) -> dict:
    """The end-to-end rows of one fold (see the module docstring); every model sees the other folds only."""
    from graphmie.methods.re2.evaluate import EndToEnd, ocr_document, run_page
    from graphmie.methods.re2.data import make_graph
    from graphmie.methods.re2.train import train_segmentation

    torch.set_num_threads(1)
    feats = Featurizer(cfg["features"]["text"], cache="form")
    held = set(test)
    train_ids = [i for i in sorted(by_id) if i not in held]
    t = time.perf_counter()
    scfg = copy.deepcopy(cfg)
    scfg["data"]["ocr_blocks"] = True
    scfg["segment"].update(epochs=opts["seg_epochs"], threshold=opts["seg_threshold"])
    scfg["training"]["seed"] = opts["seed"]
    seg, ocr_train, _ = train_segmentation(scfg, by_id, train_ids, feats)
    gold_train = [make_sample(by_id[i], feats, cfg["graph"]) for i in train_ids]
    ecfg = copy.deepcopy(cfg)
    ecfg["training"]["ensemble"] = opts["ocr_ensemble"]
    nets = {"gold": train_ensemble(ecfg, gold_train), "gold+ocr": train_ensemble(ecfg, gold_train + ocr_train)}
    row = {"fold": f, "forms": len(test), "ocr_training_pages": len(ocr_train)}
    test_gold = [make_sample(by_id[i], feats, cfg["graph"]) for i in test]
    for net_name, net in nets.items():
        res = score_samples(net, cfg, test_gold)
        row[f"gold boxes/{net_name}"] = {k: round(res[k], 4) for k in GOLD_KEYS}
    for seg_name, segmenter in (("rule", None), ("learned", seg)):
        for net_name, net in nets.items():
            acc = EndToEnd(0.5)
            for i in test:
                od, _ = ocr_document(by_id[i], segmenter=segmenter)
                out = run_page(net, od, make_graph(od, feats, cfg["graph"]), cfg)
                acc.add(by_id[i], od, out["labels"], out["links"])
            row[f"{seg_name}/{net_name}"] = {k: round(v, 4) for k, v in acc.figures().items() if k in OCR_KEYS}
    row["seconds"] = round(time.perf_counter() - t, 1)
    print(f"fold {f} end to end: " + "; ".join(f"{k} block {v['ocr_block_f1']:.3f} link {v['ocr_link_f1']:.3f}"
                                               for k, v in row.items() if isinstance(v, dict) and "ocr_block_f1" in v)
          + " | gold boxes: " + "; ".join(f"{k[11:]} link {v['f1']:.3f} (rule {v['baseline_f1']:.3f}) pred-labels "
                                          f"{v['f1_predicted_labels']:.3f} entity {v['entity_f1']:.3f}"
                                          for k, v in row.items() if k.startswith("gold boxes")), flush=True)
    return row


def segment_fold(f: int, test: list[str], by_id: dict, cfg: dict, opts: dict) -> dict:
    """The segmenter-only rows of one fold: trained on the other folds' cached OCR words."""
    from graphmie.evaluation.form import match_boxes
    from graphmie.methods.re2.evaluate import ocr_document
    from graphmie.methods.re2.segment import Segmenter, SegmenterEnsemble, seg_sample, train_segmenters
    from graphmie.evaluation.prf import PRF
    from layout.ocr import cached_ocr_words

    torch.set_num_threads(1)
    feats = Featurizer("static", cache="form")
    held = set(test)
    t = time.perf_counter()
    cues = opts["line_cues"]
    train = [seg_sample(cached_ocr_words(by_id[i].pages[0].image)[0], by_id[i], feats, cues)
             for i in sorted(by_id) if i not in held]
    net = train_segmenters(train, cfg["segment"]["ensemble"], opts["seed"], epochs=opts["seg_epochs"], batch_size=1,
                           label_weight=opts["seg_label_weight"], line_cues=cues)
    first = net.members[0] if isinstance(net, SegmenterEnsemble) else net
    row = {"fold": f, "forms": len(test), "train_seconds": round(time.perf_counter() - t, 1)}
    names = [("rule", None)] + [(f"learned@{th}", Segmenter(net, th, cfg["segment"]["k"])) for th in opts["thresholds"]]
    for name, seg in names:
        acc = PRF()
        for i in test:
            od, _ = ocr_document(by_id[i], segmenter=seg)
            m = match_boxes({e.id: e.box for e in od.entities}, {e.id: e.box for e in by_id[i].entities}, 0.5)
            acc.add(tp=len(m), fp=len(od.entities) - len(m), fn=len(by_id[i].entities) - len(m))
        row[name] = {"block_f1": round(acc.f1, 4), "block_precision": round(acc.precision, 4),
                     "block_recall": round(acc.recall, 4)}
    if net.num_labels:                   # the first member's word labels
        right = total = 0
        with torch.inference_mode():
            for i in test:
                words = cached_ocr_words(by_id[i].pages[0].image)[0]
                s = seg_sample(words, by_id[i], feats, cues)
                pred = first.label_head(first.encode(s.graph.x, s.graph.edge_index, s.graph.edge_attr)).argmax(-1)
                ok = s.word_labels >= 0
                right += int((pred[ok] == s.word_labels[ok]).sum())
                total += int(ok.sum())
        row["word_label_accuracy"] = round(right / max(total, 1), 4)
    row["seconds"] = round(time.perf_counter() - t, 1)
    print(f"fold {f} segmenter: " + "; ".join(f"{k} {v['block_f1']:.4f}" for k, v in row.items() if isinstance(v, dict))
          + (f"; word labels {row['word_label_accuracy']:.4f}" if "word_label_accuracy" in row else "")
          + f" [{row['seconds']:.0f}s]", flush=True)
    return row


def gold_fold(f: int, test: list[str], by_id: dict, cfg: dict) -> dict:
    """The gold-box rows of one fold: the shipped recipe's ensemble trained on the other folds."""
    torch.set_num_threads(1)
    feats = Featurizer(cfg["features"]["text"], cache="form")
    held = set(test)
    t = time.perf_counter()
    net = train_ensemble(cfg, [make_sample(by_id[i], feats, cfg["graph"]) for i in sorted(by_id) if i not in held])
    res = score_samples(net, cfg, [make_sample(by_id[i], feats, cfg["graph"]) for i in test])
    row = {"fold": f, "forms": len(test), "train_seconds": round(time.perf_counter() - t, 1),
           **{k: res[k] for k in GOLD_KEYS}}
    print(f"fold {f}: link F1 gold labels {row['f1']:.4f} (rule {row['baseline_f1']:.4f}), "
          f"predicted labels {row['f1_predicted_labels']:.4f}, entity F1 {row['entity_f1']:.4f} "
          f"[{row['train_seconds']:.0f}s]", flush=True)
    return row


def run_folds(fn, jobs: list[tuple], n_jobs: int) -> list[dict]:
    """``fn(*job)`` for every fold, ``n_jobs`` at a time in forked processes (one torch thread each)."""
    if n_jobs <= 1:
        return [fn(*j) for j in jobs]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(n_jobs) as pool:
        return pool.starmap(fn, jobs)


def summary(rows: list[dict], keys) -> dict:
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        if vals:
            out[k] = {"mean": round(statistics.mean(vals), 4),
                      "sd": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
                      "per_fold": [round(v, 4) for v in vals]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd" / "training_data")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "form_re2.toml")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", type=int, help="members per model (default: the config's)")
    ap.add_argument("--rows", default="gold", help="gold, ocr, or gold,ocr")
    ap.add_argument("--ocr-ensemble", type=int, default=1, help="members per model in the end-to-end rows")
    ap.add_argument("--seg-epochs", type=int, help="segmenter epochs (default: the config's)")
    ap.add_argument("--seg-threshold", type=float, help="segmenter threshold (default: the config's)")
    ap.add_argument("--seg-thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8],
                    help="segmenter thresholds scored in the segment rows")
    ap.add_argument("--seg-label-weight", type=float, help="word-label loss weight (default: the config's)")
    ap.add_argument("--seg-folds", type=int, nargs="+", help="only these folds in the segment rows (exploration)")
    ap.add_argument("--name", help="the segment rows' key in the results (default: segment)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. segment.line_cues=false")
    ap.add_argument("--jobs", type=int, default=2, help="folds run at once (one torch thread each)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "form_cv.json")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"FUNSD not found at {args.data}")
    torch.set_num_threads(1)
    from graphmie.config import parse_override

    cfg = RE2.resolve_config(load_config(args.config, dict(map(parse_override, args.set))), args.config)
    if args.ensemble:
        cfg["training"]["ensemble"] = args.ensemble
    check_counts(cfg)
    docs = read_folder(args.data)
    by_id = {d.id: d for d in docs}
    folds = cv_folds(list(by_id), args.folds, args.seed)
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
                   "targets": TARGETS, "anchors": ANCHORS})
    rows_wanted = args.rows.split(",")
    if "ocr" in rows_wanted or "segment" in rows_wanted:
        from layout.ocr import cached_ocr_words

        for d in docs:                   # the OCR cache filled once, before the folds fork
            cached_ocr_words(d.pages[0].image)
    if "segment" in rows_wanted:
        opts = {"seg_epochs": args.seg_epochs or cfg["segment"]["epochs"], "seed": args.seed,
                "thresholds": args.seg_thresholds,
                "seg_label_weight": cfg["segment"]["label_weight"] if args.seg_label_weight is None
                else args.seg_label_weight, "line_cues": cfg["segment"]["line_cues"]}
        t0 = time.perf_counter()
        which = args.seg_folds if args.seg_folds is not None else range(len(folds))
        srows = run_folds(segment_fold, [(f, folds[f], by_id, cfg, opts) for f in which], args.jobs)
        keys = [k for k in srows[0] if isinstance(srows[0][k], dict)]
        result[args.name or "segment"] = {
            "protocol": {"folds": args.folds, "folds_run": list(which), "seed": args.seed,
                         "segmenter_epochs": opts["seg_epochs"], "label_weight": opts["seg_label_weight"],
                         "line_cues": opts["line_cues"], "ensemble": cfg["segment"]["ensemble"],
                         "match_iou": 0.5, "ocr": "RapidOCR words (cached), layout.ocr.RAPIDOCR_PARAMS"},
            "per_fold": srows, **{k: summary([r[k] for r in srows], ("block_f1",)) for k in keys},
            **({"word_label_accuracy": summary(srows, ("word_label_accuracy",))["word_label_accuracy"]}
               if "word_label_accuracy" in srows[0] else {}),
            "seconds": round(time.perf_counter() - t0, 1)}
        for k in keys:
            print(f"{k:14s} block F1 {result[args.name or 'segment'][k]['block_f1']['mean']:.4f}")
    if "ocr" in rows_wanted:
        opts = {"seg_epochs": args.seg_epochs or cfg["segment"]["epochs"], "seed": args.seed,
                "seg_threshold": args.seg_threshold or cfg["segment"]["threshold"], "ocr_ensemble": args.ocr_ensemble}
        t0 = time.perf_counter()
        jobs = [(f, test, by_id, cfg, opts) for f, test in enumerate(folds)]
        orows = run_folds(ocr_fold, jobs, args.jobs)
        keys = [k for k in orows[0] if isinstance(orows[0][k], dict) and not k.startswith("gold boxes")]
        gkeys = [k for k in orows[0] if k.startswith("gold boxes")]
        result["ocr"] = {"protocol": {"folds": args.folds, "seed": args.seed, "ensemble": args.ocr_ensemble,
                                      "segmenter_epochs": opts["seg_epochs"],
                                      "segmenter_threshold": opts["seg_threshold"], "match_iou": 0.5,
                                      "ocr": "RapidOCR words (cached), layout.ocr.RAPIDOCR_PARAMS",
                                      "training_blocks": "the training forms' blocks from segmenters trained on the "
                                                         "other half of the training forms (out of fold)"},
                         "per_fold": orows, **{k: summary([r[k] for r in orows], OCR_KEYS) for k in keys},
                         **{k: summary([r[k] for r in orows], GOLD_KEYS) for k in gkeys},
                         "seconds": round(time.perf_counter() - t0, 1)}
        best = result["ocr"]
        for k in keys:
            print(f"{k:18s} block F1 {best[k]['ocr_block_f1']['mean']:.4f}  link F1 {best[k]['ocr_link_f1']['mean']:.4f}"
                  f"  entity F1 {best[k]['ocr_entity_f1']['mean']:.4f}  (text-matched link F1 "
                  f"{best[k]['ocr_link_f1_text_matched']['mean']:.4f})")
    if "gold" not in rows_wanted:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0
    t0 = time.perf_counter()
    jobs = [(f, test, by_id, cfg) for f, test in enumerate(folds)]
    rows = run_folds(gold_fold, jobs, args.jobs)
    diffs = [r["f1"] - r["baseline_f1"] for r in rows]
    result["gold"] = {"protocol": {"folds": args.folds, "seed": args.seed, "forms": len(docs),
                                   "config": str(args.config), "ensemble": cfg["training"]["ensemble"],
                                   "epochs": cfg["training"]["epochs"],
                                   "metric": "micro P/R/F1 over (question, answer) entity pairs, pooled per fold"},
                      "per_fold": rows, **summary(rows, GOLD_KEYS),
                      "model_minus_rule": {"mean": round(statistics.mean(diffs), 4),
                                           "per_fold": [round(d, 4) for d in diffs]},
                      "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    g = result["gold"]
    print(f"gold labels: model {g['f1']['mean']:.4f} ± {g['f1']['sd']:.4f}, rule {g['baseline_f1']['mean']:.4f}; "
          f"model - rule {g['model_minus_rule']['mean']:+.4f}; predicted labels {g['f1_predicted_labels']['mean']:.4f}; "
          f"entity F1 {g['entity_f1']['mean']:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
