"""Where the time goes from a page image to links, and the OCR settings chosen by it (issue 12).

1. **OCR settings** on ``--pages`` FUNSD training pages: pages/s, seconds per page in detection /
   classification / recognition (RapidOCR's own split), and the share of the gold words the OCR
   finds (multiset recall of lower-cased words), for the engine's defaults and the variants tried; the
   settings take turns over ``--reps`` repetitions, so a change in the machine's load hits them all alike.
2. **The whole path** with the shipped settings, per stage (OCR, segmentation, block features +
   layout graph, labelling and linking), one page at a time; and the throughput of two worker
   processes with one thread each (how ``graphmie extract`` or Ray would use the two cores).

    python3 -m bench.bench_ocr [--pages 6] [--reps 3] [--out bench/results/ocr.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "rapidocr defaults (with line classifier)": {},
    "no line classifier (shipped, onnxruntime backend)": {"Global.use_cls": False},
    "no classifier, recognition batch 24": {"Global.use_cls": False, "Rec.rec_batch_num": 24},
    "no classifier, detection side <= 640": {"Global.use_cls": False, "Det.limit_side_len": 640, "Det.limit_type": "max"},
    "no classifier, one onnxruntime thread": {"Global.use_cls": False,
                                              "EngineConfig.onnxruntime.intra_op_num_threads": 1},
}


def gold_words(ann: Path) -> list[str]:
    data = json.loads(ann.read_text())
    return [w["text"].lower() for e in data["form"] for w in e["words"] if w["text"].strip()]


def ocr_settings(images: list[Path], anns: list[Path], reps: int = 1) -> dict:
    import cv2
    import numpy as np
    from PIL import Image
    from rapidocr import RapidOCR

    cv2.setNumThreads(1)
    arrays = [np.asarray(Image.open(p).convert("RGB"))[:, :, ::-1] for p in images]
    gold = [Counter(gold_words(a)) for a in anns]
    variants = dict(VARIANTS)
    if importlib.util.find_spec("openvino") is not None:          # the `openvino` extra
        from layout.ocr import openvino_params

        ov = {"Global.use_cls": False, **openvino_params()}
        variants["no line classifier, OpenVINO backend (GRAPHMIE_OCR_BACKEND=openvino)"] = ov
        variants["no classifier, OpenVINO, one thread"] = {**ov, "EngineConfig.openvino.inference_num_threads": 1}
    engines = {}
    for name, params in variants.items():
        engines[name] = RapidOCR(params={**params, "Global.log_level": "error"})
        engines[name](arrays[0])                           # warm-up
    runs = {name: [] for name in variants}
    for rep in range(reps):                                # every setting once per repetition, in turn
        for name, eng in engines.items():
            total, split, hit, n = 0.0, [0.0, 0.0, 0.0], 0, 0
            for arr, g in zip(arrays, gold):
                t = time.perf_counter()
                r = eng(arr, return_word_box=True)
                total += time.perf_counter() - t
                for k, e in enumerate((r.elapse_list or [])[:3]):
                    split[k] += e or 0.0
                c = Counter(str(w[0]).strip().lower() for ws in (r.word_results or ()) for w in ws)
                hit += sum((c & g).values())
                n += sum(g.values())
            runs[name].append((len(arrays) / total, [v / len(arrays) for v in split], hit / max(n, 1)))
            print(f"rep {rep + 1}/{reps} {name:48s} {runs[name][-1][0]:.3f} pages/s  "
                  f"gold-word recall {runs[name][-1][2]:.3f}", flush=True)
    out = {}
    for name, rs in runs.items():
        out[name] = {"pages_per_s": round(sum(r[0] for r in rs) / len(rs), 3),
                     "pages_per_s_each": [round(r[0], 3) for r in rs],
                     "s_per_page": {k: round(sum(r[1][i] for r in rs) / len(rs), 3)
                                    for i, k in enumerate(("det", "cls", "rec"))},
                     "gold_word_recall": round(rs[-1][2], 4)}
    return out


def path_stages(images: list[str]) -> dict:
    """Stage times of the shipped path, one page after another, in this process."""
    import torch

    import graphmie
    from graphmie.methods.re2.data import make_graph
    from graphmie.methods.re2.evaluate import run_page
    from layout.ocr import load_page, ocr_words, rapidocr_engine, words_to_form

    nlp = graphmie.load("form")
    method = nlp.task.method
    seg = method.segmenter
    rapidocr_engine()
    stages = Counter()
    links = 0
    for img in images:
        t = time.perf_counter()
        pg = load_page(img)
        words = ocr_words(pg.image)
        t1 = time.perf_counter()
        blocks = seg(words, pg.width, pg.height)
        od = words_to_form(words, img, pg.width, pg.height, image=img, blocks=blocks)
        t2 = time.perf_counter()
        data = make_graph(od, method.feats, method.config["graph"])
        t3 = time.perf_counter()
        out = run_page(method.net, od, data, method.config)
        t4 = time.perf_counter()
        links += len(out["links"])
        stages.update({"ocr": t1 - t, "segmentation": t2 - t1, "features_and_graph": t3 - t2,
                       "labels_and_links": t4 - t3})
    total = sum(stages.values())
    return {"pages": len(images), "torch_threads": torch.get_num_threads(),
            "s_per_page": {k: round(v / len(images), 4) for k, v in stages.items()},
            "share": {k: round(v / total, 3) for k, v in stages.items()},
            "pages_per_s": round(len(images) / total, 3), "links": links}


def _worker(images: list[str], q, go) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    import rapidocr

    class OneThread(rapidocr.RapidOCR):
        def __init__(self, params=None):
            super().__init__(params={**(params or {}), "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                                     "EngineConfig.openvino.inference_num_threads": 1})

    rapidocr.RapidOCR = OneThread
    path_stages(images[:1])                                # models loaded before the clock starts
    q.put(("ready", None))
    go.wait()                                              # both workers start together
    t = time.perf_counter()
    r = path_stages(images)
    q.put(("done", (time.perf_counter() - t, r)))


def two_workers(images: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    q, go = ctx.Queue(), ctx.Event()
    halves = [images[0::2], images[1::2]]
    procs = [ctx.Process(target=_worker, args=(h, q, go)) for h in halves]
    for p in procs:
        p.start()
    ready, results = 0, []
    while ready < 2:
        ready += q.get()[0] == "ready"
    t0 = time.perf_counter()
    go.set()
    while len(results) < 2:
        kind, val = q.get()
        if kind == "done":
            results.append(val)
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return {"workers": 2, "threads_per_worker": 1, "pages": len(images), "wall_s": round(wall, 2),
            "pages_per_s": round(len(images) / wall, 3),
            "note": "wall time from both workers ready (models loaded, one page read) to the last done"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd" / "training_data")
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3, help="repetitions; each runs every OCR setting once, in turn")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ocr.json")
    args = ap.parse_args()
    anns = sorted((args.data / "annotations").glob("*.json"))[:args.pages]
    if not anns:
        sys.exit(f"FUNSD not found at {args.data}")
    images = [args.data / "images" / f"{a.stem}.png" for a in anns]
    res = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "pages": [p.name for p in images], "reps": args.reps,
           "ocr_settings": ocr_settings(images, anns, args.reps)}
    from layout.ocr import rapidocr_backend

    res["ocr_backend"] = rapidocr_backend()                    # what the path below runs on (GRAPHMIE_OCR_BACKEND)
    res["path_one_process"] = path_stages([str(p) for p in images])
    print("one process:", res["path_one_process"], flush=True)
    res["path_two_workers"] = two_workers([str(p) for p in images])
    print("two workers:", res["path_two_workers"], flush=True)
    res["target_pages_per_s"] = 1.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
