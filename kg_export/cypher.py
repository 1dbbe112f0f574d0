"""Property-graph exports of the fact graph: Cypher script, Neo4j import CSV, bolt, LadybugDB.

All of them run the same statements, one per node label or edge type::

    UNWIND $rows AS row MERGE (n:Entity {id: row.id}) SET n.text = row.text, ...
    UNWIND $rows AS row MATCH (a:Entity {id: row.src}) MATCH (b:Entity {id: row.dst})
        MERGE (a)-[r:RELATED {id: row.id}]->(b) SET r.label = row.label, ...

Rows are passed as parameters, never pasted into the statement text, so entity text can
hold quotes, braces, ``'})`` or Cypher keywords without changing a query. In the script
file the parameters are written with ``:param rows => [...]`` as Cypher literals
(strings escaped by :func:`cypher_literal`). ``MERGE`` on the content-derived ids makes
every load idempotent: loading a document twice, or again after a crash, adds nothing.

Batches of nodes are always flushed before batches of edges, so an edge's ``MATCH`` finds
its ends.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from graphmie.document import Document

from .facts import EDGE_SCHEMA, NODE_SCHEMA, Node, doc_key, document_facts

BATCH = 1000


def _uid(label: str, key: str) -> str:
    return f"{label.lower()}/{key}"


def node_statement(label: str) -> str:
    sets = ", ".join(f"n.{p} = row.{p}" for p, _ in NODE_SCHEMA[label])
    return f"UNWIND $rows AS row MERGE (n:{label} {{id: row.id}}) SET {sets}"


def edge_statement(etype: str) -> str:
    src, dst, props = EDGE_SCHEMA[etype]
    head = f"UNWIND $rows AS row MATCH (a:{src} {{id: row.src}}) MATCH (b:{dst} {{id: row.dst}}) "
    if any(p == "id" for p, _ in props):
        sets = ", ".join(f"r.{p} = row.{p}" for p, _ in props if p != "id")
        return head + f"MERGE (a)-[r:{etype} {{id: row.id}}]->(b) SET {sets}"
    return head + f"MERGE (a)-[:{etype}]->(b)"


NODE_STATEMENTS = {lbl: node_statement(lbl) for lbl in NODE_SCHEMA}
EDGE_STATEMENTS = {t: edge_statement(t) for t in EDGE_SCHEMA}

#: Neo4j: one uniqueness constraint per label (also the index MERGE uses)
NEO4J_SCHEMA = [f"CREATE CONSTRAINT graphmie_{lbl.lower()}_id IF NOT EXISTS FOR (n:{lbl}) REQUIRE n.id IS UNIQUE"
                for lbl in NODE_SCHEMA]


def ladybug_schema() -> list[str]:
    """LadybugDB (Kuzu dialect) needs typed tables before the load."""
    out = []
    for lbl, props in NODE_SCHEMA.items():
        cols = ", ".join(["id STRING"] + [f"{p} {t}" for p, t in props])
        out.append(f"CREATE NODE TABLE IF NOT EXISTS {lbl}({cols}, PRIMARY KEY(id))")
    for t, (src, dst, props) in EDGE_SCHEMA.items():
        cols = "".join(f", {p} {ty}" for p, ty in props)
        out.append(f"CREATE REL TABLE IF NOT EXISTS {t}(FROM {src} TO {dst}{cols})")
    return out


def document_rows(doc: Document) -> Iterator[tuple[str, str, dict]]:
    """``("node", label, row)`` / ``("edge", type, row)``; every row has every schema field."""
    for f in document_facts(doc):
        if type(f) is Node:
            row = {"id": _uid(f.label, f.key)}
            p = f.props
            for name, _ in NODE_SCHEMA[f.label]:
                v = p.get(name)
                row[name] = str(v) if v is not None and _ == "STRING" else v
            yield "node", f.label, row
        else:
            row = {"src": _uid(f.src_label, f.src), "dst": _uid(f.dst_label, f.dst)}
            for name, ty in EDGE_SCHEMA[f.type][2]:
                if name == "id":
                    row["id"] = f.uid
                else:
                    v = f.props.get(name)
                    row[name] = str(v) if v is not None and ty == "STRING" else v
            yield "edge", f.type, row


class Batcher:
    """Collects rows per statement; ``run(statement, rows)`` is called per full batch.
    Node batches are flushed before any edge batch."""

    def __init__(self, run: Callable[[str, list], None], batch_size: int = BATCH):
        self.run, self.batch_size = run, batch_size
        self.nodes: dict[str, list] = {}
        self.edges: dict[str, list] = {}

    def add(self, doc: Document) -> None:
        for kind, name, row in document_rows(doc):
            buf = (self.nodes if kind == "node" else self.edges).setdefault(name, [])
            buf.append(row)
            if len(buf) >= self.batch_size:
                if kind == "node":
                    self._flush_one(NODE_STATEMENTS[name], buf)
                else:
                    self.flush_nodes()
                    self._flush_one(EDGE_STATEMENTS[name], buf)

    def _flush_one(self, stmt: str, buf: list) -> None:
        if buf:
            self.run(stmt, list(buf))
            buf.clear()

    def flush_nodes(self) -> None:
        for name, buf in self.nodes.items():
            self._flush_one(NODE_STATEMENTS[name], buf)

    def flush(self) -> None:
        self.flush_nodes()
        for name, buf in self.edges.items():
            self._flush_one(EDGE_STATEMENTS[name], buf)


# --- Cypher script -------------------------------------------------------------------------
def cypher_literal(v) -> str:
    """A Cypher literal: strings double-quoted with every quote, backslash and control
    character escaped (JSON escapes are Cypher escapes); maps with identifier keys."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):            # Cypher's exponent takes no '+' sign: 1e16, not 1e+16
        return repr(v).replace("e+", "e") if math.isfinite(v) else "null"
    if isinstance(v, str):
        return _one_line(json.dumps(v, ensure_ascii=False))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)}: {cypher_literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(cypher_literal(x) for x in v) + "]"
    return _one_line(json.dumps(str(v), ensure_ascii=False))


#: characters other than \n and \r that end a line for some readers (Python's splitlines, editors)
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _one_line(literal: str) -> str:
    """A string literal kept on one line of the script: the Unicode line and paragraph separators
    (and NEL) are written as escapes, as JSON already writes the control characters."""
    for ch, esc in _LINE_BREAKS.items():
        literal = literal.replace(ch, esc)
    return literal


def _key(k: str) -> str:
    if k.isidentifier() and k.isascii():
        return k
    return "`" + k.replace("`", "``") + "`"


class CypherScriptWriter:
    """A ``cypher-shell`` script: constraints, then ``:param rows => [...]`` + ``UNWIND`` batches."""

    def __init__(self, fp: TextIO, batch_size: int = BATCH):
        self.fp = fp
        fp.write("// graphmie knowledge graph: run with  cypher-shell -f FILE  (idempotent: MERGE on ids)\n")
        for s in NEO4J_SCHEMA:
            fp.write(s + ";\n")
        self.batcher = Batcher(self._emit, batch_size)

    def _emit(self, stmt: str, rows: list) -> None:
        self.fp.write(":param rows => " + cypher_literal(rows) + "\n" + stmt + ";\n")

    def write(self, doc: Document) -> None:
        self.batcher.add(doc)

    def close(self) -> None:
        self.batcher.flush()


def serialize_cypher(doc: Document, batch_size: int = BATCH) -> str:
    buf = io.StringIO()
    w = CypherScriptWriter(buf, batch_size)
    w.write(doc)
    w.close()
    return buf.getvalue()


def _split_list_literal(text: str) -> list[str]:
    """The top-level items of a ``[ {...}, {...} ]`` literal, string-aware."""
    items, depth, start, i, n = [], 0, None, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                items.append(text[start:i + 1])
        i += 1
    return items


# --- neo4j-admin import CSV bundle ---------------------------------------------------------
_CSV_TYPE = {"STRING": "", "INT64": ":long", "DOUBLE": ":double"}


class Neo4jCsvWriter:
    """A folder for ``neo4j-admin database import full``: ``nodes_<Label>.csv`` (``id:ID``,
    properties, ``:LABEL``), ``rels_<TYPE>.csv`` (``:START_ID``, ``:END_ID``, ``:TYPE``,
    properties) and ``import.sh`` with the command. Streams rows; a document given twice is
    written once."""

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, tuple] = {}
        self.docs: set[str] = set()

    def _writer(self, kind: str, name: str):
        fw = self.files.get((kind, name))
        if fw is None:
            path = self.dir / f"{'nodes' if kind == 'node' else 'rels'}_{name}.csv"
            fh = open(path.with_suffix(".csv.tmp"), "w", newline="", encoding="utf-8")
            w = csv.writer(fh)
            if kind == "node":
                w.writerow(["id:ID"] + [p + _CSV_TYPE[t] for p, t in NODE_SCHEMA[name]] + [":LABEL"])
            else:
                props = EDGE_SCHEMA[name][2]
                w.writerow([":START_ID", ":END_ID", ":TYPE"] + [p + _CSV_TYPE[t] for p, t in props])
            fw = self.files[(kind, name)] = (fh, w, path)
        return fw[1]

    def write(self, doc: Document) -> None:
        dk = doc_key(doc)
        if dk in self.docs:
            return
        self.docs.add(dk)
        for kind, name, row in document_rows(doc):
            w = self._writer(kind, name)
            if kind == "node":
                w.writerow([row["id"]] + [_csv(row[p]) for p, _ in NODE_SCHEMA[name]] + [name])
            else:
                w.writerow([row["src"], row["dst"], name] + [_csv(row[p]) for p, _ in EDGE_SCHEMA[name][2]])

    def close(self) -> None:
        import os

        args = []
        for (kind, name), (fh, _w, path) in sorted(self.files.items()):
            fh.close()
            os.replace(path.with_suffix(".csv.tmp"), path)
            args.append(f"  --{'nodes' if kind == 'node' else 'relationships'}={path.name} \\\n")
        script = ("#!/bin/sh\n# Load into an empty Neo4j database (stop the database first):\n"
                  "#   sh import.sh [database]   (run from this folder)\n"
                  "neo4j-admin database import full \"${1:-neo4j}\" \\\n"
                  + "".join(args) +
                  "  --multiline-fields=true --skip-duplicate-nodes=true --overwrite-destination=false\n")
        from graphmie.io import atomic_write_text

        atomic_write_text(self.dir / "import.sh", script)


