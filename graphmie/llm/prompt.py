"""The PGIM-style few-shot prompt and the normalisation of what the model answers.

PGIM (Li et al., EMNLP 2023 Findings, "Prompting ChatGPT in MNER") and RiVEG (Li et al., ACL
2024 Findings) give the entity tagger ``post [SEP] knowledge``, where the knowledge is an LLM's
answer to a few-shot prompt: the post, a text description of its image, and a few solved
demonstrations; the answer reads ``Named entities: 1. <name> (<type>) 2. ... Reasoning: ...``.

:func:`build_messages` makes that prompt as chat messages (a system instruction, each
demonstration as a user/assistant turn pair, then the query post). The default demonstrations
(:data:`DEFAULT_SHOTS`) are hand-written posts, not taken from any dataset.

:func:`postprocess` turns whatever a model answered into that shape, deterministically:
chat artefacts are stripped, the entity list is re-numbered, deduplicated and bounded, the
reasoning is cut at a bounded length, and an answer with no entity list becomes
``Named entities: none.`` followed by whatever reasoning it gave.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: What a post or a caption may contribute to the prompt, in characters (a longer one is cut).
MAX_TEXT_CHARS = 1000
MAX_CAPTION_CHARS = 500
#: Bounds on the normalised knowledge.
MAX_ENTITIES = 12
MAX_NAME_CHARS = 60
MAX_TYPE_CHARS = 40
MAX_REASONING_WORDS = 80

SYSTEM = (
    "You are an expert in named entity recognition for social media posts. "
    "You are given a post and a description of the image attached to it. "
    "List the named entities the post mentions (people, organisations, locations, and other "
    "names such as events, products, teams or works), each followed by its type in brackets, "
    "then explain in two or three sentences what the entities are, using the image "
    "description where it helps. "
    "Answer exactly in this form: Named entities: 1. <name> (<type>) 2. <name> (<type>) "
    "Reasoning: <explanation>. "
    "If the post names no entity, answer: Named entities: none. Reasoning: <explanation>."
)


@dataclass(frozen=True)
class Shot:
    """One demonstration: a post, its image description, and the answer it should get."""

    text: str
    caption: str | None
    answer: str


#: Hand-written demonstrations (invented posts, in the tokenised style of the tweet datasets).
DEFAULT_SHOTS: tuple[Shot, ...] = (
    Shot(
        text="so tired of this rain . just want summer back",
        caption="a window with raindrops on it",
        answer=(
            "Named entities: none. "
            "Reasoning: The post complains about the weather and names no person, "
            "organisation, location or other entity; the image of raindrops matches the mood."
        ),
    ),
    Shot(
        text="Great night at Wembley with @jamie_r watching Arsenal beat Chelsea ! # FACup",
        caption="a crowd of people in a football stadium at night",
        answer=(
            "Named entities: 1. Wembley (location/stadium) 2. jamie_r (person/handle) "
            "3. Arsenal (organization/team) 4. Chelsea (organization/team) 5. FACup (event/hashtag) "
            "Reasoning: The post is about a football match at Wembley, a stadium in London. "
            "jamie_r is the Twitter handle of a friend of the author. Arsenal and Chelsea are "
            "football clubs, and FACup is the hashtag of the cup competition they played in."
        ),
    ),
    Shot(
        text="Mayor Linda Park opens the new public library in Springfield today",
        caption="a woman cutting a red ribbon in front of a building",
        answer=(
            "Named entities: 1. Linda Park (person/politician) 2. Springfield (location/city) "
            "Reasoning: Linda Park is the mayor, a person, and the image shows her cutting a "
            "ribbon at the opening. Springfield is the city where the new library opens."
        ),
    ),
)


def _clip(s: str, limit: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit].rstrip() + " ..."


def user_message(text: str, caption: str | None = None) -> str:
    """The user turn for one post: ``Post: ...`` and, when there is one, ``Image: ...``."""
    msg = f"Post: {_clip(text, MAX_TEXT_CHARS)}"
    if caption is not None and caption.strip():
        msg += f"\nImage: {_clip(caption, MAX_CAPTION_CHARS)}"
    return msg


def build_messages(text: str, caption: str | None = None,
                   shots: tuple[Shot, ...] | list[Shot] | None = None) -> list[dict]:
    """Chat messages for one post: system instruction, the demonstrations, then the post.

    ``shots=None`` uses :data:`DEFAULT_SHOTS`; ``shots=()`` asks zero-shot.
    """
    shots = DEFAULT_SHOTS if shots is None else shots
    messages = [{"role": "system", "content": SYSTEM}]
    for s in shots:
        messages.append({"role": "user", "content": user_message(s.text, s.caption)})
        messages.append({"role": "assistant", "content": s.answer})
    messages.append({"role": "user", "content": user_message(text, caption)})
    return messages


# --- postprocessing ------------------------------------------------------------------------

# chat-template tokens and role markers a model (or a server) may leave in its answer
_ARTEFACTS = re.compile(
    r"<\|[^|<>]{1,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>|```[a-z]*")
# where a model that keeps going starts a new turn or a new demonstration: cut there
_NEW_TURN = re.compile(r"(?:^|\s)(?:Post:|Image:|user:|User:|system:|System:|assistant:|Assistant:)")
_HEADER = re.compile(r"named\s+entit(?:y|ies)\s*:", re.I)
_REASONING = re.compile(r"reasoning\s*:", re.I)
# an item number: "1." or "1)" at the start, after a space or after a closing bracket
_NUMBER = re.compile(r"(?:^|(?<=[\s)\],;]))(\d{1,2})[.)](?!\d)\s*")
_NONE = re.compile(r"^(?:none|no\b|n/?a\b|nil\b|there (?:are|is) no\b|-+$)", re.I)


def _clean(raw: str) -> str:
    s = _ARTEFACTS.sub(" ", str(raw))
    s = s.replace("**", "").replace("__", "")
    s = " ".join(s.split())
    s = re.sub(r"^(?:assistant\s*:?\s+|answer\s*:\s*)", "", s, flags=re.I)
    return s


def _split_items(section: str) -> tuple[list[str], bool]:
    """A list section -> (its items, whether they were numbered).

    Numbered items are taken in sequence (1, 2, 3, ...), so a number inside a name does not
    start an item; an unnumbered list is split at commas and semicolons outside brackets.
    """
    starts, want = [], 1
    for m in _NUMBER.finditer(section):
        if int(m.group(1)) == want:
            starts.append(m)
            want += 1
    if starts:
        items = []
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(section)
            items.append(section[m.end():end])
        return items, True
    items, depth, cur = [], 0, ""
    for ch in section:
        if ch in "([":
            depth += 1
        elif ch in ")]" and depth:
            depth -= 1
        if ch in ",;" and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return items, False


def _parse_item(item: str) -> tuple[str, str, str]:
    """``"Ted Cruz (person/politician) - a senator"`` -> (name, type, trailing text)."""
    item = item.strip()
    m = re.match(r"^(.*?)\s*[(\[]([^()\[\]]*)[)\]]\s*(.*)$", item)
    if m:
        name, typ, rest = m.group(1), m.group(2), m.group(3)
    elif "(" in item:             # a bracket the model never closed: "Ted Cruz (person/polit"
        name, _, typ = item.partition("(")
        rest = ""
    else:
        name, typ, rest = item, "", ""
        # "Texas - a state" / "Texas: a state": the name is the part before the dash or colon
        m = re.match(r"^(.*?)(?:\s+[-–]|\s*:)\s+(.*)$", item)
        if m:
            name, rest = m.group(1), m.group(2)
    name = name.strip().strip("\"'`*").rstrip(".,;:-–").strip()
    typ = " ".join(typ.split()).strip(" .,;:")
    rest = rest.strip().lstrip("-–:,;. ").strip()
    return name, typ, rest


def parse_entities(knowledge: str) -> list[tuple[str, str]]:
    """The ``(name, type)`` pairs of a knowledge text's entity list (``[]`` for none).

    Reads both this module's output and the shipped ChatGPT files, where the line breaks were
    lost (``Named entities:1. Ted Cruz (person)2. Texas (location)Reasoning:...``).
    """
    return _parse(_clean(knowledge))[0]


def _parse(s: str) -> tuple[list[tuple[str, str]], str]:
    h = _HEADER.search(s)
    if h:
        body = s[h.end():]
    elif re.match(r"^1[.)]\s", s):        # a bare numbered list
        body = s
    else:
        return [], s
    r = _REASONING.search(body)
    section, reasoning = (body[:r.start()], body[r.end():]) if r else (body, "")
    section = section.strip()
    if not section or _NONE.match(section):
        if not r:   # "Named entities: none. The post ..." -> the rest is the reasoning
            reasoning = re.sub(r"^(?:none|n/?a|nil)\b[.,;:]?\s*", "", section, flags=re.I)
        return [], reasoning
    items, numbered = _split_items(section)
    out, seen = [], set()
    for k, item in enumerate(items):
        name, typ, rest = _parse_item(item)
        if k == len(items) - 1 and rest and not r:
            reasoning = rest          # no "Reasoning:" marker: text after the last item
        if not name or len(name) > MAX_NAME_CHARS or _NONE.match(name):
            continue
        if not numbered and not typ and len(name.split()) > 5:
            continue                  # "Named entities: The post is about ..." is prose, not a list
        key = name.lower()
        if key in seen:
            continue
        seen.add(key)
        out.append((name, typ[:MAX_TYPE_CHARS].strip()))
        if len(out) >= MAX_ENTITIES:
            break
    if not out and not numbered and not r:
        reasoning = section
    return out, reasoning


def _bound_words(text: str, limit: int) -> str:
    words = text.split()
    if len(words) <= limit:
        return " ".join(words)
    cut = " ".join(words[:limit])
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if cut.endswith((".", "!", "?")):
        return cut
    if end >= len(cut) // 2:
        return cut[:end + 1]
    return cut + " ..."


def format_knowledge(entities: list[tuple[str, str]], reasoning: str = "") -> str:
    """The canonical text: ``Named entities: 1. A (t) 2. B Reasoning: ...``."""
    if entities:
        items = " ".join(f"{i}. {n} ({t})" if t else f"{i}. {n}"
                         for i, (n, t) in enumerate(entities, 1))
        out = f"Named entities: {items}"
    else:
        out = "Named entities: none."
    reasoning = reasoning.strip()
    if reasoning:
        out += f" Reasoning: {reasoning}"
    return out


def postprocess(raw: str, max_reasoning_words: int = MAX_REASONING_WORDS) -> str:
    """A model's answer -> ``Named entities: ... Reasoning: ...`` (deterministic, bounded).

    - chat artefacts (``<|im_end|>``, ``[INST]``, markdown bold, code fences, an ``Answer:`` or
      ``assistant`` prefix) are removed and white space collapsed to single spaces;
    - the answer is cut where the model starts a new turn or demonstration (``Post:`` ...) or
      repeats ``Named entities:``;
    - the entity list is renumbered, deduplicated (case-insensitively), at most
      :data:`MAX_ENTITIES` items, names over :data:`MAX_NAME_CHARS` characters are dropped;
    - no entity list (or ``none``) gives ``Named entities: none.`` and the model's text as
      reasoning; the reasoning is cut at ``max_reasoning_words`` words (at a sentence end when
      one is in the second half), and left out when the model gave none.
    """
    s = _clean(raw)
    first = _HEADER.search(s)
    if first:
        again = _HEADER.search(s, first.end())
        if again:
            s = s[:again.start()]
    t = _NEW_TURN.search(s, 1)
    if t:
        s = s[:t.start()]
    entities, reasoning = _parse(s.strip())
    reasoning = _REASONING.sub(" ", reasoning)     # a second "Reasoning:" marker
    return format_knowledge(entities, _bound_words(reasoning, max_reasoning_words))
