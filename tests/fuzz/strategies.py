"""Hostile-input strategies shared by the fuzz tests: JSON values with odd text (lone surrogates,
U+2028, NUL, quotes), odd numbers (NaN, inf, huge, negative, bools) and near-miss structures."""
from hypothesis import strategies as st

ODD_TEXT = st.sampled_from(["", " ", "\ud800", "a\udcff", "\u2028", "\x00", "'\"\\", "}\n{", "\ufeffx", "é",
                            "Bob", "Taylor Swift", "question", "answer", "3", "-1"])
TEXT = st.one_of(ODD_TEXT, st.text(max_size=12))
NUMBER = st.one_of(st.integers(-5, 5), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                   st.booleans())
SCALAR = st.one_of(st.none(), NUMBER, TEXT)
JSON = st.recursive(SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                   st.dictionaries(TEXT, kids, max_size=4)), max_leaves=12)
BOX = st.one_of(st.lists(NUMBER, min_size=4, max_size=4), JSON)

WORD = st.fixed_dictionaries({"box": BOX, "text": TEXT})
ENTITY = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(0, 4), st.sampled_from(["0", "1", [1], None, True, 2.5])),
     "box": BOX, "label": st.one_of(st.sampled_from(["question", "answer", "header", "other"]), SCALAR),
     "text": TEXT, "words": st.one_of(st.lists(WORD, max_size=3), JSON),
     "linking": st.one_of(st.lists(st.lists(st.one_of(st.integers(0, 4), TEXT, JSON), min_size=2, max_size=2),
                                   max_size=2), JSON)})
FUNSD = st.one_of(JSON, st.fixed_dictionaries({"form": st.one_of(st.lists(ENTITY, max_size=4), JSON)}))


POST_TEXT = st.one_of(TEXT, st.sampled_from(["Ann met Bob in Rome .", " Bob \ud800 ", "\udcff\udcfe Bob"]))
POST = st.one_of(JSON, st.fixed_dictionaries(
    {"text": POST_TEXT},
    optional={"caption": SCALAR, "entities": st.one_of(st.lists(st.one_of(
        TEXT, st.fixed_dictionaries({"start": NUMBER, "end": NUMBER, "label": SCALAR})), max_size=3), JSON),
        "pairs": st.one_of(st.lists(st.lists(TEXT, min_size=1, max_size=3), max_size=3), JSON),
        "detections": st.one_of(st.lists(st.fixed_dictionaries({"box": BOX, "label": SCALAR}), max_size=3), JSON),
        "image": SCALAR}))


STEP = st.one_of(TEXT, JSON, st.fixed_dictionaries({"text": TEXT}, optional={"index": st.one_of(NUMBER, TEXT),
                                                                               "image": SCALAR}))
PROCEDURE = st.one_of(JSON, st.fixed_dictionaries({"steps": st.one_of(st.lists(STEP, max_size=4), JSON)},
                                                  optional={"title": SCALAR, "id": SCALAR}))