def _csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


# --- bolt (Neo4j server) -------------------------------------------------------------------
class BoltWriter:
    """Loads into a Neo4j server with the official driver: batched ``UNWIND`` transactions in
    managed write transactions (the driver retries transient errors), plus our own retry of
    lost connections with backoff. Idempotent (``MERGE`` on ids). ``driver`` may be given
    (tests use a fake one)."""

    def __init__(self, uri: str | None = None, user: str = "neo4j", password: str | None = None,
                 driver=None, database: str | None = None, batch_size: int = BATCH, retries: int = 3,
                 backoff: float = 1.0):
        if driver is None:
            from neo4j import GraphDatabase

            driver = None
            try:
                driver = GraphDatabase.driver(uri, auth=(user, password))
                driver.verify_connectivity()
            except Exception as e:  # noqa: BLE001 - unreachable server, bad credentials, bad URI
                if driver is not None:
                    driver.close()
                from graphmie.errors import GraphmieError

                raise GraphmieError("E017", uri, detail=f"cannot connect to Neo4j ({type(e).__name__}: "
                                                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
            self._own = True
        else:
            self._own = False
        self.driver, self.database, self.retries, self.backoff = driver, database, retries, backoff
        self.batches = 0
        for stmt in NEO4J_SCHEMA:
            self._run(stmt, None)
        self.batcher = Batcher(self._run, batch_size)

    def _run(self, stmt: str, rows) -> None:
        params = {} if rows is None else {"rows": rows}

        def work(tx):
            tx.run(stmt, params).consume()

        for attempt in range(self.retries + 1):
            try:
                kw = {"database": self.database} if self.database else {}
                with self.driver.session(**kw) as session:
                    session.execute_write(work)
                self.batches += 1
                return
            except Exception as e:  # noqa: BLE001
                if attempt >= self.retries or not _retryable(e):
                    raise
                time.sleep(self.backoff * 2 ** attempt)

    def add_document(self, doc: Document) -> None:
        self.batcher.add(doc)

    def close(self) -> None:
        self.batcher.flush()
        if self._own:
            self.driver.close()


def _retryable(e: Exception) -> bool:
    try:
        from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(e, (ServiceUnavailable, SessionExpired, TransientError, ConnectionError))


# --- LadybugDB (embedded) ------------------------------------------------------------------
class LadybugStore:
    """An embedded property-graph database (LadybugDB, Kuzu's Cypher) loaded with the same
    ``UNWIND``/``MERGE`` statements as Neo4j, for users without a Neo4j server."""

    def __init__(self, path: str | Path, batch_size: int = BATCH):
        try:
            import ladybug
        except ImportError as e:  # pragma: no cover
            from graphmie.errors import GraphmieError

            raise GraphmieError("E015", path, detail=f"ladybug ({e})") from None
        from graphmie.errors import GraphmieError

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = ladybug.Database(str(self.path))
        except RuntimeError as e:           # a folder, or a file that is not a database
            raise GraphmieError("E002", path, detail=f"not a LadybugDB database "
                                f"({str(e).removeprefix('Runtime exception: ')})") from None
        self.conn = ladybug.Connection(self.db)
        for stmt in ladybug_schema():
            self.conn.execute(stmt)
        self.batcher = Batcher(self._run, batch_size)

    def _run(self, stmt: str, rows: list) -> None:
        # Kuzu types a parameter from its values and cannot type a column that is null in
        # every row of the batch: such columns are set to a literal NULL instead.
        empty = [k for k in rows[0] if all(r[k] is None for r in rows)]
        if empty:
            stmt = re.sub(r"row\.(" + "|".join(empty) + r")\b", "NULL", stmt)
            rows = [{k: v for k, v in r.items() if k not in empty} for r in rows]
        self.conn.execute(stmt, {"rows": rows})

    def add_document(self, doc: Document) -> None:
        self.batcher.add(doc)

    def add_documents(self, docs: Iterable[Document]) -> int:
        n = 0
        for d in docs:
            self.add_document(d)
            n += 1
        self.flush()
        return n

    def flush(self) -> None:
        self.batcher.flush()

    def load_script(self, text: str) -> int:
        """Run a script from :class:`CypherScriptWriter` here: each ``:param rows => LITERAL``
        is evaluated by the database (``RETURN LITERAL``) and passed to the statement after
        it; Neo4j constraint lines are skipped (the tables already exist). Returns batches run."""
        self.flush()
        rows, n = None, 0
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if line.startswith(":param rows => "):
                # each map is evaluated on its own: Kuzu cannot type a list literal whose maps
                # mix null and non-null values in one field
                rows = [self.conn.execute("RETURN " + m).get_next()[0]
                        for m in _split_list_literal(line[len(":param rows => "):])]
            elif line.startswith("UNWIND $rows") and rows is not None:
                self._run(line.rstrip(";"), rows)
                rows, n = None, n + 1
        return n

    def query(self, cypher: str, params: dict | None = None) -> list[list]:
        self.flush()
        res = self.conn.execute(cypher, params or {})
        rows = []
        while res.has_next():
            rows.append(res.get_next())
        return rows

    def close(self) -> None:
        self.flush()
        self.conn.close()
        self.db.close()
