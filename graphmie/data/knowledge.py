"""LLM auxiliary knowledge for posts (PGIM, EMNLP 2023 Findings; RiVEG, ACL 2024 Findings).

The files (``gmner/aux_riveg/<split>.txt``, ``twitter201x/aux_pgim/<split>.txt``) hold, per tweet,
CoNLL ``token<TAB>tag`` lines of the tweet, an ``<EOS><TAB>X`` line, then the generated text one
word a line tagged ``X`` ("Named entities: 1. Ted Cruz (person/politician) 2. ... Reasoning:
..."); a blank line between tweets; CRLF or LF line ends. There are no ids: record *i* belongs to
tweet *i* of the split file. :func:`attach_knowledge` checks that, record by record, and fails
with ``E033`` naming the record's line at the first tweet whose tokens differ; a file that lacks
the split's *last* tweets (Twitter-2015's files lack each split's last one) leaves those tweets
without knowledge, counted as ``knowledge_missing``; a file with more records than the split has
tweets is ``E033`` too. A record with no ``<EOS>`` line, or with nothing after it, is knowledge
"" (counted as ``knowledge_empty``).

:func:`knowledge_entities` reads the numbered entity list out of a knowledge text (the shape the
shipped files and :func:`graphmie.llm.prompt.postprocess` give; a model's *raw* answer, with its
unnumbered lists, "1)" items and chat artefacts, is :func:`graphmie.llm.prompt.parse_entities`' job,
which is how generated knowledge reaches that shape) and
:func:`knowledge_tags` marks the tweet's words that the list names (BIO over a coarse category
of the LLM's free-form type): the tagger's *knowledge-match* feature, beside the knowledge text
itself, which it reads as the second segment after the tweet.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import GraphmieError
from ..io import read_text
from .text import repair

#: knowledge folders of a dataset folder, in the order they are looked for
SOURCES = ("riveg", "pgim")
#: coarse categories of the LLM's entity types (the tagger learns what each means for a label set)
CATEGORIES = ("PER", "LOC", "ORG", "OTHER")
KNOW_TAGS = ("none",) + tuple(f"{p}-{c}" for c in CATEGORIES for p in ("B", "I"))

_CATEGORY_WORDS = {
    "PER": r"person|people|handle|user|politician|artist|player|celebrity|actor|actress|singer|musician|athlete|"
           r"author|character|coach|president|journalist|rapper|writer|director|comedian|host|model|name",
    "LOC": r"location|city|country|place|state|street|region|continent|island|town|area|venue|stadium|county|"
           r"province|neighbou?rhood|landmark|geograph|park|building|address",
    "ORG": r"organi[sz]ation|company|team|group|band|league|brand|university|party|club|agency|network|outlet|"
           r"news|school|government|business|corporation|institution|store|restaurant|channel|magazine|"
           r"newspaper|station|media|publication|department",
}
_CATEGORY_RE = [(c, re.compile(w)) for c, w in _CATEGORY_WORDS.items()]
_HEAD = re.compile(r"named\s+entit(?:y|ies)\s*:?", re.I)
_REASONING = re.compile(r"reasoning\s*:", re.I)
_NUMBER = re.compile(r"(?:(?<=^)|(?<=[\s)\].,;\"']))(\d{1,2})\.(?!\d)\s*")
_ITEM = re.compile(r"(.*?)\s*\(([^)]*)\)?")
_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


@dataclass
class AuxRecord:
    tokens: list[str]
    text: str           # the generated knowledge, words joined by single spaces
    line: int           # first line of the record


def read_aux(path: Path) -> list[AuxRecord]:
    """The records of an auxiliary-knowledge file (see the module docstring)."""
    path = Path(path)
    lines = re.split(r"\r\n|\r|\n", repair(read_text(path))[0])
    records, toks, words, after, start = [], [], [], False, 0

    def flush():
        if toks or words:
            records.append(AuxRecord(list(toks), " ".join(words), start))

    for ln, line in enumerate(lines, 1):
        if not line.strip():
            flush()
            toks, words, after = [], [], False
            continue
        if not toks and not words:
            start = ln
        word, tab, _tag = line.rpartition("\t")
        if not tab:
            word = line.rsplit(None, 1)[0] if len(line.split()) > 1 else line
        if word == "<EOS>":
            after = True
        elif after:
            words.append(word.strip())
        else:
            toks.append(word)
    flush()
    return records


def aux_path(root: Path, split: str) -> tuple[str, Path] | None:
    """``(source, path)`` of the split's knowledge file in a dataset folder, or None."""
    for src in SOURCES:
        p = Path(root) / f"aux_{src}" / f"{split}.txt"
        if p.exists():
            return src, p
    return None


