"""Configs: TOML + overrides, schema validation (unknown keys with the closest known, wrong types)."""
import json

import pytest

from graphmie.config import Mapping, configurable, load_config, parse_override, resolve
from graphmie.errors import GraphmieError

SCHEMA = {"model": {"hidden": 8, "dropout": 0.1, "name": "x", "flag": True, "alpha": None},
          "training": {"epochs": 3, "layers": [1, 2]}, "types": {"coarse": Mapping({"PER": "PER"})}}


def test_config_load_override_and_configurable(tmp_path):
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('task = "form"\n[model]\nhidden = 8\n')
    cfg = load_config(cfg_path, dict([parse_override("model.hidden=16"), parse_override("training.lr=0.01")]))
    assert cfg["model"]["hidden"] == 16 and cfg["training"]["lr"] == 0.01

    @configurable
    class M:
        def __init__(self, hidden: int = 4, heads: int = 1):
            self.hidden, self.heads = hidden, heads

    m = M.from_config(cfg["model"])
    assert (m.hidden, m.heads) == (16, 1)
    with pytest.raises(GraphmieError, match=r"\[E020\].*'hiden'.*did you mean 'hidden'"):
        M.from_config({"hiden": 3})
    with pytest.raises(GraphmieError, match="E029"):
        parse_override("no-equals-sign")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(GraphmieError, match=r"\[E011\].*bad.toml"):
        load_config(bad)


def test_resolve_fills_defaults_and_converts_ints_to_floats():
    out = resolve(SCHEMA, {"model": {"dropout": 0, "alpha": "anything"}, "types": {"coarse": {"X": "Y"}}})
    assert out == {"model": {"hidden": 8, "dropout": 0.0, "name": "x", "flag": True, "alpha": "anything"},
                   "training": {"epochs": 3, "layers": [1, 2]}, "types": {"coarse": {"X": "Y"}}}
    assert isinstance(out["model"]["dropout"], float)
    top = resolve(SCHEMA, {"task": "form"}, top_level={"task": "", "meta": None})
    assert top["task"] == "form" and "meta" not in top


@pytest.mark.parametrize("cfg,code,words", [
    ({"training": {"epohcs": 1}}, "E020", ["'epohcs'", "[training]", "did you mean 'epochs'"]),
    ({"trainng": {}}, "E020", ["'trainng'", "the top level", "'training'"]),
    ({"training": {"epochs": "many"}}, "E021", ["'epochs'", "an integer", "'many'"]),
    ({"training": {"epochs": True}}, "E021", ["an integer"]),
    ({"model": {"flag": 1}}, "E021", ["true or false"]),
    ({"model": {"hidden": 1.5}}, "E021", ["an integer"]),
    ({"model": 3}, "E021", ["a table"]),
    ({"types": {"coarse": [1]}}, "E021", ["a table"]),
])
def test_resolve_refuses_what_does_not_fit(cfg, code, words):
    with pytest.raises(GraphmieError) as e:
        resolve(SCHEMA, cfg, "c.toml")
    assert e.value.code == code and "c.toml" in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_run_record(tmp_path):
    from graphmie.engine.trainer import write_run_record

    rec = json.loads(write_run_record(tmp_path / "run", {"a": 1}, {"f1": 0.5}).read_text())
    assert rec["metrics"]["f1"] == 0.5 and rec["versions"]["torch"].startswith("2.")
