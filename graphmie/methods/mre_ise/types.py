"""Entity types for MNRE pairs: spaCy NER labels mapped to MNRE's argument types, the relation labels'
type signatures, and which pairs of types can hold a relation.

MNRE's labels are ``/head_type/tail_type/name`` with types ``per``, ``org``, ``loc`` and ``misc``; its
records carry no entity types, so a pair's types come from spaCy's NER over the post (the entity it
overlaps), the same at training and at prediction time. An entity spaCy does not tag gets ``None``
(written ``entity`` in a marker, compatible with every relation).
"""
from __future__ import annotations

#: spaCy (OntoNotes) labels -> MNRE argument types; any other spaCy label -> ``misc``
SPACY_TO_MNRE = {"PERSON": "per", "ORG": "org", "GPE": "loc", "LOC": "loc", "FAC": "loc"}
TYPES = ("per", "org", "loc", "misc")
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
