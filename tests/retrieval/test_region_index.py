"""FAISS region index: build / save / load / query round trips on vectors and on images the test makes."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from graphmie.errors import GraphmieError
from graphmie.retrieval.index import RegionIndex, link_regions, load_detections, recall_at_k


def _vectors(n=3000, d=32, seed=0):
    c = np.random.default_rng(0).standard_normal((30, d))       # the same clusters for data and queries
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, 30, n)] + 0.3 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_index_kinds_recall_and_round_trip(tmp_path, kind):
    x = _vectors()
    meta = [{"image": f"img{i // 10}.jpg", "box": [0, 0, i, i]} for i in range(len(x))]
    idx = RegionIndex.build(x, meta, kind=kind)
    q = _vectors(200, seed=1)
    exact = RegionIndex.build(x, meta, kind="flat")
    ids = lambda r: np.array([[m["box"][2] for _, m in row] for row in r.search(q, 10)])  # noqa: E731
    assert recall_at_k(ids(idx), ids(exact)) >= 0.95
    idx.save(tmp_path / "ix")
    back = RegionIndex.load(tmp_path / "ix")
    assert back.info == idx.info and back.search(q[:3], 5) == idx.search(q[:3], 5)
    assert not list(tmp_path.glob("ix/*.tmp"))


def test_load_errors(tmp_path):
    with pytest.raises(GraphmieError, match="E016"):
        RegionIndex.load(tmp_path)
    with pytest.raises(GraphmieError, match="E012"):
        RegionIndex.build(_vectors(10), [], kind="flat")          # 10 vectors, no metadata rows
    with pytest.raises(GraphmieError, match="E022"):
        RegionIndex.build(_vectors(10), [{}] * 10, kind="lsh")


def test_link_regions_across_images():
    x = _vectors(40, seed=3)
    x[5] = x[25]                       # the same object seen in two images
    meta = [{"image": f"p{i // 10}.jpg", "box": [i, 0, i + 1, 1]} for i in range(40)]
    idx = RegionIndex.build(x, meta, kind="flat")
    clusters = link_regions(idx, x, meta, k=5, min_score=0.999)
    assert [5, 25] in [sorted(c) for c in clusters]


def test_detections_formats(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"a.jpg": [[0, 0, 10, 10]], "b_crop_0.jpg": [0.5, 0.5, 0.2, 0.4, 0.08]}))
    d = load_detections(p)
    from graphmie.retrieval.index import resolve_boxes

    assert resolve_boxes(d["a"], 100, 100)[0].to_list() == [0, 0, 10, 10]
    assert resolve_boxes(d["b"], 100, 50)[0].to_list() == pytest.approx([40, 15, 60, 35])
    p.write_text(json.dumps({"a.jpg": [[0, 0, "x", 1]]}))
    with pytest.raises(GraphmieError, match="E004"):
        load_detections(p)


def test_index_and_query_commands_on_made_images(tmp_path, capsys):
    from graphmie.retrieval.cli import index_command, query_command

    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        a = np.full((120, 160, 3), 200, np.uint8)
        a[20:80, 30:90] = rng.integers(0, 255, (60, 60, 3))          # a textured object
        a[90:110, 100:150] = (0, 0, 255) if i % 2 else (255, 0, 0)
        Image.fromarray(a).save(imgs / ("sub" if i == 2 else "") / f"im{i}.png")
    (imgs / "broken.jpg").write_bytes(b"not an image")
    det = tmp_path / "det.json"
    det.write_text(json.dumps({f"im{i}.png": [[30, 20, 90, 80], [100, 90, 150, 110]] for i in range(3)}))
    out = tmp_path / "index"
    assert index_command(argparse.Namespace(images=imgs, out=out, detections=det, kind="auto")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"index": str(out), "regions": 9, "images": 3, "skipped": 1, "kind": "flat"}
    info = json.loads((out / "info.json").read_text())
    assert info["skipped"][0]["image"].endswith("broken.jpg") and "E005" in info["skipped"][0]["error"]
    meta = json.loads((out / "meta.json").read_text())
    assert {m["source"] for m in meta} == {"detection"}
    q = argparse.Namespace(index=out, image=imgs / "im1.png", box="30,20,90,80", k=3, out_format="json", text=None)
    assert query_command(q) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["image"].endswith("im1.png") and rows[0]["box"] == [30, 20, 90, 80]
    assert rows[0]["score"] == pytest.approx(1.0, abs=1e-3) and len(rows) == 3
    q.out_format, q.box = "csv", None
    query_command(q)
    assert capsys.readouterr().out.startswith("rank,score,image,x0,y0,x1,y1")
    q.box = "500,500,600,600"
    with pytest.raises(GraphmieError, match="outside"):
        query_command(q)
    q.box, q.text = None, "a red car"
    with pytest.raises(GraphmieError, match="--text"):
        query_command(q)
