"""Training SeqGMPER: a short run with a real floor, reproducibility, and ``graphmie train`` end to end
(checkpoint written, reloaded and scored)."""
from __future__ import annotations

import json

import torch

from conftest import REPO, shared
from graphmie.data.wikihow_fg import read_folder
from graphmie.evaluation.procedure import score
from graphmie.methods.seqgmper.samples import Featurizer, predict_example, prepare
from graphmie.methods.seqgmper.train import train_model

FIXTURE = REPO / "tests" / "fixtures" / "wikihow_fg"


def _examples():
    docs = read_folder(shared("wikihow_fg", "data"))
    feat = Featurizer()
    exs = [prepare(d, feat) for d in docs]
    feat.save()
    return exs


def test_short_training_floor():
    torch.set_num_threads(1)
    exs = _examples()
    train, test = exs[::3], exs[1::6][:10]                      # 32 / 10 articles, disjoint
    model, losses = train_model(train, {"hidden": 64}, {"epochs": 12, "lr": 3e-3, "seed": 0})
    assert losses[-1] < losses[0] * 0.6
    r = score([predict_example(model, e) for e in test], [e.doc for e in test])
    assert r["entity_f1"] > 0.45, r
    assert r["flow_f1_unlabelled"] > 0.15 and r["flow_f1"] > 0.1, r


def test_training_is_reproducible():
    exs = _examples()[:3]
    a, la = train_model(exs, {"hidden": 32}, {"epochs": 2, "seed": 5})
    b, lb = train_model(exs, {"hidden": 32}, {"epochs": 2, "seed": 5})
    assert la == lb and all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_train_config_end_to_end(tmp_path):
    from graphmie.config import load_config
    from graphmie.tasks.procedure import ProcedureTask

    data = shared("wikihow_fg", "data")
    cfg = load_config(REPO / "configs" / "procedure_seqgmper.toml",
                      {"data.path": str(data), "data.dev_fraction": 0.1, "training.epochs": 1, "model.hidden": 32})
    metrics = ProcedureTask.train(cfg, tmp_path)
    assert metrics["train_documents"] == 86 and 0.0 <= metrics["dev_flow_f1"] <= 1.0
    side = json.loads((tmp_path / "model.json").read_text())
    assert side["method"] == "seqgmper" and side["config"]["model"]["hidden"] == 32
    assert side["config"]["training"]["epochs"] == 1 and len(side["record"]["dev_articles"]) == 10
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["metrics"] == metrics and len(run["losses"]) == 1
    m = ProcedureTask.evaluate(FIXTURE, None, tmp_path)
    assert m["documents"] == 1 and m["gold_flows"] == 5
