"""Entity types for MNRE pairs: spaCy NER labels mapped to MNRE's argument types, the relation labels'
type signatures, and which pairs of types can hold a relation.

MNRE's labels are ``/head_type/tail_type/name`` with types ``per``, ``org``, ``loc`` and ``misc``; its
records carry no entity types, so a pair's types come from a type source (``model.type_source``), the same
at training and at prediction time:

* ``spacy``: spaCy's NER over the post (the entity the argument overlaps); an entity spaCy does not tag gets
  ``None`` (written ``entity`` in a marker, compatible with every relation).
* ``mner``: the shipped Twitter MNER tagger (``model.type_tagger``, :meth:`graphmie.methods.mner.MNER.type_spans`)
  asked which of its types is most probable for exactly the argument's words — every argument within
  the tagger's window gets a type (one past it: ``None``).
"""
from __future__ import annotations

import functools

#: spaCy (OntoNotes) labels -> MNRE argument types; any other spaCy label -> ``misc``
SPACY_TO_MNRE = {"PERSON": "per", "ORG": "org", "GPE": "loc", "LOC": "loc", "FAC": "loc"}
TYPES = ("per", "org", "loc", "misc")
#: where argument types come from (``model.type_source``)
TYPE_SOURCES = ("spacy", "mner")
#: the MNER tagger's types -> MNRE argument types
MNER_TO_MNRE = {"PER": "per", "ORG": "org", "LOC": "loc", "OTHER": "misc", "MISC": "misc"}
#: MNRE labels that hold in both directions (the reverse of a pair with one of them has the same label)
SYMMETRIC = frozenset({"/per/per/peer", "/per/per/couple", "/per/per/alternate_names", "/org/org/alternate_names",
                       "/per/per/siblings", "/per/per/neighbor", "/per/per/alumi"})
#: the word written in a typed marker for each type (``None``: untyped)
TYPE_WORDS = {"per": "person", "org": "organization", "loc": "location", "misc": "other", None: "entity"}


def mnre_type(spacy_label: str | None) -> str | None:
    """MNRE type of a spaCy entity label (``None`` stays ``None``)."""
    if not spacy_label:
        return None
    return SPACY_TO_MNRE.get(spacy_label, "misc")


def span_type(ents, start: int, end: int) -> str | None:
    """MNRE type of the character span [start, end): the first spaCy entity (``.start_char``,
    ``.end_char``, ``.label_``) it overlaps, else ``None``."""
    for e in ents:
        if e.start_char < end and start < e.end_char:
            return mnre_type(e.label_)
    return None


def signature(label: str) -> tuple[str, str] | None:
    """(head type, tail type) of an MNRE label such as ``/per/org/member_of``; ``None`` for "None"."""
    parts = label.split("/")
    if len(parts) != 4 or parts[1] not in TYPES or parts[2] not in TYPES:
        return None
    return parts[1], parts[2]


def reverse_label(label: str) -> str:
    """The label MNRE's convention implies for the reversed pair: the same for a symmetric label, else "None"
    (MNRE has no inverse labels)."""
    return label if label in SYMMETRIC else "None"


def compatible(label: str, head_type: str | None, tail_type: str | None) -> bool:
    """Whether a pair of these types can hold ``label`` (an unknown type is compatible with anything)."""
    sig = signature(label)
    if sig is None:
        return True
    return (head_type is None or head_type == sig[0]) and (tail_type is None or tail_type == sig[1])


@functools.lru_cache(maxsize=2)
def type_tagger(name: str):
    """The MNER tagger ``name`` (a shipped name, a weights file or a run folder), loaded once."""
    from ...engine.checkpoint import load_checkpoint
    from ..mner import MNER

    return MNER.from_checkpoint(load_checkpoint(name, name, "mner"))


def tagger_types(items: list[tuple[list[str], list[tuple[int, int]]]], tagger: str) -> list[list[str | None]]:
    """MNRE types of the word spans of each ``(words, spans)`` from MNER tagger ``tagger`` (its most probable
    type for exactly those words; ``None`` for a span past the tagger's window)."""
    return [[MNER_TO_MNRE.get(t, "misc") if t else None for t, _ in row]
            for row in type_tagger(tagger).type_spans(items)]
