"""A short RE² training run on the shared FUNSD data must learn real links and labels."""
from conftest import shared
from graphmie.data.funsd import dev_split, list_annotations, read_funsd


def test_short_training_reaches_a_floor():
    from graphmie.methods.re2 import RE2
    from graphmie.methods.re2.data import make_sample
    from graphmie.methods.re2.evaluate import score_samples
    from graphmie.methods.re2.features import Featurizer
    from graphmie.methods.re2.model import Ensemble
    from graphmie.methods.re2.train import train_member

    folder = shared("funsd", "training_data")
    files = {f.stem: f for f in list_annotations(folder)}
    train_ids, dev_ids = dev_split(list(files))
    docs = [read_funsd(files[i]) for i in train_ids[:24] + dev_ids[:8]]
    cfg = RE2.resolve_config({"training": {"epochs": 10, "batch_size": 2, "lr": 0.003, "weight_decay": 1e-4,
                                           "seed": 0, "ensemble": 1, "eval_every": 100}})
    feats = Featurizer(cfg["features"]["text"])
    samples = [make_sample(d, feats, cfg["graph"]) for d in docs]
    net, info = train_member(cfg, samples[:24], None, log=lambda s: None)
    m = score_samples(Ensemble([net]), cfg, samples[24:])
    print({k: round(v, 3) for k, v in m.items() if isinstance(v, float)})
    assert info["history"][-1]["loss"] < info["history"][0]["loss"]
    assert m["candidate_recall"] > 0.95
    assert m["f1"] >= 0.70, m               # gold labels; an untrained scorer is far below
    assert m["entity_f1"] >= 0.60, m
    assert m["f1_predicted_labels"] >= 0.30, m


def test_train_writes_a_checkpoint_that_loads(tmp_path):
    """``graphmie train`` end to end on a few forms: run folder with weights, sidecar and run.json."""
    import json
    import shutil

    from graphmie.tasks.form import FormTask

    folder = shared("funsd", "training_data")
    data = tmp_path / "funsd"
    (data / "annotations").mkdir(parents=True)
    (data / "images").mkdir()
    for f in list_annotations(folder)[:10]:
        shutil.copy(f, data / "annotations" / f.name)
        shutil.copy(folder / "images" / f"{f.stem}.png", data / "images" / f"{f.stem}.png")
    cfg = {"task": "form", "method": "re2", "data": {"path": str(data)},
           "training": {"epochs": 1, "ensemble": 2, "eval_every": 1}}
    metrics = FormTask.train(cfg, tmp_path / "run")
    assert metrics["forms"] == 2
    side = json.loads((tmp_path / "run" / "model.json").read_text())
    assert side["method"] == "re2" and side["meta"] == {"members": 2, "labels": ["question", "answer", "header",
                                                                                 "other"]}
    assert len(side["record"]["history"]) == 2 and side["record"]["data"]["dev_forms"] == 2
    assert (tmp_path / "run" / "run.json").exists()
    res = FormTask.evaluate(data, "dev", tmp_path / "run")
    assert res["forms"] == 2 and res["split"] == "dev" and 0.0 <= res["f1"] <= 1.0


def test_member_counts_and_label_weight_are_checked_before_training():
    import pytest

    from graphmie.errors import GraphmieError
    from graphmie.methods.re2 import RE2
    from graphmie.methods.re2.train import check_counts

    check_counts(RE2.resolve_config({}))
    for section, key, value in (("segment", "ensemble", 0), ("training", "ensemble", 0),
                                ("segment", "label_weight", -0.5)):
        cfg = RE2.resolve_config({section: {key: value}})
        with pytest.raises(GraphmieError) as e:
            check_counts(cfg)
        assert e.value.code == "E021" and key in str(e.value) and f"[{section}]" in str(e.value)
