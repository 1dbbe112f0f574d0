"""The H-Index GMNER / MNER / EEG metric (graphmie.evaluation.gmner): exact IoU matching and counts."""
import pytest

from graphmie.document import Box
from graphmie.errors import GraphmieError
from graphmie.evaluation.gmner import binary_scores, gmner_scores, region_matches


# --- metric ------------------------------------------------------------------------------
def test_region_match_iou_threshold_exact():
    g = Box(0, 0, 10, 10)
    assert region_matches(Box(0, 0, 10, 5), [g])            # IoU exactly 0.5 counts
    assert not region_matches(Box(0, 0, 10, 4.9), [g])       # 0.49
    assert region_matches(None, [])                          # ungroundable matches None
    assert not region_matches(None, [g])
    assert not region_matches(Box(0, 0, 10, 10), [])        # a box for an ungroundable entity
    assert region_matches(Box(50, 50, 60, 60), [g, Box(50, 50, 60, 61)])   # any gold box


def test_gmner_scores_counts():
    gold = [[(0, 1, "PER", [Box(0, 0, 10, 10)]), (3, 5, "LOC", [])],
            [(2, 3, "ORG", [Box(5, 5, 20, 20)])]]
    pred = [[(0, 1, "PER", Box(1, 1, 10, 10)),       # all right
             (3, 5, "ORG", None)],                    # wrong type, right region
            [(2, 3, "ORG", Box(100, 100, 120, 120)),  # right type, wrong box
             (7, 8, "PER", None)]]                    # spurious
    s = gmner_scores(pred, gold)
    assert (s["mner"]["tp"], s["mner"]["fp"], s["mner"]["fn"]) == (2, 2, 1)
    assert s["eeg"]["tp"] == 2 and s["gmner"]["tp"] == 1
    assert s["gmner"]["precision"] == pytest.approx(1 / 4) and s["gmner"]["recall"] == pytest.approx(1 / 3)
    # groundability judging: bool regions
    predg = [[(0, 1, "PER", True), (3, 5, "LOC", False)], [(2, 3, "ORG", False)]]
    up = gmner_scores(predg, gold, region_mode="groundability")
    low = gmner_scores(predg, gold, region_mode="groundability_lower")
    assert up["gmner"]["tp"] == 2 and low["gmner"]["tp"] == 1


def test_binary_scores():
    s = binary_scores([True, True, False, False], [True, False, True, False])
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["accuracy"] == 0.5


def test_unknown_region_mode_is_a_coded_error():
    with pytest.raises(GraphmieError, match="E022"):
        gmner_scores([[(0, 1, "PER", None)]], [[(0, 1, "PER", [])]], region_mode="iou")
