"""Reader for the wikiHow-FG corpus (Shirai, Kameko & Mori, RepL4NLP 2023).

An article JSON holds ``steps`` (a list of steps; each step a list of tokens with
``token_id`` = ``"<step>-<sentence>-<word>"``, ``token`` and ``ne_tag``) and ``flows``
(``[from_token_id, to_token_id, label]``, 13 labels). ``ne_tag`` is ``<TYPE>-B`` /
``<TYPE>-I`` / ``O`` for the nine procedural entity types. A flow is anchored on the
first token of each endpoint entity.

The article becomes a :class:`~graphmie.document.Document` of kind ``procedure``: one
:class:`Step` per step (text = its tokens joined by single spaces), one :class:`Token`
per word (with ``step``, the character ``span`` in the step text, and the gold ``tag``),
gold :class:`Entity` spans decoded from the BIO tags and gold :class:`Relation` flows
between them (provenance ``model="gold"``).

Bad input, and what happens (every case is counted in ``doc.meta["read_stats"]``; none
is dropped silently):

* not JSON -> ``E003``; no ``steps`` list, a token that is not an object, a malformed
  ``token_id`` or flow -> ``E004``; a token without ``token_id`` or ``token`` -> ``E018``;
  ``flows``, a step or a ``token`` of the wrong type -> ``E019``;
* an unknown ``ne_tag`` or flow label -> ``E013``;
* steps out of order (a token's step number differs from its step's position, or word
  numbers that do not increase) or a repeated ``token_id`` -> ``E012`` naming the token;
* an empty step (no tokens) -> kept as an empty step, counted in ``empty_steps``;
* an ``*-I`` tag that does not continue an entity of the same type -> starts a new entity
  (the conlleval convention), counted in ``orphan_inside``;
* a flow whose endpoint token id does not exist (``dangling_flows``), or lies on an
  ``O`` token (``flows_on_untagged``) -> not turned into a relation, listed with the reason
  in ``doc.meta["skipped_flows"]``; an endpoint inside (not at the start of) an entity is
  attached to that entity, counted in ``flows_remapped``; a flow that repeats an earlier
  one is counted in ``duplicate_flows``.

Data quirk worth knowing: the released tags often repeat a ``*-B`` tag on the words that
follow an entity (``Cover/Ae-B the/Ae-B area/I-B with/I-B``). The reader keeps the tags
exactly as released, so such words are one-word entities for training and scoring alike.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from ..document import Document, Entity, Provenance, Relation, Step, Token
from ..errors import GraphmieError
from ..io import read_json

#: the nine procedural entity types of wikiHow-FG
ENTITY_TYPES = ("I", "Ae", "Ae2", "T", "Si", "Q", "Ai", "St", "D")
ENTITY_TYPE_NAMES = {"I": "intermediate/ingredient (object)", "Ae": "action by the executor",
                     "Ae2": "second action by the executor", "T": "tool", "Si": "size/shape",
                     "Q": "quantity", "Ai": "action by an object (not the executor)", "St": "state",
                     "D": "duration"}
#: the 13 flow labels of wikiHow-FG
FLOW_LABELS = ("Targ", "other-mod", "I-eq", "Dest", "I-part-of", "Agent", "T-comp", "T-eq", "V-tm",
               "T-part-of", "I-comp", "A-eq", "Set")
#: BIO tag inventory in our convention (``B-I``, ``I-I``, ... and ``O``), index 0 = O
BIO_TAGS = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))

_TOKEN_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def parse_tag(raw: str, where: str) -> tuple[str, str | None]:
    """``"Ae-B"`` -> ``("B", "Ae")``; ``"O"`` -> ``("O", None)``."""
    if raw == "O":
        return "O", None
    typ, sep, pos = raw.rpartition("-")
    if not sep or pos not in ("B", "I") or typ not in ENTITY_TYPES:
        raise GraphmieError("E013", where, detail=f"ne_tag {raw!r} is not one of O or "
                            f"<{'|'.join(ENTITY_TYPES)}>-<B|I>")
    return pos, typ


def decode_bio(tags: list[str]) -> tuple[list[tuple[int, int, str]], int]:
    """BIO tags (``B-X``/``I-X``/``O``) -> spans ``(start, end_exclusive, X)`` and the number of
    orphan ``I-X`` tags (which start a new span, as conlleval does)."""
    spans, orphans = [], 0
    start, typ = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        pos, _, t = tag.partition("-")
        if pos == "I" and typ == t and start is not None:
            continue
        if start is not None:
            spans.append((start, i, typ))
            start, typ = None, None
        if pos in ("B", "I"):
            if pos == "I":
                orphans += 1
            start, typ = i, t
    return spans, orphans


def read_article(path: str | Path) -> Document:
    """One wikiHow-FG article JSON -> a gold procedure :class:`Document` (see module doc)."""
    path = Path(path)
    data = read_json(path)
    src = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise GraphmieError("E004", src, detail="expected an object with a 'steps' list")
    flows = data.get("flows", [])
    if not isinstance(flows, list):
        raise GraphmieError("E019", src, detail="'flows' must be a list")
    stats: Counter = Counter()
    doc = Document(id=str(data.get("article_id") or path.stem), kind="procedure", source=src,
                   meta={"dataset": "wikihow_fg", "url": data.get("url")})
    tok_index: dict[str, int] = {}          # token_id -> index in doc.tokens
    step_texts = []
    for si, step in enumerate(data["steps"]):
        if not isinstance(step, list):
            raise GraphmieError("E019", src, detail=f"step {si} is not a list of tokens")
        if not step:
            stats["empty_steps"] += 1
        words, cursor, last_word = [], 0, -1
        st = Step(index=si, text="")
        for ti, t in enumerate(step):
            where = f"{src} step {si} token {ti}"
            if not isinstance(t, dict):
                raise GraphmieError("E004", where, detail="a token is an object with 'token_id' and 'token'")
            for key in ("token_id", "token"):
                if key not in t:
                    raise GraphmieError("E018", where, detail=f"a token needs {key!r}")
            if not isinstance(t["token"], str):
                raise GraphmieError("E019", where, detail="'token' must be a string")
            tid = str(t["token_id"])
            m = _TOKEN_ID.match(tid)
            if not m:
                raise GraphmieError("E004", where, detail=f"token_id {tid!r} is not '<step>-<sentence>-<word>'")
            if int(m.group(1)) != si:
                raise GraphmieError("E012", where, detail=f"steps out of order: token {tid!r} is numbered for "
                                    f"step {m.group(1)} but is in step position {si}")
            word_no = int(m.group(2)) * 100000 + int(m.group(3))
            if word_no <= last_word:
                raise GraphmieError("E012", where, detail=f"tokens out of order at {tid!r}")
            last_word = word_no
            if tid in tok_index:
                raise GraphmieError("E012", where, detail=f"token_id {tid!r} repeated")
            pos, typ = parse_tag(str(t.get("ne_tag", "O")), where)
            text = t["token"]
            if words:
                cursor += 1
            span = (cursor, cursor + len(text))
            cursor = span[1]
            words.append(text)
            tok_index[tid] = len(doc.tokens)
            st.tokens.append(len(doc.tokens))
            doc.tokens.append(Token(text=text, span=span, step=si, tag="O" if pos == "O" else f"{pos}-{typ}"))
        st.text = " ".join(words)
        step_texts.append(st.text)
        doc.steps.append(st)
    doc.text = "\n".join(step_texts)
    doc.entities = entities_from_tags(doc, src, stats)
    # flows -> relations between the entities their endpoints fall in
    tok2ent = {ti: e for e in doc.entities for ti in e.tokens}
    start_of = {e.tokens[0]: e for e in doc.entities}
    skipped, seen = [], set()
    for k, fl in enumerate(flows):
        if not (isinstance(fl, (list, tuple)) and len(fl) == 3):
            raise GraphmieError("E004", f"{src} flow {k}", detail="a flow is [from_token_id, to_token_id, label]")
        a, b, label = (str(x) for x in fl)
        if label not in FLOW_LABELS:
            raise GraphmieError("E013", f"{src} flow {k}", detail=f"flow label {label!r} not in {FLOW_LABELS}")
        ends = []
        for tid in (a, b):
            if tid not in tok_index:
                ends.append(("dangling_flows", f"token {tid} does not exist"))
            elif tok_index[tid] not in tok2ent:
                ends.append(("flows_on_untagged", f"token {tid} is not inside an entity"))
            else:
                ti = tok_index[tid]
                if ti not in start_of:
                    stats["flows_remapped"] += 1
                ends.append((None, tok2ent[ti]))
        bad = [e for e in ends if e[0] is not None]
        if bad:
            stats[bad[0][0]] += 1
            skipped.append({"flow": [a, b, label], "reason": "; ".join(r for _, r in bad)})
            continue
        head, tail = ends[0][1], ends[1][1]
        if (head.id, tail.id, label) in seen:
            stats["duplicate_flows"] += 1
            continue
        seen.add((head.id, tail.id, label))
        doc.relations.append(Relation(id=f"f{len(doc.relations)}", head=head.id, tail=tail.id, label=label,
                                      provenance=Provenance(source=src, page=tail.step, model="gold")))
    doc.meta["read_stats"] = dict(stats)
    if skipped:
        doc.meta["skipped_flows"] = skipped
    return doc


def entities_from_tags(doc: Document, src: str, stats: Counter | None = None,
                       model: str = "gold", scores: dict[int, float] | None = None) -> list[Entity]:
    """Decode each step's token tags (``Token.tag``) into :class:`Entity` spans."""
    ents = []
    for st in doc.steps:
        tags = [doc.tokens[i].tag or "O" for i in st.tokens]
        spans, orphans = decode_bio(tags)
        if stats is not None and orphans:
            stats["orphan_inside"] += orphans
        for s, e, typ in spans:
            toks = st.tokens[s:e]
            span = (doc.tokens[toks[0]].span[0], doc.tokens[toks[-1]].span[1])
            ents.append(Entity(id=f"s{st.index}_w{s}", text=st.text[span[0]:span[1]], label=typ, tokens=list(toks),
                               span=span, step=st.index,
                               provenance=Provenance(source=src, page=st.index, span=span, model=model,
                                                     score=None if scores is None else scores.get(toks[0]))))
    return ents


def iter_article_paths(folder: str | Path) -> list[Path]:
    """All ``*.json`` files under ``folder`` (any depth), sorted; a single file is itself."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise GraphmieError("E001", folder)
    paths = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not paths:
        raise GraphmieError("E016", folder, detail="no wikiHow-FG article *.json files found (searched all depths)")
    return paths


def read_folder(folder: str | Path, errors: list | None = None) -> list[Document]:
    """Read every article under ``folder``. A bad file raises, unless ``errors`` is a list:
    then its error is appended there and the rest are still read."""
    docs = []
    for p in iter_article_paths(folder):
        try:
            docs.append(read_article(p))
        except GraphmieError as e:
            if errors is None:
                raise
            errors.append(str(e))
    return docs


def iter_folder(folder: str | Path) -> Iterator[Document]:
    for p in iter_article_paths(folder):
        yield read_article(p)
