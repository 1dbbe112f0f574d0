"""The embedded default store: Oxigraph (pyoxigraph) on disk, queried with SPARQL 1.1.

``graphmie extract ... --store DIR`` and ``graphmie export ... --store DIR`` load documents
here; ``graphmie query --store DIR 'SELECT ...'`` asks it. Queries see the union of all
named graphs as their default graph (``GRAPH ?g {...}`` still reaches single graphs: the
document graphs and the per-assertion graphs, see :mod:`kg_export.rdf`).

``add_document`` replaces what the store held for that document (its document graph and
the assertion graphs listed there) in one transaction (one SPARQL update), so re-extracting a document updates
it, and loading it again, or again after a crash, adds no duplicate (quads are a set and the
ids are derived from content). ``bulk_load`` streams many documents through Oxigraph's
bulk loader (faster, not transactional: for new stores).
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterable

from graphmie.document import Document
from graphmie.errors import GraphmieError

from .rdf import PREFIXES, NQuadsWriter, document_iri


def _unshift(message: str, prefix_len: int) -> str:
    """Oxigraph's ``error at LINE:COL`` with the column on line 1 counted without the prologue."""
    m = re.search(r"at (\d+):(\d+)", message)
    if not m or m.group(1) != "1":
        return message
    return message[:m.start()] + f"at 1:{max(int(m.group(2)) - prefix_len, 1)}" + message[m.end():]


PROV_DERIVED = "http://www.w3.org/ns/prov#wasDerivedFrom"


class OxigraphStore:
    def __init__(self, path: str | Path, read_only: bool = False):
        import pyoxigraph as ox

        self.path = Path(path)
        try:
            if read_only:
                if not self.path.exists():
                    raise GraphmieError("E001", self.path)
                self.store = ox.Store.read_only(str(self.path))
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self.store = ox.Store(str(self.path))
        except OSError as e:
            raise GraphmieError("E002", self.path, detail=f"cannot open the Oxigraph store ({e})") from None
        self._ox = ox

    # --- loading ---------------------------------------------------------------------------
    @staticmethod
    def _nquads(docs: Iterable[Document]) -> bytes:
        buf = io.StringIO()
        w = NQuadsWriter(buf)
        for d in docs:
            w.write(d)
        return buf.getvalue().encode("utf-8")

    def add_document(self, doc: Document, replace: bool = True) -> None:
        """Load one document, replacing its earlier version, in ONE transaction (a single SPARQL
        update: delete the old assertion graphs and document graph, insert the new quads), so a
        crash at any point leaves the store holding either the old version or the new one."""
        ox = self._ox
        by_graph: dict[str, list[str]] = {}
        for q in ox.parse(self._nquads([doc]), format=ox.RdfFormat.N_QUADS):
            g = "" if isinstance(q.graph_name, ox.DefaultGraph) else str(q.graph_name)
            by_graph.setdefault(g, []).append(f"{q.subject} {q.predicate} {q.object} .")
        ops = []
        if replace:
            g = document_iri(doc)
            ops.append(f"DELETE {{ GRAPH ?a {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{g}> {{ ?a <{PROV_DERIVED}> <{g}> }} "
                       f"GRAPH ?a {{ ?s ?p ?o }} }}")
            ops.append(f"DROP SILENT GRAPH <{g}>")
        body = " ".join(" ".join(ts) if not g else f"GRAPH {g} {{ {' '.join(ts)} }}" for g, ts in by_graph.items())
        ops.append(f"INSERT DATA {{ {body} }}")
        self.store.update(" ;\n".join(ops))

    def remove_document(self, doc: Document) -> int:
        """Drop the document's graph and its assertion graphs; returns how many graphs."""
        ox = self._ox
        g = ox.NamedNode(document_iri(doc))
        q = f"SELECT DISTINCT ?a WHERE {{ GRAPH <{g.value}> {{ ?a <{PROV_DERIVED}> <{g.value}> }} }}"
        graphs = [s["a"] for s in self.store.query(q)] + [g]
        n = 0
        for gr in graphs:
            if self.store.contains_named_graph(gr):
                self.store.remove_graph(gr)
                n += 1
        return n

    def bulk_load(self, docs: Iterable[Document]) -> int:
        """Stream documents to a temporary N-Quads file, then hand it to Oxigraph's parallel
        bulk loader (memory stays flat on both sides); returns the number of documents."""
        import os
        import tempfile

        ox = self._ox
        fd, tmp = tempfile.mkstemp(prefix="graphmie_bulk_", suffix=".nq")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20) as fh:
                w = NQuadsWriter(fh)
                n = 0
                for d in docs:
                    w.write(d)
                    n += 1
            self.store.bulk_load(path=tmp, format=ox.RdfFormat.N_QUADS)
        finally:
            os.unlink(tmp)
        return n

    # --- querying --------------------------------------------------------------------------
    def query(self, sparql: str, union_default_graph: bool = True):
        """Run SPARQL; returns pyoxigraph's QuerySolutions / QueryBoolean / QueryTriples.
        Common prefixes (gm, prov, rdf, rdfs, xsd) are predeclared; a syntax error's line and
        column are those of the query as given."""
        prologue = "".join(f"PREFIX {p}: <{ns}> " for p, ns in PREFIXES.items())
        try:
            return self.store.query(prologue + sparql, use_default_graph_as_union=union_default_graph)
        except SyntaxError as e:
            raise GraphmieError("E023", "query", detail=_unshift(str(e), len(prologue))) from None
        except OSError as e:
            raise GraphmieError("E024", "query", detail=str(e)) from None

    def __len__(self) -> int:
        return len(self.store)

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        try:
            self.store.flush()
        except (OSError, RuntimeError):
            pass  # read-only stores cannot be flushed
        del self.store

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
