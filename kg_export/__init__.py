"""Knowledge-graph export: one fact graph per document, written as RDF (Turtle, N-Triples,
N-Quads, TriG, JSON-LD) with PROV-O provenance, as Cypher / Neo4j import CSV, or loaded
into Oxigraph (SPARQL), LadybugDB (embedded Cypher) or a Neo4j server over bolt.

``serialize(doc, fmt)`` renders one document; for many documents use the streaming
writers in :mod:`kg_export.rdf` and :mod:`kg_export.cypher`.
"""
from __future__ import annotations

from graphmie.document import Document

FORMATS = ("ttl", "nt", "nq", "trig", "jsonld", "cypher")


def serialize(doc: Document, fmt: str) -> str:
    """One document in ``fmt`` (ttl, nt, nq, trig, jsonld, cypher), as text."""
    if fmt == "cypher":
        from .cypher import serialize_cypher

        return serialize_cypher(doc)
    from .rdf import WRITERS, serialize_rdf

    if fmt not in WRITERS:
        from graphmie.errors import GraphmieError

        raise GraphmieError("E022", None, name="KG format", value=fmt, choices=", ".join(FORMATS))
    return serialize_rdf(doc, fmt)


__all__ = ["serialize", "FORMATS"]
