"""Benchmark of form relation extraction on the FUNSD dev split (the shipped weights' split).

Measures, on this machine:
* linking P/R/F1 with gold entity labels and with predicted labels, for the RE²-style model,
  the geometric baseline rule and the ablation (no region nodes, no edge types);
* entity-labelling P/R/F1;
* end to end from the page images (no gold boxes) on the dev forms, with the learned
  segmenter and with the row rule (OCR words cached; ``bench_ocr.py`` times the OCR);
* with ``--oracle-segmentation`` only the segmentation ceiling (issue 12): the same OCR words
  grouped as their alignment to the gold entities says (unaligned words each their own block,
  or dropped), scored end to end with the shipped labeller and linker, with gold labels, and
  with gold labels and links; beside the learned segmenter, the row rule and gold boxes. Its rows
  go under the key ``ocr_segmentation_ceiling`` of the existing results file (other keys kept);
* speed from gold words to links (text features computed, not cached), pages/s, and where a
  page's CPU time goes, stage by stage, the output files ``graphmie extract`` writes included
  (``--speed-only``: only these, the other keys of the results file kept);
* training time (from the weights' training record).

    python3 bench/bench_form.py [--data ../shared/data/funsd/training_data] [--ocr-forms N] [--no-ocr]
    python3 bench/bench_form.py --oracle-segmentation [--ocr-forms N]
    python3 bench/bench_form.py --speed-only

Prints the figures and writes ``bench/results/form.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from graphmie.engine.checkpoint import WEIGHTS_DIR  # noqa: E402
from graphmie.methods.re2.data import make_sample, read_folder  # noqa: E402
from graphmie.methods.re2.evaluate import evaluate_ocr, score_samples  # noqa: E402
from graphmie.methods.re2.features import Featurizer  # noqa: E402
from graphmie.tasks.form import FormTask  # noqa: E402


def score_weights(name: str, docs) -> dict:
    """Dev figures of other shipped weights (the baseline rows are the main model's, not repeated)."""
    m = FormTask.load(name).method
    feats = Featurizer(m.config["features"]["text"], cache="form")
    samples = [make_sample(d, feats, m.config["graph"]) for d in docs]
    return {k: v for k, v in score_samples(m.net, m.config, samples).items() if not k.startswith("baseline")}


def speed(task: FormTask, files: list[Path]) -> dict:
    from graphmie.data.funsd import read_funsd

    opts = {"gold_labels": False}
    for f in files[:3]:                                   # warm-up
        task.predict(read_funsd(f), opts)
    task.method.feats.clear()
    t, c = time.perf_counter(), time.process_time()
    for f in files:
        task.predict(read_funsd(f), opts)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    t2, c2 = time.perf_counter(), time.process_time()
    for f in files:
        task.predict(read_funsd(f), opts)
    dt2, dc2 = time.perf_counter() - t2, time.process_time() - c2
    n = len(files)
    return {"speed_pages_per_s_gold_words_to_links": n / dt, "speed_pages_per_cpu_s_gold_words_to_links": n / dc,
            "speed_pages_per_s_without_text_encoder": n / dt2, "speed_pages_per_cpu_s_without_text_encoder": n / dc2}


STAGES_KEY = "speed_stages_cpu_ms_per_page"


def print_speed(res: dict) -> None:
    import os

    print(f"speed gold words -> links: {res['speed_pages_per_s_gold_words_to_links']:.2f} pages/s wall, "
          f"{res['speed_pages_per_cpu_s_gold_words_to_links']:.2f} pages per CPU-second; without the text encoder "
          f"{res['speed_pages_per_s_without_text_encoder']:.2f} pages/s wall, "
          f"{res['speed_pages_per_cpu_s_without_text_encoder']:.2f} per CPU-second "
          f"(load average {res['load_average_during_bench'][0]:.1f} on {os.cpu_count()} cores)")
    if STAGES_KEY in res:
        st = res[STAGES_KEY]
        model = sum(v for k, v in st.items() if not k.startswith("output"))
        print(f"CPU ms per page: {model:.1f} to links, {sum(st.values()) - model:.1f} for the output files; "
              + ", ".join(f"{k} {v}" for k, v in st.items()))


CEILING_KEY = "ocr_segmentation_ceiling"


def segmentation_ceiling(model, docs, feats, forms: int = 0) -> dict:
    """End-to-end rows on the same dev forms and OCR words, segmentation by segmentation (the
    learned segmenter, the row rule, the oracle alignment), plus gold boxes for reference."""
    from graphmie.methods.re2.data import make_sample as sample_of

    some = docs[:forms] if forms else docs
    cfg = model.config
    rows = []

    def row(name, labels, links, o):
        rows.append({"segmentation": name, "labels": labels, "links": links,
                     "block_f1": o["ocr_block_f1"], "entity_f1": o["ocr_entity_f1"], "link_f1": o["ocr_link_f1"],
                     "link_precision": o["ocr_link_precision"], "link_recall": o["ocr_link_recall"],
                     "link_f1_text_matched": o["ocr_link_f1_text_matched"],
                     "entity_f1_text_matched": o["ocr_entity_f1_text_matched"],
                     "block_f1_text_matched": o["ocr_block_f1_text_matched"], "forms": o["ocr_forms"]})

    row(model.segmenter.name, "predicted", "predicted",
        evaluate_ocr(model.net, cfg, some, feats, segmenter=model.segmenter))
    row("rule", "predicted", "predicted", evaluate_ocr(model.net, cfg, some, feats, segmenter=None))
    for seg in ("oracle", "oracle_drop"):
        for gl, lk in ((False, False), (True, False), (True, True)):
            row(seg, "gold" if gl else "predicted", "gold" if lk else "predicted",
                evaluate_ocr(model.net, cfg, some, feats, segmentation=seg, gold_labels=gl, gold_links=lk))
    m = score_samples(model.net, cfg, [sample_of(d, feats, cfg["graph"]) for d in some])
    for labels, f1 in (("predicted", m["f1_predicted_labels"]), ("gold", m["f1"])):
        rows.append({"segmentation": "gold boxes", "labels": labels, "links": "predicted", "block_f1": 1.0,
                     "entity_f1": m["entity_f1"] if labels == "predicted" else 1.0, "link_f1": f1,
                     "link_f1_text_matched": None, "forms": m["forms"]})
    return {"rows": rows, "match_iou": 0.5, "ocr_engine": "rapidocr",
            "note": "same OCR words (layout.ocr.cached_ocr_words) and the shipped form_re2 labeller/linker in "
                    "every row; 'oracle': the OCR words grouped by their alignment to the gold entities "
                    "(graphmie.methods.re2.segment.align_words), each unaligned word its own block; "
                    "'oracle_drop': unaligned words dropped; labels 'gold': the aligned entity's label "
                    "('other' for an unaligned word); links 'gold': the gold question->answer links between "
                    "aligned blocks, no model (the ceiling the OCR words leave); 'gold boxes': gold words and "
                    "blocks, no OCR (the gold-box figures of the model row)"}


def print_ceiling(c: dict) -> None:
    def f(v):
        return "   -  " if v is None else f"{v:6.3f}"

    print(f"{'segmentation':<14} {'labels':<10} {'links':<10} {'block F1':>8} {'entity F1':>9} {'link F1':>8} "
          f"{'link F1 text-matched':>20}")
    for r in c["rows"]:
        print(f"{r['segmentation']:<14} {r['labels']:<10} {r['links']:<10} {f(r['block_f1']):>8} "
              f"{f(r['entity_f1']):>9} {f(r['link_f1']):>8} {f(r['link_f1_text_matched']):>20}")


def speed_stages(task: FormTask, files: list[Path]) -> dict:
    """Where a page's time goes (CPU ms per page, one thread, text vectors computed fresh): the
    stages of ``FormTask.predict`` on a one-page form, then the output files ``graphmie extract``
    writes (``pipeline.render_outputs``: the document JSON, each RDF/Cypher format, the PNG)."""
    from collections import Counter

    from graphmie.data.funsd import read_funsd
    from graphmie.methods.re2.data import pair_inputs
    from graphmie.methods.re2.features import ink_features, text_shape
    from graphmie.methods.re2.model import LABELS, constrained_decode
    from graphmie.pipeline import DEFAULT_FORMATS, document_json
    from kg_export import serialize
    from layout.graph import build_layout_graph

    m, stages = task.method, Counter()
    net, g, d = m.net, m.config["graph"], m.config["decode"]
    m.feats.clear()
    clock = [time.process_time()]

    def tick(name):
        now = time.process_time()
        stages[name] += now - clock[0]
        clock[0] = now

    with torch.inference_mode():
        for f in files:
            clock[0] = time.process_time()
            doc = read_funsd(f)
            tick("read FUNSD JSON")
            texts, boxes, page = [e.text for e in doc.entities], [e.box for e in doc.entities], doc.pages[0]
            emb = m.feats.text_vectors(texts)
            tick("text vectors")
            shape = torch.tensor([text_shape(t) for t in texts])
            ink = ink_features(page.image, boxes)
            tick("text shape + ink cues")
            data = build_layout_graph(boxes, page.width, page.height, torch.cat([emb.float(), shape, ink], -1),
                                      k=g["k"], regions=g["regions"], edge_types=g["edge_types"])
            tick("layout graph")
            hs = net.encode(data)
            tick(f"GAT networks ({len(net.members)} members)")
            labels = [LABELS[i] for i in net.label_probs(hs, len(texts)).argmax(-1).tolist()]
            pairs, px = pair_inputs(doc, labels, g["candidates_k"])
            p = net.link_probs(hs, torch.tensor(pairs), px) if pairs else torch.zeros(0)
            constrained_decode(pairs, p.tolist(), d["threshold"], d["second_threshold"], d["constrained"])
            tick("labels, pair features, links")
            res = task.predict(read_funsd(f), {"gold_labels": False})
            clock[0] = time.process_time()
            document_json(res.doc)
            tick("output: document JSON")
            for fmt in DEFAULT_FORMATS:
                serialize(res.doc, fmt)
                tick(f"output: {fmt}")
            task.render(res)
            tick("output: PNG picture")
    return {k: round(1000 * v / len(files), 1) for k, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd" / "training_data")
    ap.add_argument("--ocr-forms", type=int, default=0, help="end to end on the first N dev forms (0 = all)")
    ap.add_argument("--no-ocr", action="store_true", help="skip the end-to-end rows")
    ap.add_argument("--oracle-segmentation", action="store_true",
                    help=f"only the segmentation ceiling rows, written under '{CEILING_KEY}' of --out")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "form.json")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed figures and the per-stage split (other keys of --out kept)")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"FUNSD not found at {args.data}")
    if args.oracle_segmentation:
        torch.set_num_threads(1)
        task = FormTask.load(None)
        model = task.method
        docs = read_folder(args.data, set(model.ckpt.record["data"]["dev_ids"]))
        feats = Featurizer(model.config["features"]["text"], cache="form")
        c = segmentation_ceiling(model, docs, feats, args.ocr_forms)
        res = json.loads(args.out.read_text()) if args.out.exists() else {}
        res[CEILING_KEY] = c
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))
        print_ceiling(c)
        print(f"wrote {CEILING_KEY} in {args.out}")
        return
    if args.speed_only:
        import os

        from graphmie.data.funsd import list_annotations

        torch.set_num_threads(1)
        task = FormTask.load(None)
        dev_ids = set(task.method.ckpt.record["data"]["dev_ids"])
        files = [f for f in list_annotations(args.data) if f.stem in dev_ids]
        res = json.loads(args.out.read_text()) if args.out.exists() else {}
        res.update(speed(task, files))
        res[STAGES_KEY] = speed_stages(task, files)
        res["load_average_during_bench"] = os.getloadavg()
        args.out.write_text(json.dumps(res, indent=2))
        print_speed(res)
        print(f"wrote the speed keys of {args.out}")
        return
    res = {"data": str(args.data), "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads"}

    task = FormTask.load(None)
    model, record = task.method, task.method.ckpt.record
    dev_ids = set(record["data"]["dev_ids"])
    docs = read_folder(args.data, dev_ids)
    res["dev_forms"] = len(docs)
    feats = Featurizer(model.config["features"]["text"], cache="form")
    feats.warm([e.text for d in docs for e in d.entities])
    samples = [make_sample(d, feats, model.config["graph"]) for d in docs]
    res["model"] = score_samples(model.net, model.config, samples)

    abl_path = WEIGHTS_DIR / "form_re2_ablation.safetensors"
    if abl_path.exists():
        res["ablation_no_regions_no_edge_types"] = score_weights("form_re2_ablation", docs)

    # speed: gold words -> links, text features computed fresh for every page
    from graphmie.data.funsd import list_annotations

    files = [f for f in list_annotations(args.data) if f.stem in dev_ids]
    torch.set_num_threads(1)
    res.update(speed(task, files))
    res[STAGES_KEY] = speed_stages(task, files)
    res["speed_note"] = ("1 torch thread; read FUNSD JSON + text features (uncached) + layout graph + GAT + "
                         "decoding, per page. *_per_cpu_s divides by the process CPU time (what one free core "
                         "would give); *_per_s by wall time (includes waiting for a shared, loaded CPU). "
                         "'without_text_encoder': second pass with the text vectors cached.")
    variant_path = WEIGHTS_DIR / "form_re2_minilm.safetensors"
    if variant_path.exists():
        res["variant_minilm_contextual"] = score_weights("form_re2_minilm", docs)
        res["variant_minilm_contextual"].update(speed(FormTask.load("form_re2_minilm"), files))
    import os

    res["load_average_during_bench"] = os.getloadavg()

    if not args.no_ocr:
        # end to end from the page images (OCR words cached; bench_ocr.py times the whole path)
        some = docs[: args.ocr_forms] if args.ocr_forms else docs
        for name, seg in (("ocr_end_to_end", model.segmenter), ("ocr_end_to_end_rule_segments", None)):
            res[name] = evaluate_ocr(model.net, model.config, some, model.feats, segmenter=seg)
    hist = record.get("history") or []
    if hist and isinstance(hist[0], list):   # an ensemble: each member's own dev figures after training
        last = [h[-1] for h in hist]
        res["ensemble_members"] = {
            "members": len(last), "member_f1": [x.get("f1") for x in last],
            "member_entity_f1": [x.get("entity_f1") for x in last],
            "member_f1_mean": sum(x.get("f1", 0) for x in last) / len(last),
            "member_entity_f1_mean": sum(x.get("entity_f1", 0) for x in last) / len(last)}
    res["train_seconds"] = record.get("train_seconds")
    res["train_command"] = record.get("command")
    res["anchors"] = {"linking_f1": {"LayoutXLM": 0.548, "LiLT": 0.628, "Layout2Graph": 0.770, "GeoLayoutLM": 0.894,
                                     "issue_target": 0.90},
                      "entity_f1": {"LayoutLMv2-base": 0.828, "BROS-base": 0.831, "LayoutLMv3-base": 0.903,
                                    "issue_target": 0.83}}
    if args.out.exists() and CEILING_KEY in (old := json.loads(args.out.read_text())):
        res[CEILING_KEY] = old[CEILING_KEY]          # kept: only --oracle-segmentation measures it
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    m = res["model"]
    print(f"dev forms: {len(docs)}  gold links: {m['gold_links']}  candidate recall: {m['candidate_recall']:.3f}")
    print(f"linking F1 (gold labels):      model {m['f1']:.3f}   baseline {m['baseline_f1']:.3f}"
          + (f"   ablation {res['ablation_no_regions_no_edge_types']['f1']:.3f}" if abl_path.exists() else ""))
    print(f"linking F1 (predicted labels): model {m['f1_predicted_labels']:.3f}   baseline "
          f"{m['baseline_f1_predicted_labels']:.3f}"
          + (f"   ablation {res['ablation_no_regions_no_edge_types']['f1_predicted_labels']:.3f}"
             if abl_path.exists() else ""))
    print(f"entity F1: {m['entity_f1']:.3f}")
    if "ensemble_members" in res:
        e = res["ensemble_members"]
        print(f"ensemble of {e['members']}: single members' linking F1 mean {e['member_f1_mean']:.3f} "
              f"{e['member_f1']}, entity F1 mean {e['member_entity_f1_mean']:.3f}")
    for name in ("ocr_end_to_end", "ocr_end_to_end_rule_segments"):
        if name in res:
            o = res[name]
            print(f"end to end from OCR, {o['ocr_segmentation']} segmentation ({o['ocr_forms']} forms): link F1 "
                  f"{o['ocr_link_f1']:.3f} (text-matched {o['ocr_link_f1_text_matched']:.3f})  entity F1 "
                  f"{o['ocr_entity_f1']:.3f}  block F1 {o['ocr_block_f1']:.3f}")
    print_speed(res)
    if "variant_minilm_contextual" in res:
        fr = res["variant_minilm_contextual"]
        print(f"variant with contextual MiniLM sentence embeddings: linking F1 {fr['f1']:.3f} (gold labels), "
              f"{fr['f1_predicted_labels']:.3f} (predicted), entity F1 {fr['entity_f1']:.3f}; "
              f"{fr['speed_pages_per_s_gold_words_to_links']:.2f} pages/s wall, "
              f"{fr['speed_pages_per_cpu_s_gold_words_to_links']:.2f} per CPU-second")
    print(f"training: {res['train_seconds']} s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
