"""Form scores (graphmie.evaluation.form) on hand-made cases, and the evaluate options."""
import math

import pytest

from graphmie.document import Box
from graphmie.evaluation.form import end_to_end, entity_prf, match_boxes
from graphmie.evaluation.prf import PRF


def test_metrics_on_hand_made_cases():
    p = PRF().update({(1, 2), (3, 4), (5, 6)}, {(1, 2), (3, 4), (7, 8), (9, 10)})
    assert (p.tp, p.fp, p.fn) == (2, 1, 2) and math.isclose(p.f1, 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    e = entity_prf({"a": "question", "b": "other", "c": "header"}, {"a": "question", "b": "answer", "c": "other"})
    assert (e.tp, e.fp, e.fn) == (1, 1, 1)          # "other" is background, not scored
    gold = {"g1": Box(0, 0, 10, 10), "g2": Box(20, 0, 30, 10), "g3": Box(0, 20, 10, 30)}
    pred = {"p1": Box(0, 0, 11, 10), "p2": Box(21, 0, 30, 10), "p3": Box(100, 100, 110, 110)}
    assert match_boxes(pred, gold) == {"p1": "g1", "p2": "g2"}
    links, ents = end_to_end(pred, {"p1": "question", "p2": "answer", "p3": "answer"}, {("p1", "p2"), ("p1", "p3")},
                             gold, {"g1": "question", "g2": "answer", "g3": "answer"}, {("g1", "g2"), ("g1", "g3")})
    assert (links.tp, links.fp, links.fn) == (1, 1, 1)
    assert (ents.tp, ents.fp, ents.fn) == (2, 1, 1)


@pytest.mark.parametrize("options,code", [({"split": "test"}, "E022"), ({"orc": True}, "E020"),
                                          ({"limit": "ten"}, "E021")])
def test_evaluate_refuses_bad_options(tmp_path, options, code):
    from graphmie.errors import GraphmieError
    from graphmie.tasks.form import FormTask

    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.json").write_text('{"form": []}')
    split = options.pop("split", "dev")
    with pytest.raises(GraphmieError) as e:
        FormTask.evaluate(tmp_path, split, None, **options)
    assert e.value.code == code
