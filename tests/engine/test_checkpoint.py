"""The one checkpoint format: weights + sidecar, atomic, resolved by name / file / run folder."""
import json

import pytest
import torch

from graphmie.engine.checkpoint import (FORMAT_VERSION, WEIGHTS_DIR, load_checkpoint, load_state_into,
                                        read_sidecar, resolve_checkpoint, save_checkpoint, sidecar_path)
from graphmie.errors import GraphmieError


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_save_and_load_round_trip_in_fp16(tmp_path):
    net = _net()
    path = save_checkpoint(tmp_path / "run", "toy", net.state_dict(), {"model": {"hidden": 4}},
                           meta={"labels": ["a", "b"]}, record={"date": "2026-12-01", "f1": 0.5})
    assert path == tmp_path / "run" / "model.safetensors" and sidecar_path(path).exists()
    side = json.loads(sidecar_path(path).read_text())
    assert side["format_version"] == FORMAT_VERSION and side["method"] == "toy" and len(side["weights_sha256"]) == 64
    ck = load_checkpoint(tmp_path / "run", "unused", method="toy")
    assert ck.meta == {"labels": ["a", "b"]} and ck.config == {"model": {"hidden": 4}}
    assert ck.version == "2026-12-01" and ck.name == "run"
    assert all(v.dtype == torch.float16 for v in ck.state.values())
    other = _net()
    for p in other.parameters():
        torch.nn.init.zeros_(p)
    load_state_into(other, ck)
    x = torch.randn(5, 3)
    assert torch.allclose(other(x), net(x), atol=1e-2)
    assert not list(tmp_path.rglob("*.tmp"))


def test_refusals(tmp_path):
    path = save_checkpoint(tmp_path / "a.safetensors", "toy", _net().state_dict(), {})
    with pytest.raises(GraphmieError, match=r"\[E027\].*'toy'"):
        load_checkpoint(path, "x", method="re2")
    side = json.loads(sidecar_path(path).read_text())
    # weights replaced behind the sidecar's back
    save_checkpoint(tmp_path / "b.safetensors", "toy", torch.nn.Linear(3, 4).state_dict(), {})
    path.write_bytes((tmp_path / "b.safetensors").read_bytes())
    with pytest.raises(GraphmieError, match=r"\[E028\]"):
        load_checkpoint(path, "x")
    sidecar_path(path).write_text(json.dumps({**side, "format_version": 99}))
    with pytest.raises(GraphmieError, match=r"\[E027\].*version 99"):
        read_sidecar(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(GraphmieError, match=r"\[E026\]"):
        read_sidecar(path)
    sidecar_path(path).unlink()
    with pytest.raises(GraphmieError, match=r"\[E026\].*missing"):
        load_checkpoint(path, "x")
    with pytest.raises(GraphmieError, match=r"\[E001\]"):
        resolve_checkpoint(tmp_path / "nope.safetensors", "x")
    # a model the weights do not fit
    ck = load_checkpoint(tmp_path / "b.safetensors", "x")
    with pytest.raises(GraphmieError, match=r"\[E025\]"):
        load_state_into(_net(), ck)


def test_resolve_names_files_and_run_folders(tmp_path):
    assert resolve_checkpoint(None, "form_re2") == WEIGHTS_DIR / "form_re2.safetensors"
    assert resolve_checkpoint("form_re2_ablation", "form_re2") == WEIGHTS_DIR / "form_re2_ablation.safetensors"
    p = save_checkpoint(tmp_path / "one" / "tagger.safetensors", "toy", _net().state_dict(), {})
    assert resolve_checkpoint(tmp_path / "one", "x") == p              # a folder with one checkpoint
    with pytest.raises(GraphmieError, match=r"\[E001\]"):
        resolve_checkpoint(tmp_path, "x")


def test_a_spec_too_long_to_look_up_is_not_found():
    from graphmie.engine.checkpoint import resolve_checkpoint

    with pytest.raises(GraphmieError, match=r"\[E001\]"):
        resolve_checkpoint("x" * 5000, "unused")


def test_every_shipped_checkpoint_loads_through_its_method():
    from graphmie.registry import methods, parts

    shipped = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    assert len(shipped) >= 7
    for w in shipped:
        ck = load_checkpoint(w, "unused")
        if ck.method in parts:                  # a method's part with weights of its own (the OCR segmenter)
            assert parts.get(ck.method)(w) is not None
        else:
            m = methods.get(ck.method).from_checkpoint(ck)
            assert m.ckpt is ck and m.version
        assert w.stat().st_size <= 10_000_000, f"{w.name} is over the 10 MB weight budget"
