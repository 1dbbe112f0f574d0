"""``graphmie export`` and ``graphmie query --store``.

``export`` reads saved results (the ``<stem>.json`` files ``extract`` writes, or folders of
them) one at a time and streams each into every destination asked for: a file in an RDF
format or Cypher (``--format F --out FILE``, stdout without ``--out``), a Neo4j import
bundle (``--format neo4j-csv --out DIR``), an Oxigraph store (``--store DIR``), a
LadybugDB database (``--ladybug DIR``) or a Neo4j server (``--bolt URI``). A bad result
file is reported with its path and the problem and the batch goes on. Files are written
to a temporary name and renamed at the end, so an output is complete or absent.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from graphmie.document import Document
from graphmie.errors import GraphmieError
from graphmie.io import read_json

from .facts import check_document, document_facts

_NOT_RESULTS = {"report.json", "run.json"}


def iter_result_files(paths: list[Path]) -> Iterator[tuple[Path, bool]]:
    """``(file, explicit)``: files as given, and the ``*.json`` in folders (sorted)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                if f.name not in _NOT_RESULTS:
                    yield f, False
        else:
            yield p, True


def load_result(path: Path) -> Document | None:
    """A saved document, or a GraphmieError naming the file and the problem. Returns None
    for JSON that is not a document at all (only skipped when found in a folder)."""
    data = read_json(path)
    if not isinstance(data, dict) or "kind" not in data or "entities" not in data:
        return None
    if data.get("kind") not in ("form", "post", "procedure"):
        raise GraphmieError("E022", path, name="'kind'", value=data.get("kind"), choices="form, post, procedure")
    try:
        doc = Document.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise GraphmieError("E004", path, detail=f"not a graphmie result document ({type(e).__name__}: {e})") from None
    if not isinstance(doc.id, str) or not isinstance(doc.source, str):
        raise GraphmieError("E019", path, detail="'id' and 'source' must be strings")
    check_document(doc, path)
    try:  # a dry run of the fact graph, so a bad value fails here and not half-way through a file
        for _ in document_facts(doc):
            pass
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise GraphmieError("E019", path, detail=f"a value cannot be exported ({type(e).__name__}: {e})") from None
    return doc


class _Discard(Exception):
    """Raised inside :func:`atomic_text_file` to drop the file instead of renaming it into place."""


@contextlib.contextmanager
def atomic_text_file(path: Path):
    """A text file written under a temporary name and renamed into place on success (with the
    permissions an ordinary new file gets); nothing is left on failure or :class:`_Discard`."""
    from graphmie.io import file_mode

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_command(args) -> int:
    fmt, out = getattr(args, "format", None), getattr(args, "out", None)
    if not (fmt or args.store or args.ladybug or args.bolt):
        raise GraphmieError("E030", None, detail="nothing to do: give --format (with --out), --store, --ladybug "
                                                 "or --bolt")
    if fmt == "neo4j-csv" and out is None:
        raise GraphmieError("E030", None, detail="--format neo4j-csv needs --out DIR")
    if out is not None and not fmt:
        raise GraphmieError("E030", None, detail="--out needs --format")
    if fmt == "neo4j-csv" and out.exists() and not out.is_dir():
        raise GraphmieError("E030", out, detail="--format neo4j-csv writes a folder, and --out is a file")
    if fmt and fmt != "neo4j-csv" and out is not None and out.is_dir():
        raise GraphmieError("E030", out, detail=f"--format {fmt} writes one file, and --out is a folder")
    log = sys.stderr
    try:
        ok, failed, skipped = _export(args, fmt, out, log)
    except _Discard as d:                 # nothing exported: no half-empty output file either
        ok, (failed, skipped) = 0, d.args
    summary = {"ok": ok, "failed": len(failed), "skipped": len(skipped), "skipped_files": skipped}
    print(json.dumps(summary), file=sys.stderr if (fmt and not out) else sys.stdout)
    if ok == 0 and not failed:
        raise GraphmieError("E007", None, detail="no result documents found")
    return 0 if not failed else 1


