"""The procedure metric (graphmie.evaluation.procedure) on hand-made documents."""
from __future__ import annotations

import pytest

from graphmie.document import Document, Entity, Relation, Step, Token
from graphmie.evaluation.procedure import entity_facts, flow_facts, score


def _doc(entities, relations):
    d = Document(id="d", kind="procedure", source="m")
    for s in range(2):
        st = Step(index=s, text="")
        for w in range(4):
            st.tokens.append(len(d.tokens))
            d.tokens.append(Token(text="w", step=s))
        d.steps.append(st)
    d.entities = [Entity(id=i, text="w", label=lab, tokens=[s * 4 + k for k in range(a, b)], step=s)
                  for i, s, a, b, lab in entities]
    d.relations = [Relation(id=f"r{k}", head=h, tail=t, label=lab) for k, (h, t, lab) in enumerate(relations)]
    return d


def test_metric_hand_made():
    gold = _doc([("a", 0, 0, 1, "Ae"), ("b", 0, 1, 3, "I"), ("c", 1, 0, 1, "Ae")],
                [("b", "a", "Targ"), ("a", "c", "Dest")])
    assert score([gold], [gold])["entity_f1"] == 1.0 and score([gold], [gold])["flow_f1"] == 1.0
    # wrong type on b, span off by one on c; one flow wrong label, other endpoint span wrong
    pred = _doc([("a", 0, 0, 1, "Ae"), ("b", 0, 1, 3, "T"), ("c", 1, 0, 2, "Ae")],
                [("b", "a", "Dest"), ("a", "c", "Dest")])
    r = score([pred], [gold])
    assert r["entity_f1"] == pytest.approx(1 / 3)
    assert r["flow_f1"] == 0.0                                   # label wrong; tail span wrong
    assert r["flow_f1_unlabelled"] == pytest.approx(0.5)         # (b->a) matches spans, types ignored
    assert entity_facts(gold) == {(0, 0, 1, "Ae"), (0, 1, 3, "I"), (1, 0, 1, "Ae")}
    assert flow_facts(gold, labelled=False) == {((0, 1, 3), (0, 0, 1)), ((0, 0, 1), (1, 0, 1))}
    # micro average over documents: 1 of 2 + 2 of 2 flows
    r2 = score([pred, gold], [gold, gold])
    assert r2["flow_f1"] == pytest.approx(0.5) and r2["gold_flows"] == 4
