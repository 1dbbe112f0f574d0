"""The MNRE metric on hand-made cases."""
import pytest

from graphmie.evaluation.mre import mre_scores


def test_mre_metric_hand_cases():
    gold = ["None", "/per/loc/place_of_birth", "/per/per/peer", "None", "/org/loc/locate_at"]
    pred = ["None", "/per/loc/place_of_birth", "/per/org/member_of", "/per/per/peer", "None"]
    s = mre_scores(pred, gold)
    # tp=1; predicted positives=3; gold positives=3
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(1 / 3) and s["accuracy"] == pytest.approx(2 / 5)
    assert mre_scores(["None"] * 3, ["None"] * 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0,
                                                      "tp": 0, "n_pred": 0, "n_gold": 0, "n": 3}
    perfect = mre_scores(gold, gold)
    assert perfect["f1"] == 1.0 and perfect["accuracy"] == 1.0
    with pytest.raises(ValueError):
        mre_scores(["None"], [])
