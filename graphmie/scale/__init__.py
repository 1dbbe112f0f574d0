"""Scale-out engines: the extract loop over a cluster, with the local engine's results.

``graphmie extract ... --engine ray`` (or ``ray_extract(graphmie.load(task), items, out, workers=2)``)
runs :func:`ray_extract` on Ray Data: ``Pipeline.extract``'s files, on a cluster; see ``docs/scale-out.md``. Ray is the optional extra
``graphmie[ray]``; it is imported only when this engine runs.
"""
from .ray_engine import ExtractWorker, ray_extract, start_local, stop_local

__all__ = ["ExtractWorker", "ray_extract", "start_local", "stop_local"]
