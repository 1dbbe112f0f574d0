"""The PGIM-style prompt, the normalisation of model answers, and the <EOS> writer."""
from __future__ import annotations

import re

import pytest

from graphmie.errors import GraphmieError
from graphmie.llm import get_generator, write_aux
from graphmie.llm.prompt import (DEFAULT_SHOTS, MAX_ENTITIES, MAX_REASONING_WORDS, SYSTEM, Shot,
                                 build_messages, format_knowledge, parse_entities, postprocess,
                                 user_message)


# --- prompt ------------------------------------------------------------------------------
def test_build_messages_shape_and_query_last():
    msgs = build_messages("Ted Cruz speaks in Austin", "a man at a podium")
    assert msgs[0] == {"role": "system", "content": SYSTEM}
    assert len(msgs) == 1 + 2 * len(DEFAULT_SHOTS) + 1
    assert [m["role"] for m in msgs[1:-1]] == ["user", "assistant"] * len(DEFAULT_SHOTS)
    assert msgs[-1] == {"role": "user", "content": "Post: Ted Cruz speaks in Austin\nImage: a man at a podium"}
    for shot, (u, a) in zip(DEFAULT_SHOTS, zip(msgs[1:-1:2], msgs[2:-1:2])):
        assert u["content"] == user_message(shot.text, shot.caption)
        assert a["content"] == shot.answer


def test_build_messages_without_caption_and_zero_shot():
    msgs = build_messages("hello world", None, shots=())
    assert msgs == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Post: hello world"}]
    # an empty or blank caption is left out too
    assert build_messages("hi", "   ", shots=())[-1]["content"] == "Post: hi"


def test_build_messages_custom_shots_and_whitespace():
    shot = Shot("A  post\twith  gaps", None, "Named entities: none.")
    msgs = build_messages("x\ny", "cap\n tion", shots=[shot])
    assert msgs[1] == {"role": "user", "content": "Post: A post with gaps"}
    assert msgs[2] == {"role": "assistant", "content": "Named entities: none."}
    assert msgs[3]["content"] == "Post: x y\nImage: cap tion"


def test_long_text_is_cut():
    msg = build_messages("a" * 5000, "b" * 5000, shots=())[-1]["content"]
    assert len(msg) < 1600
    assert msg.startswith("Post: " + "a" * 100) and " ...\nImage: " in msg


def test_default_shots_are_in_the_output_shape():
    for s in DEFAULT_SHOTS:
        assert postprocess(s.answer) == s.answer
    assert any(not parse_entities(s.answer) for s in DEFAULT_SHOTS)      # one shows "none"
    assert parse_entities(DEFAULT_SHOTS[1].answer)[0] == ("Wembley", "location/stadium")


# --- postprocess -------------------------------------------------------------------------
def test_postprocess_shipped_squashed_form():
    raw = ("Named entities:1. DrottM (person/handle)2. Ted Cruz (person/politician)3. CruzCrew "
           "(group/hashtag)Reasoning:The sentence mentions DrottM.")
    assert postprocess(raw) == ("Named entities: 1. DrottM (person/handle) 2. Ted Cruz (person/politician) "
                                "3. CruzCrew (group/hashtag) Reasoning: The sentence mentions DrottM.")


def test_postprocess_strips_chat_artefacts_and_dedupes():
    raw = ("<|im_start|>assistant\nNamed entities: 1. Ted Cruz (person) 2. ted cruz (team) "
           "3. Texas (location/state)\nReasoning: Ted Cruz is a senator.<|im_end|>")
    assert postprocess(raw) == ("Named entities: 1. Ted Cruz (person) 2. Texas (location/state) "
                                "Reasoning: Ted Cruz is a senator.")


def test_postprocess_markdown_and_comma_list():
    raw = "**Named entities:** Ted Cruz (person), Texas (location). **Reasoning:** Ted is from Texas."
    assert postprocess(raw) == "Named entities: 1. Ted Cruz (person) 2. Texas (location) Reasoning: Ted is from Texas."


def test_postprocess_no_entity_list():
    assert postprocess("The post is about the weather.") == \
        "Named entities: none. Reasoning: The post is about the weather."
    assert postprocess("Named entities: None. The post complains.") == \
        "Named entities: none. Reasoning: The post complains."
    assert postprocess("Named entities: none. Reasoning: nothing here.") == \
        "Named entities: none. Reasoning: nothing here."
    assert postprocess("") == "Named entities: none."
    assert postprocess("<|im_end|>") == "Named entities: none."


def test_postprocess_cuts_new_turns_and_repeats():
    assert postprocess("Answer: Named entities: 1. Route 66 (road) 2. Chicago (city) Reasoning: A road trip. "
                       "Post: another one Image: x") == \
        "Named entities: 1. Route 66 (road) 2. Chicago (city) Reasoning: A road trip."
    assert postprocess("Named entities: 1. A (x) Reasoning: one. Named entities: 1. B (y) Reasoning: two.") == \
        "Named entities: 1. A (x) Reasoning: one."


def test_postprocess_bare_list_other_numbering_unclosed_and_dashes():
    assert postprocess("1. Hugh Jackman (person/actor) 2. Logan (film) Reasoning: He plays Logan.") == \
        "Named entities: 1. Hugh Jackman (person/actor) 2. Logan (film) Reasoning: He plays Logan."
    assert postprocess("Named entities: 1) Dick Cheney (person) 2) 9/11 (event) Reasoning: x") == \
        "Named entities: 1. Dick Cheney (person) 2. 9/11 (event) Reasoning: x"
    assert postprocess("Named entities: 1. Ted Cruz (person/polit") == "Named entities: 1. Ted Cruz (person/polit)"
    assert postprocess("Named entities: 1. Texas - a state 2. Austin: the capital 3. 9:30 Club (venue)") == \
        "Named entities: 1. Texas 2. Austin 3. 9:30 Club (venue)"


