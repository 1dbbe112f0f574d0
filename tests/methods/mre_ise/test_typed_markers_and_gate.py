"""Typed entity markers (types and positions exact), the types' mapping, and the consistency gate's effect
on relation logits in a constructed case, with the real MiniLM encoder."""
from dataclasses import dataclass

import pytest
import torch

from graphmie.document import Entity
from graphmie.methods.mre_ise import entity_types
from graphmie.methods.mre_ise.model import PostREModel
from graphmie.methods.mre_ise.samples import BottomEncoder, Prepared, make_batch, sentence_vectors
from graphmie.methods.mre_ise.types import compatible, signature, span_type


@dataclass
class Ent:
    start_char: int
    end_char: int
    label_: str


@pytest.fixture(scope="module")
def typed():
    return BottomEncoder(2, max_length=64, typed_markers=True)


def marked_words(enc, item):
    return enc.tok.convert_ids_to_tokens(item["input_ids"])


def test_typed_markers_write_types_inside_the_marks(typed):
    toks = "Bill Gates visited Seattle today".split()
    it = typed.inputs(toks, (0, 2), (3, 4), "", "per", "loc")
    words = marked_words(typed, it)
    assert words[1:-1] == ["<", "*", "person", "*", "bill", "gates", ">", "visited",
                           "[", "^", "location", "^", "seattle", "]", "today"]
    assert words[it["head_pos"]] == "<" and it["head_pos"] == 1
    assert words[it["tail_pos"]] == "[" and it["tail_pos"] == 9
    assert it["text_len"] == len(words)                                # no caption: all first segment


def test_typed_markers_tail_first_unknown_type_and_caption(typed):
    toks = "Paris is loved by Alice".split()
    it = typed.inputs(toks, (4, 5), (0, 1), "a city at night", None, "misc")
    words = marked_words(typed, it)
    sep = words.index("[SEP]")
    assert words[1:sep] == ["[", "^", "other", "^", "paris", "]", "is", "loved", "by",
                            "<", "*", "entity", "*", "alice", ">"]
    assert words[it["head_pos"]] == "<" and words[it["tail_pos"]] == "[" and it["tail_pos"] == 1
    assert it["text_len"] == sep + 1 and words[sep + 1:-1] == ["a", "city", "at", "night"]
    plain = BottomEncoder.__new__(BottomEncoder)
    plain.tok, plain.max_length, plain.typed_markers = typed.tok, 64, False
    words = marked_words(plain, plain.inputs(toks, (4, 5), (0, 1)))
    assert words[1:-1] == ["[", "paris", "]", "is", "loved", "by", "<", "alice", ">"]


def test_types_from_spacy_spans_and_relation_signatures():
    ents = [Ent(0, 10, "PERSON"), Ent(19, 26, "GPE"), Ent(30, 35, "NORP")]
    assert span_type(ents, 5, 10) == "per" and span_type(ents, 19, 23) == "loc"
    assert span_type(ents, 30, 35) == "misc" and span_type(ents, 11, 18) is None
    assert signature("/per/org/member_of") == ("per", "org") and signature("None") is None
    assert compatible("/per/org/member_of", "per", "org") and not compatible("/per/org/member_of", "org", "org")
    assert compatible("/per/org/member_of", None, "org") and compatible("None", "loc", "loc")
    es = [Entity(id="e0", text="Katy Perry", label="PERSON", span=(0, 10)),
          Entity(id="e1", text="x", label="org", span=(19, 26)),          # the user's own type wins
          Entity(id="e2", text="y", label="", span=(11, 18))]              # spaCy tags nothing there
    cfg = {"type_source": "spacy", "type_tagger": "entity_mner"}
    assert entity_types(es, ents, cfg, [], []) == {"e0": "per", "e1": "org", "e2": None}


def test_an_unrelated_caption_moves_the_relation_less_once_the_gate_has_learned_consistency(typed):
    torch.manual_seed(0)
    posts = [("Messi scores twice for Barcelona", "a football player kicking a ball on a pitch"),
             ("Obama speaks at the White House", "a man in a suit speaking at a podium"),
             ("Taylor Swift performs in London", "a singer on stage with a microphone and lights"),
             ("Apple opens a new store in Tokyo", "a glass shop front with a big logo"),
             ("The Lakers beat the Celtics", "basketball players jumping for the ball"),
             ("Pope Francis visits Brazil", "an old man in white robes waving to a crowd"),
             ("Tesla unveils a new electric car", "a shiny car on display at a show"),
             ("Rain floods the streets of Mumbai", "a flooded street with people wading through water")]
    text = sentence_vectors([t for t, _ in posts])
    cap = sentence_vectors([c for _, c in posts])
    enc = BottomEncoder(6, max_length=64)                             # every layer tuned: every layer gated
    model = PostREModel(8, 16, top_layers=enc.top_layers(), n_labels=4, use_graph=False, use_topics=False,
                        use_gate=True)
    opt = torch.optim.Adam(model.gate.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model.gate.consistency_loss(text, cap)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    toks = "Messi scores twice for Barcelona".split()
    related, unrelated = posts[0][1], "a bowl of soup with noodles and chopsticks"
    rows = [enc.inputs(toks, (0, 1), (4, 5), c) for c in ("", related, unrelated)]
    hidden, mask = enc.bottom(rows)
    p = Prepared([hidden[i, :int(mask[i].sum())] for i in range(3)], [r["head_pos"] for r in rows],
                 [r["tail_pos"] for r in rows], [None] * 3, [[]] * 3, ["None"] * 3,
                 text_len=[r["text_len"] for r in rows])
    p.text_vec = sentence_vectors([" ".join(toks)] * 3)
    p.cap_vec = sentence_vectors(["", related, unrelated])
    with torch.no_grad():
        logits, aux, _ = model(**make_batch(p, [0, 1, 2], model))
        g = aux["gate"]
        assert float(g[0]) == 1.0 and float(g[1]) > 0.5 > float(g[2])        # row 0 has no caption
        moved = (logits[1:] - logits[0]).norm(dim=-1)
        assert float(moved[1]) < float(moved[0])
        # the mechanism itself: the same caption moves the logits less under a lower gate value
        b = make_batch(p, [1], model)
        shift = [float((model.classify(model.features(**b, gate_override=v)[0]) - logits[0]).norm()) for v in
                 (0.9, 0.1, 1e-4)]
        assert shift[0] > shift[1] > shift[2]


def test_types_from_the_mner_tagger_type_every_argument_and_a_bad_source_is_coded():
    from graphmie.errors import GraphmieError
    from graphmie.methods.mre_ise import MREISE, _words
    from graphmie.methods.mre_ise.types import tagger_types

    text = "Barack Obama spoke at Harvard University in Boston ."
    tokens, spans = _words(text)
    assert tagger_types([(tokens, [(0, 2), (4, 6), (7, 8)])], "entity_mner") == [["per", "org", "loc"]]
    es = [Entity(id="h", text="Barack Obama", label="", span=(0, 12)),
          Entity(id="t", text="Boston", label="", span=(44, 50)),
          Entity(id="u", text="Harvard University", label="misc", span=(22, 40))]   # a user's own type is kept
    cfg = {"type_source": "mner", "type_tagger": "entity_mner"}
    assert entity_types(es, [], cfg, tokens, spans) == {"h": "per", "t": "loc", "u": "misc"}
    with pytest.raises(GraphmieError) as e:
        MREISE.resolve_config({"model": {"type_source": "stanza"}}, "cfg.toml")
    assert e.value.code == "E021" and "type_source" in str(e.value)
