"""LLM auxiliary knowledge: the <EOS> file format, alignment to the split, the entity list, the
knowledge-match tags; Twitter-2015/2017 folders through the same reader; the shared data."""
from collections import Counter

import pytest

from conftest import shared
from graphmie.data.gmner import folder_benchmark, read_split
from graphmie.data.knowledge import (attach_knowledge, category, knowledge_entities, knowledge_tags, read_aux)
from graphmie.errors import GraphmieError

AUX = ("RT\tO\r\n@\tO\r\nDrottM\tO\r\n:\tO\r\nTed\tB-PER\r\nCruz\tI-PER\r\n<EOS>\tX\r\nNamed\tX\r\nentities:1.\tX\r\n"
       "DrottM\tX\r\n(person/handle)2.\tX\r\nTed\tX\r\nCruz\tX\r\n(person/politician)Reasoning:\tX\r\nHe\tX\r\n"
       "speaks.\tX\r\n\r\n"
       "Go\tO\nBears\tB-ORG\n<EOS>\tX\nNamed\tX\nentities:\tX\n1.\tX\nBears\tX\n(sports\tX\nteam)\tX\n\n")


class T:
    def __init__(self, tokens):
        self.tokens = tokens


def test_read_aux_crlf_and_lf_records(tmp_path):
    p = tmp_path / "aux.txt"
    p.write_bytes(AUX.encode())
    recs = read_aux(p)
    assert [r.tokens for r in recs] == [["RT", "@", "DrottM", ":", "Ted", "Cruz"], ["Go", "Bears"]]
    assert recs[0].text == ("Named entities:1. DrottM (person/handle)2. Ted Cruz (person/politician)Reasoning: "
                            "He speaks.")
    assert recs[1].line == 18


def test_attach_checks_order_and_counts_missing_tail(tmp_path):
    p = tmp_path / "aux.txt"
    p.write_bytes(AUX.encode())
    tweets = [T(["RT", "@", "DrottM", ":", "Ted", "Cruz"]), T(["Go", "Bears"]), T(["last", "one"])]
    stats = Counter()
    out = attach_knowledge(tweets, p, stats)
    assert out[1].startswith("Named entities:") and out[2] is None
    assert stats["knowledge_missing"] == 1 and stats["knowledge_records"] == 2
    with pytest.raises(GraphmieError, match=r"E033.*record 2 \(line 18\)"):
        attach_knowledge([tweets[0], T(["Go", "Cubs"])], p)
    with pytest.raises(GraphmieError, match=r"E033.*2 records for 1 tweets"):
        attach_knowledge(tweets[:1], p)


def test_entity_list_and_categories():
    k = ("Named entities:1. DrottM (person/handle)2. Ted Cruz (person/politician)3. Rp 4.7 billion "
         "(amount of money)4. #PJNET (group/hashtag)Reasoning: 5. not an item")
    assert knowledge_entities(k) == [("DrottM", "person/handle"), ("Ted Cruz", "person/politician"),
                                     ("Rp 4.7 billion", "amount of money"), ("#PJNET", "group/hashtag")]
    assert knowledge_entities("Named entity: 1. Roger Rodas (person) Reasoning: x") == [("Roger Rodas", "person")]
    assert knowledge_entities("no list here") == [] and knowledge_entities("") == []
    assert [category(t) for t in ("person/politician", "sports team", "city", "event", "")] == \
        ["PER", "ORG", "LOC", "OTHER", "OTHER"]


def test_knowledge_tags_mark_named_words():
    toks = "RT @ DrottM : Ted Cruz speaks # PJNET ted".split()
    k = "Named entities: 1. Ted Cruz (person) 2. PJNET (group/hashtag) 3. Nobody (person) Reasoning: ..."
    assert knowledge_tags(toks, k) == ["none", "none", "none", "none", "B-PER", "I-PER", "none", "none", "B-ORG",
                                       "none"]
    assert knowledge_tags(toks, None) == ["none"] * len(toks)


def _twitter_folder(root, misc=True):
    other = "MISC" if misc else "OTHER"
    (root / "captions").mkdir(parents=True)
    (root / "aux_pgim").mkdir()
    (root / "valid.txt").write_text(f"IMGID:1\nObama\tB-PER\nin\tO\nParis\tB-LOC\n\nIMGID:2\nGo\tO\nNFL\tB-{other}\n\n")
    (root / "captions" / "blip2.txt").write_text("1.jpg :a man at a podium\n2.jpg :a football game\n")
    (root / "aux_pgim" / "valid.txt").write_text(
        "Obama\tO\nin\tO\nParis\tO\n<EOS>\tX\nNamed\tX\nentities:\tX\n1.\tX\nObama\tX\n(person)\tX\n\n")


def test_twitter_folder_reads_with_pgim_knowledge(tmp_path):
    root = tmp_path / "twitter2017"
    _twitter_folder(root)
    s = read_split(root, "valid")
    assert s.benchmark == "twitter2017" and s.knowledge_source == "pgim" and "MISC" in s.types
    assert s.tweets[0].knowledge.startswith("Named entities: 1. Obama") and s.tweets[1].knowledge is None
    assert s.tweets[1].caption == "a football game" and s.stats["knowledge_missing"] == 1
    assert not any(e.groundable for t in s.tweets for e in t.entities)       # no xml: nothing groundable
    assert folder_benchmark(root) == "twitter2017"
    other = tmp_path / "mydata"
    _twitter_folder(other, misc=False)
    assert folder_benchmark(other) == "twitter-gmner" and read_split(other, "valid").benchmark == "twitter-gmner"


def test_mixed_label_sets_are_refused(tmp_path):
    (tmp_path / "train.txt").write_text("IMGID:1\nA\tB-MISC\n\nIMGID:2\nB\tB-OTHER\n\n")
    with pytest.raises(GraphmieError, match="E013.*both MISC"):
        read_split(tmp_path, "train")


@pytest.mark.parametrize("name,split,n,source", [("gmner", "dev", 1500, "riveg"), ("twitter2015", "valid", 1000, "pgim"),
                                                 ("twitter2017", "valid", 723, "pgim")])
def test_shared_knowledge_aligns(name, split, n, source):
    root = shared(name)
    s = read_split(root, split)
    assert len(s.tweets) == n and s.knowledge_source == source
    have = sum(t.knowledge is not None for t in s.tweets)
    assert have == n - s.stats["knowledge_missing"] and s.stats["knowledge_missing"] == (1 if "2015" in name else 0)
    assert sum(bool(knowledge_entities(t.knowledge)) for t in s.tweets if t.knowledge) > 0.9 * have
