"""Reader for the English Recipe Flow Graph corpus (Yamakata et al., LREC 2020), as converted to
CoNLL-U by interactive-cookbook/tagger-parser (``recipe_fg_en/Parser/*.conllu``), and its
CoNLL-2003 tagger files (``recipe_fg_en/Tagger/*.conll03``).

A CoNLL-U file holds one recipe per blank-line separated block; a line is ten tab-separated
columns ``ID FORM LEMMA POS LABEL FEATS HEAD DEPREL DEPRELS MISC``: ``LABEL`` is the BIO entity
tag (``B-F``, ``I-Ac``, ``O``; ten types, :data:`ENTITY_TYPES`), ``HEAD``/``DEPREL`` the flow edge
*from this token's entity to the entity of token* ``HEAD`` (``0``/``root`` = none) and ``DEPRELS``
further edges as a list ``[(head, label), ...]`` (or ``_``). Edges leave from the first token of
their entity. The flow direction is wikiHow-FG's: ``oven -t-> Preheat`` as ``area -Targ-> Cover``.

A recipe becomes a :class:`~graphmie.document.Document` of kind ``procedure`` laid out as
:mod:`graphmie.data.wikihow_fg` lays out an article. **Steps are sentences**: the conversion
kept no step boundaries of the original corpus (a recipe is one block), so a step ends after a
``.``, ``!`` or ``?`` token (and at the end of the recipe). Entities keep the recipe tags
(``F``, ``Ac``, ...) and relations the recipe edge labels (``t``, ``f-eq``, ...);
:func:`to_wikihow` maps a document onto wikiHow-FG's tag and label sets (:data:`ENTITY_MAP`,
:data:`FLOW_MAP`; reasoning in ``docs/procedure.md``). Documents are named
``<file stem>-<block>`` (``train-007``: the 8th recipe of ``train.conllu``).

Bad input (each error names the file and line; it fails that recipe only --
:func:`read_corpus` and :func:`read_conllu` with an ``errors`` list collect the errors and read
the rest):

* a line without 10 columns, a non-integer ``ID``/``HEAD``, unparsable ``DEPRELS`` -> ``E004``;
* ``ID`` not counting 1, 2, ... within the recipe, ``HEAD 0`` without ``root`` (or the reverse)
  -> ``E012``;
* ``HEAD`` (or a ``DEPRELS`` head) outside ``1..n`` -> ``E009``;
* an unknown ``LABEL`` tag or edge label -> ``E013``;
* an edge from or to a token that is in no entity (``O``) -> ``E012``;
* a cycle in the flow graph (entity level; a self-loop included) -> ``E012`` naming the line of an
  edge on it. The released corpus has 12 such recipes (all "*V* until *X* is *Y*": the state
  flows back into the action with ``v-tm``/``o``); they are reported and skipped unless
  ``allow_cycles``.

Counted in ``doc.meta["read_stats"]``, not errors: ``unlabelled_edges`` (label ``-``, 6 in the
corpus; not turned into relations, listed in ``meta["skipped_flows"]``), ``duplicate_flows``,
``orphan_inside`` (an ``I-`` tag starting an entity, as conlleval).
"""
from __future__ import annotations

import ast
import copy
from collections import Counter
from pathlib import Path

from ..document import Document, Provenance, Relation, Step, Token
from ..errors import GraphmieError
from .wikihow_fg import entities_from_tags

#: the ten entity types of the English recipe flow graphs
ENTITY_TYPES = ("F", "T", "Ac", "Ac2", "Af", "At", "Sf", "St", "D", "Q")
ENTITY_TYPE_NAMES = {"F": "food", "T": "tool", "Ac": "action by the cook", "Ac2": "second, discontinuous part of "
                     "an action by the cook", "Af": "action by food", "At": "action by a tool", "Sf": "state of "
                     "food", "St": "state of a tool", "D": "duration", "Q": "quantity"}
#: the edge labels found in the corpus (``-`` = an edge without label, skipped)
FLOW_LABELS = ("t", "o", "d", "f-eq", "t-comp", "v-tm", "a", "f-part-of", "f-comp", "a-eq", "t-eq", "t-part-of",
               "s", "v", "f-set")
#: BIO tags of the recipe types (index 0 = O)
BIO_TAGS = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))

#: recipe entity type -> wikiHow-FG type (docs/procedure.md gives the reasoning)
ENTITY_MAP = {"F": "I", "T": "T", "Ac": "Ae", "Ac2": "Ae2", "Af": "Ai", "At": "Ai", "Sf": "Si", "St": "St",
              "D": "D", "Q": "Q"}
#: recipe edge label -> wikiHow-FG flow label (docs/procedure.md gives the reasoning)
FLOW_MAP = {"t": "Targ", "o": "other-mod", "d": "Dest", "a": "Agent", "f-eq": "I-eq", "f-part-of": "I-part-of",
            "f-comp": "I-comp", "f-set": "Set", "t-eq": "T-eq", "t-part-of": "T-part-of", "t-comp": "T-comp",
            "a-eq": "A-eq", "v-tm": "V-tm", "v": "V-tm", "s": "Dest"}

