"""The extract loop shared by every task: read, predict, write, never lose the batch.

Each input is read and predicted on its own; a failure is recorded with its file and
problem and the batch goes on. All outputs of one input are rendered in memory first
and then written atomically, so an output file is either complete or absent. Every input
gets its own file names: a name already used in this batch (by another input's stem or by
one of its extra files, or ``report.json``) gets a ``_2``, ``_3``... suffix, so no output of
one input ever overwrites another's.
"""
from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .document import Document
from .errors import GraphmieError
from .io import atomic_write_bytes, atomic_write_text

#: the KG formats ``extract`` writes beside the JSON by default
DEFAULT_FORMATS = ("ttl", "cypher")
REPORT = "report.json"


@dataclass
class BatchReport:
    done: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": len(self.done), "failed": len(self.failed), "outputs": self.done, "errors": self.failed}


def safe_stem(name: str) -> str:
    stem = Path(name).stem if not name.startswith("inline:") else name.replace(":", "_")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:120] or "input"


def document_json(doc: Document) -> bytes:
    """UTF-8 JSON of a document; text that cannot be UTF-8 (lone surrogates) is kept as \\u escapes."""
    d = doc.to_dict()
    try:
        return json.dumps(d, indent=2, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(d, indent=2, ensure_ascii=True).encode("ascii")


def render_outputs(task, result, formats=DEFAULT_FORMATS) -> dict[str, bytes]:
    """All files for one result, in memory: ``{suffix: bytes}``."""
    from kg_export import serialize

    doc = result.doc
    files = {".json": document_json(doc)}
    for fmt in formats:
        files[f".{fmt}"] = serialize(doc, fmt).encode("utf-8")
    files.update(task.render(result))
    return files


def _unique_stem(stem: str, suffixes, taken: set[str]) -> str:
    cand, k = stem, 1
    while any(f"{cand}{s}" in taken for s in suffixes):
        k += 1
        cand = f"{stem}_{k}"
    return cand


def prepare_out_dir(out_dir) -> Path:
    """``out_dir``, created; a file there is a coded error."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise GraphmieError("E030", out_dir, detail="--out must be a folder, and this is a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def place_outputs(name: str, suffixes, out_dir: Path, taken: set[str], put) -> list[str]:
    """Pick the input's file stem (its name, made unique against ``taken``) and ``put(suffix,
    path)`` each of its files there; returns the paths. Every engine names files through this,
    in input order, so the same inputs get the same file names."""
    stem = _unique_stem(safe_stem(name), suffixes, taken)
    written = []
    for suffix in suffixes:
        path = out_dir / f"{stem}{suffix}"
        put(suffix, path)
        taken.add(path.name)
        written.append(str(path))
    return written


def doc_counts(doc: Document) -> dict:
    return {"entities": len(doc.entities), "relations": len(doc.relations), "groundings": len(doc.groundings)}


def failure_entry(name: str, e: BaseException) -> dict:
    """The report entry of a failed input: its coded error; an unexpected bug is E999 with its traceback."""
    if isinstance(e, GraphmieError):
        return {"input": name, "code": e.code, "error": str(e)}
    return {"input": name, "code": "E999", "error": f"{name}: internal error: {e!r}",
            "traceback": "".join(traceback.format_exception(e, limit=5))}


def write_report(out_dir: Path, report: BatchReport) -> None:
    atomic_write_text(Path(out_dir) / REPORT, json.dumps(report.to_dict(), indent=2))


def run_extract(nlp, items, out_dir: Path, formats=DEFAULT_FORMATS, store=None, progress: bool = True) -> BatchReport:
    """Run ``nlp`` (a :class:`graphmie.api.Pipeline`) over ``items`` and write every input's files."""
    out_dir = prepare_out_dir(out_dir)
    report = BatchReport()
    items = nlp.inputs(items)
    taken: set[str] = {REPORT}
    for res in tqdm(nlp.pipe(items, errors="return", artifacts=True), total=len(items),
                    desc=f"extract ({nlp.name})", unit="doc", disable=not progress):
        try:
            if res.error is not None:
                raise res.error
            files = render_outputs(nlp.task, res, formats)
            written = place_outputs(res.name, files, out_dir, taken,
                                    lambda suffix, path: atomic_write_bytes(path, files[suffix]))
            if store is not None:
                store.add_document(res.doc)
            report.done.append({"input": res.name, "files": written, **doc_counts(res.doc)})
        except Exception as e:  # noqa: BLE001 - an unexpected bug must not lose the batch either
            report.failed.append(failure_entry(res.name, e))
    write_report(out_dir, report)
    return report
