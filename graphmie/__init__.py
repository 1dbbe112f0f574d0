"""graphmie: graph-centric multimodal relation extraction.

Forms, posts and procedural documents become graphs (layout graphs, cross-modal scene
graphs, step graphs); PyG models extract relations and groundings; ``kg_export`` turns
them into RDF and property graphs.

    import graphmie
    nlp = graphmie.load("form")          # "post", "entity", "procedure"
    doc = nlp("scan.png")
"""
__version__ = "0.1.0"

from .api import Pipeline, load  # noqa: E402
from .document import (SCHEMA_VERSION, Box, Document, Entity, Grounding, Page, Provenance, Region,  # noqa: E402
                       Relation, Step, Token)
from .errors import GraphmieError  # noqa: E402

__all__ = ["Box", "Document", "Entity", "Grounding", "Page", "Provenance", "Region", "Relation", "Step",
           "Token", "GraphmieError", "Pipeline", "load", "SCHEMA_VERSION", "__version__"]
