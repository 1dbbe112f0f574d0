"""Safe I/O: checked image reads, safe weight loading, atomic writes."""
import json

import pytest
import torch

from graphmie.errors import GraphmieError
from graphmie.io import atomic_write_text, load_weights, open_image


def test_open_image_rejects_non_images_and_oversized(tmp_path):
    from PIL import Image

    txt = tmp_path / "notimage.png"
    txt.write_text("hello")
    with pytest.raises(GraphmieError, match=r"\[E005\].*notimage.png"):
        open_image(txt)
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    with pytest.raises(GraphmieError, match=r"\[E006\]"):
        open_image(big, max_pixels=1000)
    assert open_image(big).size == (300, 300)


def test_load_weights_refuses_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(GraphmieError, match=r"\[E010\]"):
        load_weights(bad)
    ok = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2)}, ok)
    assert torch.equal(load_weights(ok)["w"], torch.ones(2))


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "complete")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "half")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os

    p = tmp_path / "f.txt"
    atomic_write_text(p, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)


def _add_rows(path, names):
    from graphmie.io import update_json
    for name in names:
        update_json(path, lambda t, n=name: {**(t or {}), n: len(t or {})})


def test_update_json_keeps_the_rows_of_concurrent_writers(tmp_path):
    import multiprocessing as mp
    from graphmie.io import update_json

    path = tmp_path / "results.json"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_add_rows, args=(path, [f"p{i}_{k}" for k in range(20)])) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = json.loads(path.read_text())
    assert sorted(rows) == sorted(f"p{i}_{k}" for i in range(3) for k in range(20))
    assert sorted(rows.values()) == list(range(60))        # each writer saw every earlier row
    assert update_json(path, lambda t: None) is None and path.read_text() == "null"
