"""The extract loop on Ray Data: one model per worker, the same files as the local engine.

The driver expands the inputs (folders, ``.txt`` listings), names each one
(:func:`graphmie.io.input_name`) and makes them a Ray dataset of rows ``(index, name, item)``.
``map_batches`` runs :class:`ExtractWorker`, a callable class: each actor loads the pipeline
once (from the task class, checkpoint and options, never a pickled model), then reads,
predicts and renders each input of its batch in memory and writes the files atomically into
a hidden parts folder inside the output folder (``.graphmie-ray-<id>/<index>/``), returning
only small per-input results. The driver takes the results in input order and, for each,
picks the file names exactly as the local engine does (:func:`graphmie.pipeline.place_outputs`)
and renames the parts into place (an atomic rename on the same file system), feeds the store
(the driver is its one writer), and writes ``report.json``.

Failures: a bad input fails alone with the local engine's coded error. A worker process that
dies is restarted by Ray (``max_restarts=-1``) and its batch retried (``max_task_retries``);
parts are keyed by input index, so a retried batch rewrites the same parts and each input is
committed once. The inputs of a batch that still fails after the retries get a second pass, one
input a batch; one that kills its worker every time is reported failed (E999), the rest go on.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import uuid
import warnings
from pathlib import Path

from tqdm import tqdm

from ..io import input_name
from ..document import Document
from ..engine.checkpoint import WEIGHTS_DIR
from ..errors import GraphmieError
from ..io import atomic_write_bytes
from ..pipeline import (DEFAULT_FORMATS, REPORT, BatchReport, doc_counts, failure_entry, place_outputs,
                        prepare_out_dir, render_outputs, write_report)

#: batches queued at each actor: 2 lets an actor start its next batch without waiting for the driver
IN_FLIGHT = 2
#: Ray treats the loopback address as "resolve to this host's address" unless cluster mode is off
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise GraphmieError("E015", None, detail="the Ray engine needs Ray Data: pip install 'graphmie[ray]'") from None
    return ray


def start_local(num_cpus: int, **init_args) -> None:
    """A private Ray instance on this machine, bound to 127.0.0.1 only (dashboard off).

    Ray otherwise advertises (and binds) this host's non-loopback address even when given
    ``_node_ip_address="127.0.0.1"``: it maps loopback addresses to the host's address unless its
    cluster mode is off, so that is switched off for this instance (and back after
    :func:`stop_local`)."""
    ray = _ray()
    from ray._private import ray_constants

    os.environ[_LOOPBACK_ENV] = "0"      # for the processes Ray starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # for this one (read when ray.init resolves the IP)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level=logging.WARNING, **init_args)


def stop_local() -> None:
    ray = _ray()
    from ray._private import ray_constants

    ray.shutdown()
    os.environ.pop(_LOOPBACK_ENV, None)
    ray_constants.ENABLE_RAY_CLUSTER = True


def worker_checkpoint(task) -> str:
    """What a worker loads: the shipped name for shipped weights (found in the worker's own install),
    else the weights' absolute path (which the workers must see: shared storage)."""
    path = task.method.ckpt.path
    if path is None:
        raise GraphmieError("E030", None, detail="the Ray engine needs weights saved to a file (this model has none)")
    path = Path(path).resolve()
    return path.stem if path.parent == WEIGHTS_DIR.resolve() else str(path)


class ExtractWorker:
    """One Ray actor: the pipeline loaded once; ``__call__`` does one batch of rows."""

    def __init__(self, task_cls, checkpoint: str, options: dict, parts: str, formats: tuple, cwd: str, threads: int):
        import torch

        from ..api import Pipeline

        if os.path.isdir(cwd):
            os.chdir(cwd)        # relative inputs mean what they mean on the driver
        torch.set_num_threads(threads)   # the worker's CPUs, not the machine's

        self.nlp = Pipeline(task_cls.load(checkpoint), options)
        self.parts = Path(parts)
        self.formats = tuple(formats)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        out = [json.dumps(self.one(int(i), str(name), json.loads(item) if inline else str(item)))
               for i, name, item, inline in zip(batch["index"], batch["name"], batch["item"], batch["inline"])]
        return {"index": np.asarray(batch["index"]), "result": np.array(out, dtype=object)}

    def one(self, index: int, name: str, item) -> dict:
        try:
            res = self.nlp.run(item)
            res.name = name
            files = render_outputs(self.nlp.task, res, self.formats)
            folder = self.parts / str(index)
            for k, content in enumerate(files.values()):
                atomic_write_bytes(folder / f"{k}.part", content)
            return {"suffixes": list(files), **doc_counts(res.doc)}
        except Exception as e:  # noqa: BLE001 - recorded for the driver; the batch goes on
            return {"failed": failure_entry(name, e)}


def _row(index: int, item) -> dict:
    if isinstance(item, dict):
        return {"index": index, "name": input_name(item), "inline": True,
                "item": json.dumps(item, ensure_ascii=True, default=str)}
    if isinstance(item, (str, Path)):
        return {"index": index, "name": input_name(item), "inline": False, "item": str(item)}
    raise GraphmieError("E008", None, detail=f"the Ray engine takes file paths and inline post objects, "
                        f"not {type(item).__name__}")


def ray_extract(nlp, items, out_dir: Path, formats=DEFAULT_FORMATS, store=None, progress: bool = True,
                workers: int = 1, address: str | None = None, batch_size: int = 8, cpus_per_worker: float = 1,
                retries: int = 3) -> BatchReport:
    """:func:`graphmie.pipeline.run_extract` on Ray: the same files and ``report.json``.

    ``workers`` actors, each with ``cpus_per_worker`` CPUs and one model, take batches of
    ``batch_size`` inputs. Without ``address`` (and with no Ray already connected in this
    process) a local Ray instance is started on 127.0.0.1 and shut down at the end; ``address``
    (``auto``, ``ray://host:10001``...) joins an existing cluster, whose workers must have
    graphmie installed and see the inputs and ``out_dir`` at the same paths. Items are file paths,
    folders, listings and inline posts (dicts); a batch that keeps killing its worker is tried
    ``1 + retries`` times."""
    for key, value, low in (("workers", workers, 1), ("batch_size", batch_size, 1), ("retries", retries, 0)):
        if not isinstance(value, int) or value < low:
            raise GraphmieError("E009", None, detail=f"{key} must be an integer >= {low}, not {value!r}")
    if not cpus_per_worker > 0:
        raise GraphmieError("E009", None, detail=f"cpus_per_worker must be > 0, not {cpus_per_worker!r}")
    ray = _ray()
    out_dir = prepare_out_dir(out_dir)
    items = nlp.inputs(items)
    rows = [_row(i, it) for i, it in enumerate(items)]
    report = BatchReport()
    parts = out_dir.resolve() / f".graphmie-ray-{uuid.uuid4().hex[:12]}"
    started = False
    if rows and not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            start_local(num_cpus=max(os.cpu_count() or 1, math.ceil(workers * cpus_per_worker)))
        started = True
    run = functools.partial(_run, ray, worker_args={
        "task_cls": type(nlp.task), "checkpoint": worker_checkpoint(nlp.task), "options": nlp.options,
        "parts": str(parts), "formats": tuple(formats), "cwd": os.getcwd(),
        "threads": max(1, math.floor(cpus_per_worker))},
        cpus_per_worker=cpus_per_worker, retries=retries)
    try:
        _commit(_results(run, rows, workers, batch_size), rows, nlp, out_dir, parts, store, report, progress)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
        if started and address:
            ray.shutdown()
        elif started:
            stop_local()
    write_report(out_dir, report)
    return report


def _results(run, rows, workers: int, batch_size: int):
    """All results; the inputs of batches that failed on every try get a second pass one a batch,
    so only an input that kills its worker each time stays without a result."""
    seen = set()
    for index, result in run(rows, workers=workers, batch_size=batch_size):
        seen.add(index)
        yield index, result
    lost = [r for r in rows if r["index"] not in seen]
    if lost and batch_size > 1:
        yield from run(lost, workers=min(workers, len(lost)), batch_size=1)


def _run(ray, rows, worker_args: dict, workers: int, batch_size: int, cpus_per_worker: float, retries: int):
    """``(index, result)`` pairs as the workers finish them (any order). A batch that still fails
    after its retries is dropped (``max_errored_blocks``): its inputs come back as no result."""
    if not rows:
        return
    ctx = ray.data.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start", "max_errored_blocks")}
    ctx.enable_progress_bars = False   # the driver shows one bar over the inputs
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = -1
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)   # not "progress bars disabled"
    try:
        # one block per batch, so the batches spread over the actors
        ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // batch_size)))
        with warnings.catch_warnings():
            # Ray 2.60 takes the actor's restart options only as (deprecated) extra remote args
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            ds = ds.map_batches(
                ExtractWorker, batch_size=batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=IN_FLIGHT),
                num_cpus=cpus_per_worker, fn_constructor_kwargs=worker_args,
                max_restarts=-1, max_task_retries=retries)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i, r in zip(batch["index"], batch["result"]):
                yield int(i), json.loads(r)
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)