def test_postprocess_bounds():
    loop = "Named entities: " + " ".join(f"{i}. Name{i} (person)" for i in range(1, 40))
    out = postprocess(loop)
    assert len(parse_entities(out)) == MAX_ENTITIES
    assert out.endswith(f"{MAX_ENTITIES}. Name{MAX_ENTITIES} (person)")
    assert postprocess("Named entities: 1. " + "x" * 200 + " (person)") == "Named entities: none."
    long = "Named entities: 1. Ted Cruz (person) Reasoning: " + "This is a sentence. " * 50
    out = postprocess(long)
    assert len(out.split("Reasoning: ", 1)[1].split()) <= MAX_REASONING_WORDS
    assert out.endswith("sentence.")
    words = postprocess(" ".join(["word"] * 500))
    assert words == "Named entities: none. Reasoning: " + " ".join(["word"] * MAX_REASONING_WORDS) + " ..."


def test_postprocess_is_deterministic_and_idempotent():
    raw = "Named entities:1. A (x)2. B (y)Reasoning:Because."
    once = postprocess(raw)
    assert once == postprocess(raw) == postprocess(once)


def test_parse_entities_and_format():
    assert parse_entities("Named entities: none. Reasoning: x") == []
    assert parse_entities("no list here") == []
    ents = [("Ted Cruz", "person"), ("Texas", "")]
    assert format_knowledge(ents, "R.") == "Named entities: 1. Ted Cruz (person) 2. Texas Reasoning: R."
    assert parse_entities(format_knowledge(ents, "R.")) == ents
    assert format_knowledge([]) == "Named entities: none."


# --- get_generator's spec ----------------------------------------------------------------
def test_get_generator_rejects_bad_specs_and_options(tmp_path):
    with pytest.raises(GraphmieError) as e:
        get_generator("chatgpt")
    assert e.value.code == "E022"
    with pytest.raises(GraphmieError) as e:
        get_generator(str(tmp_path / "missing.gguf"))
    assert e.value.code == "E001"
    with pytest.raises(GraphmieError) as e:
        get_generator("local", max_new_tokens=0)
    assert e.value.code == "E009"
    with pytest.raises(GraphmieError) as e:
        get_generator("http://127.0.0.1:9", temperature=-1)
    assert e.value.code == "E009"
    bad = tmp_path / "not.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(GraphmieError) as e:
        get_generator(str(bad))
    assert e.value.code in ("E010", "E015")


# --- write_aux ---------------------------------------------------------------------------
def _read_back(path):
    """The shipped files' reading: (tokens, tags, knowledge) per blank-line-separated record."""
    recs = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip("\n")):
        toks, tags, know, after = [], [], [], False
        for line in block.split("\n"):
            tok, tag = line.split("\t")
            if tok == "<EOS>":
                after = True
                assert tag == "X"
            elif after:
                assert tag == "X"
                know.append(tok)
            else:
                toks.append(tok)
                tags.append(tag)
        recs.append((toks, tags, " ".join(know)))
    return recs


def test_write_aux_round_trip(tmp_path):
    p = tmp_path / "sub" / "aux.txt"
    tweets = [["Ted", "Cruz", "speaks", "!"], ["so", "cold"]]
    know = ["Named entities: 1. Ted Cruz (person/politician) Reasoning: A  senator.", "Named entities: none."]
    write_aux(p, tweets, know, tags=[["B-PER", "I-PER", "O", "O"], ["O", "O"]])
    text = p.read_text(encoding="utf-8")
    assert text.startswith("Ted\tB-PER\nCruz\tI-PER\nspeaks\tO\n!\tO\n<EOS>\tX\nNamed\tX\nentities:\tX\n1.\tX\n")
    assert text.endswith("so\tO\ncold\tO\n<EOS>\tX\nNamed\tX\nentities:\tX\nnone.\tX\n\n")
    recs = _read_back(p)
    assert [r[0] for r in recs] == tweets
    assert recs[0][1] == ["B-PER", "I-PER", "O", "O"] and recs[1][1] == ["O", "O"]
    assert [r[2] for r in recs] == [" ".join(k.split()) for k in know]
    assert not [f for f in p.parent.iterdir() if f.name != "aux.txt"]     # no temporary file left
    write_aux(p, [["a"]], ["Named entities: none."])                      # tags default to O
    assert p.read_text(encoding="utf-8") == "a\tO\n<EOS>\tX\nNamed\tX\nentities:\tX\nnone.\tX\n\n"


def test_write_aux_errors(tmp_path):
    p = tmp_path / "aux.txt"
    with pytest.raises(GraphmieError) as e:
        write_aux(p, [["a"], ["b"]], ["k"])
    assert e.value.code == "E033"
    with pytest.raises(GraphmieError) as e:
        write_aux(p, [["a b"]], ["k"])
    assert e.value.code == "E004"
    with pytest.raises(GraphmieError) as e:
        write_aux(p, [["<EOS>"]], ["k"])
    assert e.value.code == "E004"
    with pytest.raises(GraphmieError) as e:
        write_aux(p, [["a", "b"]], ["k"], tags=[["O"]])
    assert e.value.code == "E033"
    assert not p.exists()