def _export(args, fmt, out, log) -> tuple[int, list, list]:
    """Stream every result into every sink; returns (documents exported, failures, skipped files)."""
    sinks, closers = [], []
    with contextlib.ExitStack() as stack:
        if fmt == "neo4j-csv":
            from .cypher import Neo4jCsvWriter

            w = Neo4jCsvWriter(out)
            sinks.append(w.write)
            closers.append(w.close)
        elif fmt:
            fh = stack.enter_context(atomic_text_file(out)) if out else sys.stdout
            if fmt == "cypher":
                from .cypher import CypherScriptWriter

                w = CypherScriptWriter(fh)
            else:
                from .rdf import WRITERS

                w = WRITERS[fmt](fh)
            sinks.append(w.write)
            closers.append(w.close)
        if args.store:
            from .store import OxigraphStore

            st = OxigraphStore(args.store)
            sinks.append(st.add_document)
            stack.callback(st.close)
        if args.ladybug:
            from .cypher import LadybugStore

            lb = LadybugStore(args.ladybug)
            sinks.append(lb.add_document)
            stack.callback(lb.close)
        if args.bolt:
            from .cypher import BoltWriter

            password = args.password or os.environ.get("NEO4J_PASSWORD")
            if not password:
                raise GraphmieError("E030", args.bolt, detail="give --password or set NEO4J_PASSWORD")
            bw = BoltWriter(args.bolt, args.user, password)
            sinks.append(bw.add_document)
            stack.callback(bw.close)

        ok, failed, skipped = 0, [], []
        from tqdm import tqdm

        for path, explicit in tqdm(list(iter_result_files(args.results)), desc="export", unit="doc",
                                   file=sys.stderr, disable=not log.isatty()):
            try:
                doc = load_result(path)
                if doc is None:
                    if explicit:
                        raise GraphmieError("E004", path, detail="not a graphmie result document "
                                                                 "(needs 'kind', 'id', 'source', 'entities')")
                    skipped.append(str(path))
                    print(f"skipped: {path}: JSON that is not a graphmie result document", file=log)
                    continue
                for sink in sinks:
                    sink(doc)
                ok += 1
            except GraphmieError as e:
                failed.append({"input": str(path), "code": e.code, "error": str(e)})
                print(f"error: {e}", file=log)
        if ok == 0 and fmt and fmt != "neo4j-csv" and out is not None:
            raise _Discard(failed, skipped)
        for c in closers:
            c()
    return ok, failed, skipped


# --- query ---------------------------------------------------------------------------------
def _term(t) -> str:
    import pyoxigraph as ox

    if t is None:
        return ""
    if isinstance(t, (ox.NamedNode, ox.Literal)):
        return t.value
    if isinstance(t, ox.BlankNode):
        return f"_:{t.value}"
    return str(t)


def query_command(args) -> int:
    import pyoxigraph as ox

    from .store import OxigraphStore

    text = args.query
    if text is None or text == "-":
        text = sys.stdin.read()
    if not text or not text.strip():
        raise GraphmieError("E007", None, detail="no SPARQL query given")
    store = OxigraphStore(args.store, read_only=True)
    try:
        res = store.query(text)
        fmt = getattr(args, "out_format", "table")
        out = sys.stdout
        if isinstance(res, ox.QueryBoolean):
            out.write(json.dumps({"boolean": bool(res)}) + "\n" if fmt == "json" else f"{bool(res)}\n".lower())
        elif isinstance(res, ox.QueryTriples):
            data = res.serialize(format=ox.RdfFormat.N_TRIPLES if fmt != "json" else ox.RdfFormat.JSON_LD)
            out.write(data.decode("utf-8"))
        elif fmt == "json":
            out.write(res.serialize(format=ox.QueryResultsFormat.JSON).decode("utf-8") + "\n")
        else:
            names = [v.value for v in res.variables]
            rows = [[_term(s[n]) for n in names] for s in res]
            if fmt == "csv":
                w = csv.writer(out)
                w.writerow(names)
                w.writerows(rows)
            else:
                _table(out, names, rows)
    finally:
        store.close()
    return 0


def _table(out, names: list[str], rows: list[list[str]], width: int = 60) -> None:
    def cell(s: str) -> str:
        s = s.replace("\n", "\\n").replace("\t", " ")
        return s if len(s) <= width else s[: width - 1] + "…"

    rows = [[cell(c) for c in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    out.write("  ".join(n.ljust(w) for n, w in zip(names, widths)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