def _commit(results, rows, nlp, out_dir: Path, parts: Path, store, report: BatchReport, progress: bool) -> None:
    """Commit the results in input order: names, files, store, report (the driver's single-writer step)."""
    taken: set[str] = {REPORT}
    pending: dict[int, dict] = {}
    nxt = 0
    with tqdm(total=len(rows), desc=f"extract ({nlp.name}, ray)", unit="doc", disable=not progress) as bar:
        for index, result in results:
            if index < nxt or index in pending:
                continue     # a result Ray delivered twice: the first one counts
            pending[index] = result
            bar.update(1)
            while nxt in pending:
                _commit_one(rows[nxt]["name"], nxt, pending.pop(nxt), out_dir, parts, store, taken, report)
                nxt += 1
        lost = RuntimeError("its Ray batch failed on every try (its worker process died; see the Ray logs)")
        for index in range(nxt, len(rows)):
            result = pending.pop(index, None)
            if result is None:
                result = {"failed": failure_entry(rows[index]["name"], lost)}
                bar.update(1)
            _commit_one(rows[index]["name"], index, result, out_dir, parts, store, taken, report)


def _commit_one(name: str, index: int, result: dict, out_dir: Path, parts: Path, store, taken, report) -> None:
    if "failed" in result:
        report.failed.append(result["failed"])
        return
    folder = parts / str(index)
    order = {s: k for k, s in enumerate(result["suffixes"])}
    try:
        written = place_outputs(name, result["suffixes"], out_dir, taken,
                                lambda suffix, path: os.replace(folder / f"{order[suffix]}.part", path))
        if store is not None:
            doc_json = Path(written[result["suffixes"].index(".json")])
            store.add_document(Document.from_dict(json.loads(doc_json.read_bytes())))
        report.done.append({"input": name, "files": written, "entities": result["entities"],
                            "relations": result["relations"], "groundings": result["groundings"]})
    except Exception as e:  # noqa: BLE001 - as the local engine: the batch goes on
        report.failed.append(failure_entry(name, e))
