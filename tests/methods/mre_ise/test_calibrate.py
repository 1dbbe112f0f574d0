"""Calibration of automatic pairs: temperature and threshold fitting on synthetic rows, the type filter,
the order-aware and one-direction rules, the sidecar round trip, and predict (user pairs unchanged)."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from graphmie.data.post_json import post_document
from graphmie.engine.checkpoint import WEIGHTS_DIR, load_checkpoint
from graphmie.errors import GraphmieError
from graphmie.evaluation.mre import mre_scores
from graphmie.methods.mre_ise import MREISE
from graphmie.methods.mre_ise.calibrate import (Calibration, calibrated_decode, fit_calibration,
                                                fit_reversed_threshold, fit_temperature, nll, write_calibration)

LABELS = ["None", "/per/org/member_of", "/per/per/peer", "/org/loc/locate_at"]
MEMBER, PEER, LOCATE = LABELS[1:]


def test_temperature_of_overconfident_logits_is_above_one_and_lowers_nll():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 4, generator=g) * 1.5
    gold = torch.multinomial(torch.softmax(z, -1), 1, generator=g)[:, 0]     # labels drawn from softmax(z)
    over = 3.0 * z                                                             # the same scores, 3x too sharp
    t = fit_temperature(over, gold)
    assert 2.6 < t < 3.4
    assert nll(over, gold, t) < nll(over, gold) - 0.1
    assert fit_temperature(z, gold) == pytest.approx(1.0, abs=0.12)            # calibrated logits stay put


def rows_to_logits(rows):
    """(label, probability of it, rest to None) -> logits whose softmax is that distribution."""
    out = []
    for lab, p in rows:
        q = torch.full((len(LABELS),), 1e-4)
        q[LABELS.index(lab)] = p
        q[0] += 1 - q.sum()
        out.append(q.log())
    return torch.stack(out)


def test_thresholds_raise_micro_f1_and_per_label_only_with_support():
    # member_of: confident rows right, unsure rows (0.55) wrong; peer: rows at 0.4 (under None's 0.6) right
    rows = [(MEMBER, 0.9)] * 30 + [(MEMBER, 0.55)] * 30 + [(PEER, 0.4)] * 25 + [(LOCATE, 0.9)] * 3
    gold = [MEMBER] * 30 + ["None"] * 30 + [PEER] * 25 + [LOCATE] * 3
    logits = rows_to_logits(rows)
    before = mre_scores([lab for lab, _ in calibrated_decode(logits, LABELS, Calibration())[0]], gold)["f1"]
    cal = fit_calibration(logits, gold, LABELS, per_label=True, min_support=20)
    out, stats = calibrated_decode(logits, LABELS, cal)
    after = mre_scores([lab for lab, _ in out], gold)["f1"]
    assert after == pytest.approx(1.0) and before < 0.7
    assert set(cal.thresholds) == {MEMBER, PEER}                   # locate_at: 3 rows < min_support
    assert stats["filtered"] == stats["by_threshold"] == 30 and stats["added"] == 25
    # the shared threshold alone cannot separate member_of's unsure rows from peer's right ones
    shared = fit_calibration(logits, gold, LABELS, per_label=False)
    assert not shared.thresholds
    assert mre_scores([lab for lab, _ in calibrated_decode(logits, LABELS, shared)[0]], gold)["f1"] < after


def test_identity_calibration_is_argmax():
    logits = torch.randn(50, len(LABELS), generator=torch.Generator().manual_seed(1))
    out, stats = calibrated_decode(logits, LABELS, Calibration())
    assert [lab for lab, _ in out] == [LABELS[i] for i in logits.argmax(-1).tolist()]
    assert not any(stats.values())


def test_type_filter_masks_or_drops_incompatible_labels():
    # member_of 0.5 > peer 0.3 > None 0.2
    logits = rows_to_logits([(MEMBER, 0.5)] * 3)
    logits[:, 2] = torch.log(torch.tensor(0.3))
    logits[:, 0] = torch.log(torch.tensor(0.2))
    types = [("per", "per"), (None, "org"), ("per", None)]
    labs = lambda cal: [lab for lab, _ in calibrated_decode(logits, LABELS, cal, types)[0]]   # noqa: E731
    assert labs(Calibration()) == [MEMBER] * 3
    assert labs(Calibration(type_filter="mask")) == [PEER, MEMBER, MEMBER]        # best compatible label
    assert labs(Calibration(type_filter="drop")) == ["None", MEMBER, MEMBER]      # the pair is not proposed
    out, stats = calibrated_decode(logits, LABELS, Calibration(type_filter="drop"), types)
    assert stats["filtered"] == stats["by_type"] == 1
    assert calibrated_decode(logits, LABELS, Calibration(type_filter="mask"), types)[1]["relabelled"] == 1
    # no compatible positive label at all (loc, loc): mask proposes nothing
    out, stats = calibrated_decode(logits[:1], LABELS, Calibration(type_filter="mask"), [("loc", "loc")])
    assert out[0][0] == "None" and stats["by_type"] == 1


def test_one_direction_and_reversed_threshold():
    logits = rows_to_logits([(PEER, 0.7), (PEER, 0.8), (MEMBER, 0.7)])
    pairs = [("a", "b"), ("b", "a"), ("a", "c")]
    out, stats = calibrated_decode(logits, LABELS, Calibration(one_direction=True), None, pairs)
    assert [lab for lab, _ in out] == ["None", PEER, MEMBER] and stats["by_direction"] == 1
    rev = [False, True, True]
    out, _ = calibrated_decode(logits, LABELS, Calibration(reversed_threshold=0.75), None, pairs, rev)
    assert [lab for lab, _ in out] == [PEER, PEER, "None"]
    # fit: reversed rows at 0.7 are wrong, reversed rows at 0.9 right, forward rows at 0.7 right
    logits = rows_to_logits([(MEMBER, 0.7)] * 10 + [(MEMBER, 0.9)] * 10 + [(MEMBER, 0.7)] * 10)
    gold = ["None"] * 10 + [MEMBER] * 20
    t = fit_reversed_threshold(Calibration(), logits, gold, LABELS, [True] * 20 + [False] * 10)
    assert 0.7 < t <= 0.9


def test_calibration_dict_round_trip_and_coded_errors(tmp_path):
    cal = Calibration(1.3, {MEMBER: 0.45}, 0.35, "mask", True, 0.8, "MNRE val")
    d = json.loads(json.dumps(cal.to_dict()))
    assert Calibration.from_dict(d, "x.json", LABELS) == cal
    assert "temperature 1.3" in cal.describe() and "MNRE val" in cal.describe()
    for bad, code in [([1], "E004"), ({"temperature": -1}, "E009"), ({"temperature": "hot"}, "E009"),
                      ({"thresholds": {MEMBER: 1.5}}, "E009"), ({"thresholds": {"/x/y/z": 0.5}}, "E013"),
                      ({"type_filter": "soft"}, "E022"), ({"tresholds": {}}, "E004"),
                      ({"default_threshold": "0.5"}, "E019")]:
        with pytest.raises(GraphmieError, match=code) as e:
            Calibration.from_dict(bad, tmp_path / "m.json", LABELS)
        assert "m.json" in str(e.value)


@pytest.fixture(scope="module")
def method():
    return MREISE.from_checkpoint(load_checkpoint(None, "post_mre_ise", method="mre_ise"))


def copy_shipped(tmp_path) -> Path:
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"post_mre_ise{suffix}", tmp_path / f"post{suffix}")
    return tmp_path / "post.safetensors"


def test_write_calibration_round_trip_through_the_sidecar(tmp_path):
    weights = copy_shipped(tmp_path)
    cal = Calibration(1.46, {MEMBER: 0.4}, 0.35, fit_on="test")
    side = write_calibration(weights, cal)
    ckpt = load_checkpoint(weights, "post_mre_ise", method="mre_ise")           # the SHA-256 still matches
    assert side == tmp_path / "post.json" and ckpt.meta["calibration"] == cal.to_dict()
    assert ckpt.meta["labels"] == json.loads((WEIGHTS_DIR / "post_mre_ise.json").read_text())["meta"]["labels"]
    assert MREISE.from_checkpoint(ckpt).calibration == cal
    # a corrupt calibration is a coded error naming the sidecar
    d = json.loads(side.read_text())
    d["meta"]["calibration"]["temperature"] = 0
    side.write_text(json.dumps(d))
    with pytest.raises(GraphmieError, match=r"E009.*post\.json"):
        MREISE.from_checkpoint(load_checkpoint(weights, "post_mre_ise", method="mre_ise"))
    # weights that no longer match their sidecar are refused
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(GraphmieError, match="E028"):
        write_calibration(weights, cal)


def test_a_calibration_fit_on_tagger_types_sets_the_type_source_but_not_under_typed_markers(tmp_path):
    weights = copy_shipped(tmp_path)
    cal = Calibration(1.3, {}, 0.4, type_filter="drop", fit_on="test")
    write_calibration(weights, cal, "mner")
    m = MREISE.from_checkpoint(load_checkpoint(weights, "post_mre_ise", method="mre_ise"))
    assert m.config["model"]["type_source"] == "mner" and m.calibration == cal
    side = tmp_path / "post.json"
    d = json.loads(side.read_text())
    d["config"]["model"].update(typed_markers=True, type_source="spacy")
    side.write_text(json.dumps(d))
    with pytest.raises(GraphmieError, match="E025"):      # its markers were trained on spaCy's types
        write_calibration(weights, cal, "mner")
    assert json.loads(side.read_text())["config"]["model"]["type_source"] == "spacy"   # left as it was


def post(pairs=None):
    d = {"text": "Lionel Messi signed for Inter Miami in Florida with David Beckham ."}
    if pairs:
        d["pairs"] = pairs
    return post_document(d, "t", Path.cwd())


def relations(doc):
    return [(r.head, r.tail, r.label, r.provenance.score) for r in doc.relations]


def test_predict_calibrates_automatic_pairs_only(method):
    shipped = method.calibration
    assert shipped is not None and shipped.temperature > 1.0        # the shipped sidecar carries one
    given = [["Lionel Messi", "Inter Miami"], ["Inter Miami", "Lionel Messi"], ["David Beckham", "Inter Miami"]]
    method.calibration = None
    plain, plain_auto = method.predict(post(given)).doc, method.predict(post()).doc
    assert plain_auto.meta["pairs_scored"] > 3 and plain_auto.relations
    try:
        method.calibration = Calibration(default_threshold=1.0)    # nothing reaches it
        cal = method.predict(post(given)).doc
        assert relations(cal) == relations(plain) and "calibration" not in cal.meta
        auto = method.predict(post()).doc
        assert not auto.relations and auto.meta["calibration"]["filtered"] == len(plain_auto.relations)
        assert "threshold 1.0" in auto.meta["calibration"]["applied"]
        method.calibration = Calibration()                         # identity: the same relations, scores
        assert relations(method.predict(post()).doc) == relations(plain_auto)
        method.calibration = shipped                               # given pairs: never calibrated
        assert relations(method.predict(post(given)).doc) == relations(plain)
    finally:
        method.calibration = shipped
