"""Coded errors, in the manner of spaCy's ``Errors``: one message template per code.

Every error that reaches a user names the file (or record) and the problem, and carries a
stable code that means exactly one problem, so it can be searched for in the docs and in
issues. A template's fields are filled by keyword: ``GraphmieError("E020", path, key="epohcs",
section="training", hint="; did you mean 'epochs'?")``. The ``detail`` field, where a template
has one, says which part of the input is wrong and how; it never changes what the code means.
"""
from __future__ import annotations

from pathlib import Path


class Errors:
    # --- files and inputs ---------------------------------------------------------------
    E001 = "file not found"
    E002 = "file could not be read: {detail}"
    E003 = "malformed JSON: {detail}"
    E004 = "not in the expected format: {detail}"
    E005 = "not an image, or an image format that cannot be decoded: {detail}"
    E006 = "image too large: {detail}"
    E007 = "empty input: {detail}"
    E008 = "unsupported input type: {detail}"
    E009 = "value out of range: {detail}"
    E012 = "record does not match its data: {detail}"
    E013 = "unknown label: {detail}"
    E014 = "span outside the text: {detail}"
    E016 = "dataset folder not in the expected layout: {detail}"
    E018 = "missing field: {detail}"
    E019 = "field of the wrong type: {detail}"
    E022 = "unknown choice for {name}: {value!r} (choose from {choices})"
    E023 = "invalid SPARQL query: {detail}"
    E024 = "SPARQL evaluation failed: {detail}"
    E032 = "input over a resource limit: {detail}"
    E033 = "auxiliary knowledge does not line up with its split: {detail}"
    E035 = "password-protected document: {detail}"
    # --- weights and checkpoints --------------------------------------------------------
    E010 = "not a readable weight file: {detail}"
    E025 = "weights do not fit the model: {detail}"
    E026 = "checkpoint has no readable sidecar: {detail}"
    E027 = "checkpoint is for another method or format: {detail}"
    E028 = "checkpoint weights and sidecar do not belong together: {detail}"
    # --- configuration and command lines ------------------------------------------------
    E011 = "configuration file is not valid TOML: {detail}"
    E020 = "unknown configuration key {key!r} in {section}{hint}"
    E021 = "configuration key {key!r} in {section} must be {expected}, not {value!r}"
    E029 = "override is not KEY=VALUE: {detail}"
    E030 = "command-line options do not fit together: {detail}"
    E031 = "the weights' training record lacks what this needs: {detail}"
    # --- environment --------------------------------------------------------------------
    E015 = "missing optional dependency: {detail}"
    E017 = "server unreachable: {detail}"
    E034 = "the LLM backend failed: {detail}"


class GraphmieError(Exception):
    """An error about a specific input: ``[E003] path/to/file.json: malformed JSON: ...``."""

    def __init__(self, code: str, source: str | Path | None = None, **fields):
        template = getattr(Errors, code)
        self.code = code
        self.source = str(source) if source is not None else None
        self.fields = fields
        if fields:
            self.problem = template.format(**fields)
        else:                       # a template whose fields were not given: its fixed part only
            self.problem = template.split(":")[0].split("{")[0].strip()
        where = f"{self.source}: " if self.source else ""
        super().__init__(f"[{code}] {where}{self.problem}")


def closest(name: str, known) -> str:
    """``"; did you mean 'x'?"`` for the known name closest to ``name``, or ``""``."""
    import difflib

    m = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f"; did you mean {m[0]!r}?" if m else f" (known: {', '.join(sorted(map(str, known)))})"
