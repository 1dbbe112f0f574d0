"""The oracle segmentation of the end-to-end ceiling (issue 12): OCR words grouped as their
alignment to the gold entities says."""
import pytest

from graphmie.methods.re2.evaluate import EndToEnd, OracleSegmenter, evaluate_ocr, oracle_blocks
from layout.ocr import words_to_form
from re2_pages import W, gold_of, two_field_page


def page():
    """Gold: "Name:" -> "John Smith"; "Address:" -> "12 High / Street" (wrapped). The OCR merges
    each question with its value on one line and reads a speck of noise."""
    gold = gold_of(two_field_page(), [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"],
                   links=[(0, 1), (2, 3)])
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