SENTENCE_END = (".", "!", "?")
N_COLUMNS = 10


def _blocks(path: Path) -> list[list[tuple[int, str]]]:
    """The file's recipes: lists of ``(line number, line)``; ``#`` comment lines are dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphmieError("E001", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise GraphmieError("E002", path, detail=str(e)) from None
    blocks, cur = [], []
    for ln, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            if cur:
                blocks.append(cur)
            cur = []
        elif not line.startswith("#"):
            cur.append((ln, line))
    if cur:
        blocks.append(cur)
    return blocks


def _int(value: str, what: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise GraphmieError("E004", where, detail=f"{what} {value!r} is not an integer") from None


def _extra_edges(raw: str, where: str) -> list[tuple[int, str]]:
    if raw == "_":
        return []
    try:
        edges = ast.literal_eval(raw)
        edges = [(int(h), str(lab)) for h, lab in edges]
    except (ValueError, SyntaxError, TypeError):
        raise GraphmieError("E004", where, detail=f"DEPRELS {raw!r} is not a list of (head, label) pairs") from None
    return edges


def _recipe(block: list[tuple[int, str]], src: str, name: str, allow_cycles: bool) -> Document:
    rows = []
    for ln, line in block:
        where = f"{src} line {ln}"
        cols = line.split("\t")
        if len(cols) != N_COLUMNS:
            raise GraphmieError("E004", where, detail=f"{len(cols)} tab-separated columns, expected {N_COLUMNS} "
                                "(ID FORM LEMMA POS LABEL FEATS HEAD DEPREL DEPRELS MISC)")
        tid, head = _int(cols[0], "ID", where), _int(cols[6], "HEAD", where)
        if tid != len(rows) + 1:
            raise GraphmieError("E012", where, detail=f"ID {tid} where {len(rows) + 1} was due (IDs count 1, 2, ... "
                                "within a recipe)")
        tag = cols[4]
        pos, _, typ = tag.partition("-")
        if tag != "O" and (pos not in ("B", "I") or typ not in ENTITY_TYPES):
            raise GraphmieError("E013", where, detail=f"entity tag {tag!r} is not O or <B|I>-<"
                                f"{'|'.join(ENTITY_TYPES)}>")
        if (head == 0) != (cols[7] == "root"):
            raise GraphmieError("E012", where, detail=f"HEAD {head} with DEPREL {cols[7]!r}: HEAD 0 goes with "
                                "root and only with it")
        edges = ([(head, cols[7])] if head else []) + _extra_edges(cols[8], where)
        rows.append((ln, cols[1], tag, edges))
    n = len(rows)
    stats: Counter = Counter()
    doc = Document(id=name, kind="procedure", source=src, meta={"dataset": "recipe_fg_en", "first_line": block[0][0]})
    st, words, cursor = None, [], 0
    for k, (ln, form, tag, _) in enumerate(rows):
        if st is None:
            st, words, cursor = Step(index=len(doc.steps), text=""), [], 0
            doc.steps.append(st)
        if words:
            cursor += 1
        span = (cursor, cursor + len(form))
        cursor = span[1]
        words.append(form)
        st.tokens.append(k)
        doc.tokens.append(Token(text=form, span=span, step=st.index, tag=tag))
        if form in SENTENCE_END or k == n - 1:
            st.text = " ".join(words)
            st = None
    doc.text = "\n".join(s.text for s in doc.steps)
    doc.entities = entities_from_tags(doc, src, stats)
    ent_of = {ti: e for e in doc.entities for ti in e.tokens}
    skipped, seen, out_edges = [], set(), {}
    for k, (ln, form, tag, edges) in enumerate(rows):
        where = f"{src} line {ln}"
        for h, label in edges:
            if not 1 <= h <= n:
                raise GraphmieError("E009", where, detail=f"edge head {h} outside 1..{n} (the recipe's tokens)")
            if label != "-" and label not in FLOW_LABELS:
                raise GraphmieError("E013", where, detail=f"edge label {label!r} not in {FLOW_LABELS}")
            for ti, role in ((k, "from"), (h - 1, "to")):
                if ti not in ent_of:
                    raise GraphmieError("E012", where, detail=f"edge {label!r} {role} token {ti + 1} "
                                        f"({rows[ti][1]!r}), which is in no entity")
            a, b = ent_of[k], ent_of[h - 1]
            if label == "-":
                stats["unlabelled_edges"] += 1
                skipped.append({"line": ln, "head": h, "reason": "edge without label ('-')"})
                continue
            if (a.id, b.id, label) in seen:
                stats["duplicate_flows"] += 1
                continue
            seen.add((a.id, b.id, label))
            out_edges.setdefault(a.id, []).append((b.id, ln))
            doc.relations.append(Relation(id=f"f{len(doc.relations)}", head=a.id, tail=b.id, label=label,
                                          provenance=Provenance(source=src, page=b.step, model="gold")))
    if not allow_cycles:
        cycle = _find_cycle(out_edges)
        if cycle:
            names = {e.id: e.text for e in doc.entities}
            path = " -> ".join(repr(names[a]) for a, _ in cycle) + f" -> {names[cycle[0][0]]!r}"
            raise GraphmieError("E012", f"{src} line {cycle[-1][1]}", detail=f"the flow graph has a cycle: {path}")
    doc.meta["read_stats"] = dict(stats)
    if skipped:
        doc.meta["skipped_flows"] = skipped
    return doc


def _find_cycle(out_edges: dict[str, list[tuple[str, int]]]) -> list[tuple[str, int]] | None:
    """A cycle as ``[(entity id, line of its edge to the next one), ...]``, or None."""
    state: dict[str, int] = {}                     # 1 = on the current path, 2 = done
    for root in out_edges:
        if root in state:
            continue
        state[root] = 1
        stack, via = [(root, iter(out_edges[root]))], []      # via[j]: line of the edge stack[j] -> stack[j + 1]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                if via:
                    via.pop()
                continue
            child, ln = nxt
            if state.get(child) == 1:
                nodes = [s for s, _ in stack]
                i = nodes.index(child)
                return list(zip(nodes[i:], via[i:] + [ln]))
            if child not in state:
                state[child] = 1
                via.append(ln)
                stack.append((child, iter(out_edges.get(child, []))))
    return None


def read_conllu(path: str | Path, errors: list | None = None, allow_cycles: bool = False) -> list[Document]:
    """Every recipe of one CoNLL-U file. A bad recipe raises, unless ``errors`` is a list: then its
    error is appended there and the other recipes are still read."""
    path = Path(path)
    docs = []
    for k, block in enumerate(_blocks(path)):
        try:
            docs.append(_recipe(block, str(path), f"{path.stem}-{k:03d}", allow_cycles))
        except GraphmieError as e:
            if errors is None:
                raise
            errors.append(str(e))
    return docs


def read_conll03(path: str | Path, errors: list | None = None) -> list[Document]:
    """The tagger files (``TOKEN POS CHUNK LABEL``): recipes with entities and no flows (the same
    sentence-steps; a line without 4 columns -> ``E004``, an unknown tag -> ``E013``)."""
    path = Path(path)
    docs = []
    for k, block in enumerate(_blocks(path)):
        rows = []
        try:
            for i, (ln, line) in enumerate(block):
                cols = line.split("\t")
                if len(cols) != 4:
                    raise GraphmieError("E004", f"{path} line {ln}", detail=f"{len(cols)} tab-separated columns, "
                                        "expected 4 (TOKEN POS CHUNK LABEL)")
                rows.append((ln, f"{i + 1}\t{cols[0]}\t_\t{cols[1]}\t{cols[3]}\t_\t0\troot\t_\t_"))
            doc = _recipe(rows, str(path), f"{path.stem}-{k:03d}", allow_cycles=True)
        except GraphmieError as e:
            if errors is None:
                raise
            errors.append(str(e))
            continue
        doc.meta["dataset"] = "recipe_fg_en (tagger)"
        docs.append(doc)
    return docs


def conllu_paths(folder: str | Path) -> list[Path]:
    """The corpus' CoNLL-U files: ``folder`` itself (a file), ``folder/*.conllu`` or
    ``folder/Parser/*.conllu``, sorted."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise GraphmieError("E001", folder)
    for d in (folder, folder / "Parser"):
        paths = sorted(d.glob("*.conllu"))
        if paths:
            return paths
    raise GraphmieError("E016", folder, detail="no *.conllu files here or under Parser/")


def read_corpus(folder: str | Path, errors: list | None = None, allow_cycles: bool = False) -> list[Document]:
    """Every recipe under ``folder`` (see :func:`conllu_paths`); ``errors`` as in :func:`read_conllu`."""
    return [d for p in conllu_paths(folder) for d in read_conllu(p, errors, allow_cycles)]


def to_wikihow(doc: Document) -> Document:
    """A copy of a recipe document in wikiHow-FG's labels: entity types by :data:`ENTITY_MAP`
    (token tags too), flow labels by :data:`FLOW_MAP`."""
    out = copy.deepcopy(doc)
    for t in out.tokens:
        if t.tag and t.tag != "O":
            pos, _, typ = t.tag.partition("-")
            t.tag = f"{pos}-{ENTITY_MAP[typ]}"
    for e in out.entities:
        e.label = ENTITY_MAP[e.label]
    for r in out.relations:
        r.label = FLOW_MAP[r.label]
    out.meta["labels"] = "wikihow_fg (mapped)"
    return out
