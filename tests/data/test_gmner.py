"""GMNER reader: hand-made fixture with every kind of bad input, and the shared Twitter-GMNER data."""
import pytest

from conftest import REPO, shared
from graphmie.data.gmner import bio_to_spans, count_unknown_xml, read_split, tweet_to_document
from graphmie.errors import GraphmieError

MINI = REPO / "tests" / "fixtures" / "gmner_mini"


def test_bio_to_spans():
    assert bio_to_spans(["B-PER", "I-PER", "O", "B-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert bio_to_spans(["I-ORG", "O"]) == [(0, 1, "ORG")]                 # stray I- starts an entity
    assert bio_to_spans(["B-PER", "I-LOC"]) == [(0, 1, "PER"), (1, 2, "LOC")]


def test_reader_fixture_counts_every_bad_input():
    s = read_split(MINI, "train")
    st = s.stats
    assert st["tweets"] == 4 and st["entities"] == 5
    assert st["tweets_without_image"] == 1      # kept, text-only
    assert st["tags_repaired"] == 1
    assert st["boxes_clipped"] == 1 and st["boxes_dropped"] == 1
    assert st["objects_unmatched"] == 1
    assert st["captions_empty"] == 1 and st["captions_missing"] == 1
    ents = {e.text: e for t in s.tweets for e in t.entities}
    assert ents["Obama"].groundable and ents["Obama"].boxes[0].to_list() == [10, 20, 110, 220]
    assert ents["New York"].boxes[0].x1 == 400                 # clipped to the 400-px image
    assert not ents["NASA"].groundable                         # its only box lay outside the image
    assert not ents["Orphan"].groundable
    t1 = s.tweets[0]
    assert t1.caption == "a man in a suit at a podium"
    assert t1.long_caption == "The image shows a man in a dark suit."   # multi-line record joined
    assert s.tweets[1].unmatched_boxes[0][0] == "Apollo"
    assert count_unknown_xml(MINI, [s, read_split(MINI, "dev")]) == 1    # xml/9999.xml


def test_reader_errors(tmp_path):
    with pytest.raises(GraphmieError, match="E016"):
        read_split(MINI, "test")
    with pytest.raises(GraphmieError, match="E018"):
        read_split(MINI, "train", strict=True)                 # the tweet without IMGID
    (tmp_path / "train.txt").write_text("IMGID:1\nfoo\tB-DRUG\n")
    with pytest.raises(GraphmieError, match=r"E013.*line 2"):
        read_split(tmp_path, "train")
    (tmp_path / "train.txt").write_text("IMGID:1\nfoo\n")
    with pytest.raises(GraphmieError, match="E004"):
        read_split(tmp_path, "train")


def test_tweet_to_document():
    t = read_split(MINI, "train").tweets[0]
    doc = tweet_to_document(t, "mini")
    assert doc.text == "Obama visits New York"
    e = doc.entities[1]
    assert doc.text[e.span[0]:e.span[1]] == "New York" and e.label == "LOC"
    assert {g.entity for g in doc.groundings if g.box} == {"e0", "e1"}


def test_reader_shared_data():
    root = shared("gmner")
    tr, dv = read_split(root, "train"), read_split(root, "dev")
    assert tr.stats["tweets"] == 7000 and dv.stats["tweets"] == 1500
    assert tr.stats["entities"] == 11779 and dv.stats["entities"] == 2450
    assert 0.35 < tr.stats["groundable_entities"] / tr.stats["entities"] < 0.45
    assert tr.stats["tweets_without_image"] == 0
    assert sum(1 for t in tr.tweets if t.caption) >= 6990
    assert count_unknown_xml(root, [tr, dv]) == 0
