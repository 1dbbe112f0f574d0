"""The end-to-end form metric on hand-made pages: IoU matching and the text-matched variant."""
from graphmie.data.funsd import LINK_LABEL
from graphmie.document import Box, Document, Entity, Page, Relation
from graphmie.evaluation.form import end_to_end, match_boxes, match_texts
from graphmie.methods.re2.evaluate import EndToEnd


def form(blocks, links=()):
    ents = [Entity(id=f"e{k}", text=t, label=lab, box=b) for k, (t, lab, b) in enumerate(blocks)]
    rels = [Relation(id=f"r{k}", head=f"e{q}", tail=f"e{a}", label=LINK_LABEL) for k, (q, a) in enumerate(links)]
    return Document(id="f", kind="form", source="f.png", pages=[Page(index=0, width=300, height=100)],
                    entities=ents, relations=rels)


GOLD = form([("Name:", "question", Box(0, 0, 40, 10)), ("John Smith", "answer", Box(50, 0, 120, 10)),
             ("Address:", "question", Box(0, 30, 60, 40)), ("12 High Street London", "answer", Box(70, 30, 200, 53))],
            links=[(0, 1), (2, 3)])


def test_perfect_prediction_scores_one():
    acc = EndToEnd()
    acc.add(GOLD, GOLD, [e.label for e in GOLD.entities], [(0, 1, 0.9), (2, 3, 0.9)])
    f = acc.figures()
    assert f["ocr_link_f1"] == f["ocr_block_f1"] == f["ocr_entity_f1"] == 1.0
    assert f["ocr_link_f1_text_matched"] == 1.0


def test_a_merged_block_loses_both_ends_and_a_split_block_fails_iou():
    # "Name: John Smith" as one block; the address answer split in its two lines
    pred = form([("Name: John Smith", "answer", Box(0, 0, 120, 10)), ("Address:", "question", Box(0, 30, 60, 40)),
                 ("12 High Street", "answer", Box(70, 30, 200, 40)), ("London", "answer", Box(70, 43, 110, 53))])
    acc = EndToEnd()
    acc.add(GOLD, pred, [e.label for e in pred.entities], [(1, 2, 0.9), (1, 3, 0.8)])
    f = acc.figures()
    m = match_boxes({e.id: e.box for e in pred.entities}, {e.id: e.box for e in GOLD.entities})
    # IoU: the merged block matches "John Smith" (0.58); "12 High Street" covers half the answer box
    assert m == {"e0": "e1", "e1": "e2"}
    assert round(f["ocr_block_f1"], 4) == round(2 * 2 / (4 + 4), 4)
    assert f["ocr_link_f1"] == 0.0                      # neither predicted link has both ends matched right
    # by text, "12 High Street" against "12 High Street London" has ratio 2*14/35 = 0.8: just enough
    mt = match_texts({e.id: (e.box, e.text) for e in pred.entities}, {e.id: (e.box, e.text) for e in GOLD.entities})
    assert mt["e1"] == "e2" and mt.get("e2") == "e3" and "e0" not in mt and "e3" not in mt


def test_text_matching_is_one_to_one_and_needs_overlap():
    gold = {"g": (Box(0, 0, 50, 10), "Date:")}
    pred = {"a": (Box(0, 0, 50, 10), "Date:"), "b": (Box(1, 0, 49, 10), "Date"), "far": (Box(200, 0, 250, 10), "Date:")}
    assert match_texts(pred, gold) == {"a": "g"}
    assert match_texts({"far": pred["far"]}, gold) == {}


def test_end_to_end_counts_unmatched_predictions_as_false_positives():
    pred = form([("Name:", "question", Box(0, 0, 40, 10)), ("noise", "answer", Box(250, 80, 290, 90))])
    links, ents = end_to_end({e.id: e.box for e in pred.entities}, {"e0": "question", "e1": "answer"}, {("e0", "e1")},
                             {e.id: e.box for e in GOLD.entities}, {e.id: e.label for e in GOLD.entities},
                             {("e0", "e1"), ("e2", "e3")})
    assert links.tp == 0 and links.fp == 1 and links.fn == 2
    assert ents.tp == 1 and ents.fp == 1 and ents.fn == 3