def attach_knowledge(tweets: list, path: Path, stats: Counter | None = None) -> list[str | None]:
    """Knowledge per tweet of ``tweets`` (objects with ``.tokens``), aligned by order and checked."""
    stats = stats if stats is not None else Counter()
    recs = read_aux(path)
    if len(recs) > len(tweets):
        raise GraphmieError("E033", path, detail=f"{len(recs)} records for {len(tweets)} tweets "
                            f"(record {len(tweets) + 1} at line {recs[len(tweets)].line} has no tweet)")
    out: list[str | None] = []
    for i, (t, r) in enumerate(zip(tweets, recs)):
        if [w.strip() for w in r.tokens] != [w.strip() for w in t.tokens]:
            raise GraphmieError("E033", path, detail=f"record {i + 1} (line {r.line}) has tokens "
                                f"{' '.join(r.tokens)[:80]!r}, tweet {i + 1} of the split has "
                                f"{' '.join(t.tokens)[:80]!r}")
        if not r.text:
            stats["knowledge_empty"] += 1
        out.append(r.text)
    missing = len(tweets) - len(recs)
    if missing:
        stats["knowledge_missing"] += missing
        out.extend([None] * missing)
    stats["knowledge_records"] += len(recs)
    return out


def category(type_text: str) -> str:
    """A coarse category of an LLM's free-form entity type ("person/politician" -> PER)."""
    t = type_text.lower()
    for c, rx in _CATEGORY_RE:
        if rx.search(t):
            return c
    return "OTHER"


def knowledge_entities(text: str) -> list[tuple[str, str]]:
    """``[(name, type text)]`` of the numbered list after "Named entities:" (before "Reasoning:").

    Items are numbered 1., 2., ... in order (a number out of sequence or a decimal, as in "Rp 4.7", is text);
    an item's type is its first parenthesis, "" when it has none."""
    if not text:
        return []
    m = _HEAD.search(text)
    if not m:
        return []
    body = text[m.end():]
    r = _REASONING.search(body)
    if r:
        body = body[:r.start()]
    starts, n = [], 1
    for mm in _NUMBER.finditer(body):
        if int(mm.group(1)) == n:
            starts.append((mm.start(), mm.end()))
            n += 1
    items = []
    for i, (_s, e) in enumerate(starts):
        item = body[e:starts[i + 1][0] if i + 1 < len(starts) else len(body)].strip()
        mm = _ITEM.match(item)
        name, typ = (mm.group(1), mm.group(2) or "") if mm and mm.group(1) else (item, "")
        name = name.strip(" \"'-:,.")
        if name:
            items.append((name, typ.strip()))
    return items


def _norm(w: str) -> str:
    return w.lower().lstrip("#@")


def knowledge_tags(tokens: list[str], text: str | None) -> list[str]:
    """Per tweet token, a :data:`KNOW_TAGS` tag: the words an entity of the knowledge's list names
    (matched case-insensitively on whole words; ``#``/``@`` ignored), BIO over its category.
    Earlier (longer, on ties) names win where two overlap."""
    tags = ["none"] * len(tokens)
    items = knowledge_entities(text or "")
    if not items:
        return tags
    idx = [i for i, w in enumerate(tokens) if w not in ("#", "@")]
    seq = [_norm(tokens[i]) for i in idx]
    for name, typ in sorted(items, key=lambda it: -len(_WORD.findall(it[0]))):
        words = [_norm(w) for w in _WORD.findall(name) if w not in ("#", "@")]
        if not words:
            continue
        cat = category(typ)
        for j in range(len(seq) - len(words) + 1):
            if seq[j:j + len(words)] == words:
                span = range(idx[j], idx[j + len(words) - 1] + 1)
                if all(tags[k] == "none" for k in span):
                    for k in span:
                        tags[k] = ("B-" if k == span[0] else "I-") + cat
    return tags
