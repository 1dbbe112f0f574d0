"""The oracle segmentation of the end-to-end ceiling (issue 12): OCR words grouped as their
alignment to the gold entities says."""
import pytest

from graphmie.data.funsd import LINK_LABEL
from graphmie.document import Box, Document, Entity, Page, Relation, Token
from graphmie.methods.re2.evaluate import EndToEnd, OracleSegmenter, evaluate_ocr, oracle_blocks
from layout.ocr import OcrWord, words_to_form


def W(text, x0, y0, x1, y1, line):
    return OcrWord(text, Box(x0, y0, x1, y1), 0.9, line)


def page():
    """Gold: "Name:" -> "John Smith"; "Address:" -> "12 High / Street" (wrapped). The OCR merges
    each question with its value on one line and reads a speck of noise."""
    gold_words = [W("Name:", 0, 0, 40, 10, 0), W("John", 46, 0, 70, 10, 0), W("Smith", 74, 0, 100, 10, 0),
                  W("Address:", 0, 30, 60, 40, 1), W("12", 70, 30, 85, 40, 1), W("High", 89, 30, 115, 40, 1),
                  W("Street", 70, 43, 110, 53, 2)]
    groups, labels = [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"]
    tokens = [Token(text=w.text, box=w.box, page=0) for w in gold_words]
    ents = []
    for k, (g, lab) in enumerate(zip(groups, labels)):
        box = gold_words[g[0]].box
        for i in g[1:]:
            box = box.union(gold_words[i].box)
        ents.append(Entity(id=f"e{k}", text=" ".join(gold_words[i].text for i in g), label=lab, tokens=list(g),
                           box=box))
    rels = [Relation(id="r0", head="e0", tail="e1", label=LINK_LABEL),
            Relation(id="r1", head="e2", tail="e3", label=LINK_LABEL)]
    gold = Document(id="t", kind="form", source="t.json", pages=[Page(index=0, width=200, height=100)],
                    tokens=tokens, entities=ents, relations=rels, meta={"gold": True})
    # OCR words in a shuffled order, boxes a little off, one word of noise on empty paper
    ocr = [W("Street", 71, 44, 111, 54, 2), W("Smith", 75, 1, 101, 11, 0), W("noise", 150, 80, 180, 90, 3),
           W("Name:", 1, 1, 41, 11, 0), W("High", 90, 31, 116, 41, 1), W("John", 47, 1, 71, 11, 0),
           W("Address:", 1, 31, 61, 41, 1), W("12", 71, 31, 86, 41, 1)]
    return gold, ocr


def test_oracle_blocks_follow_the_alignment():
    gold, ocr = page()
    blocks, ents = oracle_blocks(ocr, gold)
    texts = [" ".join(ocr[i].text for i in b) for b in blocks]
    # top to bottom, left to right; each block's words in reading order; the noise its own block
    assert texts == ["Name:", "John Smith", "Address:", "12 High Street", "noise"]
    assert ents == [0, 1, 2, 3, -1]
    blocks_d, ents_d = oracle_blocks(ocr, gold, unaligned="drop")
    assert [" ".join(ocr[i].text for i in b) for b in blocks_d] == texts[:-1] and ents_d == ents[:-1]
    with pytest.raises(ValueError):
        oracle_blocks(ocr, gold, unaligned="merge")


def test_oracle_segmenter_scores_its_gold_links_end_to_end():
    gold, ocr = page()
    seg = OracleSegmenter(gold, "drop")
    od = words_to_form(ocr, "t.png", 200, 100, blocks=seg(ocr, 200, 100), segmentation=seg.name)
    assert seg.name == "oracle_drop" and seg.entity_of == [0, 1, 2, 3]
    labels = [gold.entities[k].label for k in seg.entity_of]
    acc = EndToEnd()
    acc.add(gold, od, labels, [(0, 1, 1.0), (2, 3, 1.0)])
    f = acc.figures()
    assert f["ocr_block_f1"] == 1.0 and f["ocr_link_f1"] == 1.0 and f["ocr_link_f1_text_matched"] == 1.0


def test_evaluate_ocr_refuses_unknown_or_inconsistent_oracles():
    from graphmie.errors import GraphmieError

    with pytest.raises(GraphmieError) as e:
        evaluate_ocr(None, {}, [], None, segmentation="perfect")
    assert e.value.code == "E022"
    with pytest.raises(ValueError):
        evaluate_ocr(None, {}, [], None, gold_labels=True)
