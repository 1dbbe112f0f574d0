"""Where the OCR word segmenter goes wrong (issue 12): on the dev forms, each gold entity whose aligned OCR
words land in more than one predicted block is a *split*, each predicted block holding words of more than
one gold entity a *merge*; each is counted by where it happens — inside one OCR line, across OCR lines on
one row, or across rows — with a few examples of each.

    python3 -m bench.bench_form_segment_errors [--segmenter form_segment] [--out bench/results/form_segment_errors.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from graphmie.data.funsd import dev_split  # noqa: E402
from graphmie.methods.re2.data import read_folder  # noqa: E402
from graphmie.methods.re2.segment import align_words, load_segmenter  # noqa: E402


def where(words, idx: list[int]) -> str:
    """``same_ocr_line``, ``within_row`` (one row, several OCR lines) or ``across_rows``."""
    from layout.regions import group_lines

    if len({words[i].line for i in idx}) == 1:
        return "same_ocr_line"
    return "within_row" if len(group_lines([words[i].box for i in idx])) == 1 else "across_rows"


def main() -> int:
    from layout.ocr import cached_ocr_words

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd" / "training_data")
    ap.add_argument("--segmenter", default=None, help="a shipped name, .safetensors file or run folder")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "form_segment_errors.json")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"FUNSD not found at {args.data}")
    torch.set_num_threads(1)
    docs = read_folder(args.data, progress=False)
    dev = set(dev_split([d.id for d in docs])[1])
    seg = load_segmenter(args.segmenter)
    counts, examples, entities = Counter(), {}, 0
    for d in (d for d in docs if d.id in dev):
        words = cached_ocr_words(d.pages[0].image)[0]
        pg = d.pages[0]
        blocks = seg(words, pg.width, pg.height)
        owner = align_words(words, d)
        block_of = {i: b for b, blk in enumerate(blocks) for i in blk}
        entities += len(d.entities)
        by_entity: dict[int, list[int]] = {}
        for i, o in enumerate(owner):
            if o >= 0:
                by_entity.setdefault(o, []).append(i)
        for o, idx in by_entity.items():
            parts = sorted({block_of[i] for i in idx})
            if len(parts) > 1:
                kind = "split_" + where(words, idx)
                counts[kind] += 1
                examples.setdefault(kind, []).append(
                    [d.id, d.entities[o].label, " | ".join(" ".join(words[i].text for i in blocks[b] if owner[i] == o)
                                                          for b in parts)])
        for blk in blocks:
            ents = sorted({owner[i] for i in blk if owner[i] >= 0})
            if len(ents) > 1:
                kind = "merge_" + where(words, blk)
                counts[kind] += 1
                examples.setdefault(kind, []).append(
                    [d.id, "/".join(d.entities[o].label for o in ents), " ".join(words[i].text for i in blk)])
    rng = random.Random(0)
    result = {"segmenter": seg.name, "dev_forms": len(dev), "gold_entities": entities, "counts": dict(counts),
              "examples": {k: rng.sample(v, min(args.examples, len(v))) for k, v in sorted(examples.items())},
              "note": "OCR words: cached RapidOCR (layout.ocr.RAPIDOCR_PARAMS); words align to gold entities by "
                      "align_words; dev forms of graphmie.data.funsd.dev_split"}
    for k in sorted(counts):
        print(f"{k:22s} {counts[k]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
