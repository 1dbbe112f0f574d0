"""``graphmie index`` and ``graphmie query --index``: build / search a FAISS index of image regions."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from ..document import Box
from ..errors import GraphmieError
from .index import RegionIndex, load_detections, resolve_boxes

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def image_regions(image, name: str, detections: dict | None, max_regions: int = 20) -> tuple[list[Box], str]:
    """Candidate regions of one image: its detections when the file has them, else the proposer."""
    if detections is not None and Path(name).stem in detections:
        boxes = resolve_boxes(detections[Path(name).stem], image.width, image.height)
        boxes.append(Box(0, 0, image.width, image.height))
        return boxes, "detection"
    from scene_graphs.proposals import propose_regions

    return propose_regions(image, max_regions=max_regions), "proposal"


def embed_folder(folder: Path, detections: dict | None = None, progress: bool = True):
    """Embed every region of every image under ``folder`` -> (vectors [n,1280], meta, skipped)."""
    from ..encoders.image import get_image_encoder
    from ..io import open_image

    if not folder.is_dir():
        raise GraphmieError("E016", folder, detail="not a folder of images")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    enc = get_image_encoder()
    vecs, meta, skipped = [], [], []
    it = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="indexing images", unit="img", file=sys.stderr)
    for p in it:
        try:
            im = open_image(p)
        except GraphmieError as e:
            skipped.append({"image": str(p), "error": str(e)})
            print(f"skipped: {e}", file=sys.stderr)
            continue
        boxes, source = image_regions(im, p.name, detections)
        vecs.append(enc.encode(im, boxes).numpy())
        meta += [{"image": str(p), "box": [round(v, 2) for v in b.to_list()], "source": source} for b in boxes]
    x = np.concatenate(vecs) if vecs else np.zeros((0, enc.dim), dtype=np.float32)
    return x, meta, skipped


def index_command(args) -> int:
    dets = load_detections(args.detections) if getattr(args, "detections", None) else None
    x, meta, skipped = embed_folder(Path(args.images), dets)
    if not meta:
        raise GraphmieError("E007", args.images, detail=f"no readable images ({len(skipped)} skipped)")
    idx = RegionIndex.build(x, meta, kind=args.kind)
    idx.info.update(model="efficientnet-lite0 (ImageNet)", images=len({m["image"] for m in meta}),
                    skipped=skipped)
    idx.save(args.out)
    print(json.dumps({"index": str(args.out), "regions": len(meta), "images": idx.info["images"],
                      "skipped": len(skipped), "kind": idx.info["kind"]}))
    return 0


def parse_box(text: str) -> Box:
    try:
        vals = [float(v) for v in text.split(",")]
        if len(vals) != 4:
            raise ValueError("need 4 numbers")
        return Box(*vals)
    except ValueError as e:
        raise GraphmieError("E004", None, detail=f"--box {text!r}: expected x0,y0,x1,y1 ({e})") from None


def query_command(args) -> int:
    from ..encoders.image import get_image_encoder
    from ..io import open_image

    if getattr(args, "text", None):
        raise GraphmieError("E030", None, detail="--text: this index holds image-region embeddings only; "
                            "query it with --image [--box]")
    if not args.image:
        raise GraphmieError("E030", None, detail="query --index needs --image")
    idx = RegionIndex.load(args.index)
    im = open_image(args.image)
    box = parse_box(args.box) if args.box else Box(0, 0, im.width, im.height)
    if box.clip(im.width, im.height).area <= 0:
        raise GraphmieError("E009", args.image, detail=f"--box {box.to_list()} lies outside the {im.width}x{im.height} image")
    q = get_image_encoder().encode(im, [box]).numpy()
    hits = idx.search(q, args.k)[0]
    rows = [{"rank": r + 1, "score": round(s, 4), "image": m["image"], "box": m["box"]} for r, (s, m) in enumerate(hits)]
    fmt = getattr(args, "out_format", "table")
    if fmt == "json":
        print(json.dumps(rows))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["rank", "score", "image", "x0", "y0", "x1", "y1"])
        for r in rows:
            w.writerow([r["rank"], r["score"], r["image"], *r["box"]])
        print(buf.getvalue(), end="")
    else:
        print(f"{'rank':>4}  {'score':>6}  box                          image")
        for r in rows:
            b = ",".join(f"{v:.0f}" for v in r["box"])
            print(f"{r['rank']:>4}  {r['score']:>6.3f}  {b:<27}  {r['image']}")
    return 0
