"""The Python API, in the manner of spaCy::

    import graphmie

    nlp = graphmie.load("form")                          # or "post", "entity", "procedure"
    doc = nlp("scan.png")                                # a path, a Document, or (posts) a dict
    for doc in nlp.pipe(["a.png", "b.json"], batch_size=8):
        print(doc.relations)
    res = nlp.run("scan.png")                            # the document plus its artifacts
    nlp.extract(["forms/"], "out/")                      # what ``graphmie extract`` does

``graphmie.load(task, checkpoint=None, **options)``: ``checkpoint`` is a shipped name, a
``.safetensors`` file or a run folder; ``options`` are the task's (``graphmie extract --task T
--help`` lists them), validated like a config. The command line is built on this API.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from .document import Document
from .engine.method import Result
from .errors import GraphmieError
from .io import input_name  # noqa: F401 - part of the API


def _listing(path: Path) -> list[str]:
    """The paths a text file lists, one a line."""
    if not path.is_file():
        raise GraphmieError("E001", path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GraphmieError("E002", path, detail=str(e)) from None
    paths = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not paths:
        raise GraphmieError("E007", path, detail="the listing names no input")
    return paths


class Pipeline:
    """A loaded task with its options: call it on inputs."""

    def __init__(self, task, options: dict | None = None):
        self.task = task
        self.options = task.resolve_options(options)

    @property
    def name(self) -> str:
        return self.task.name

    def _options(self, overrides: dict) -> dict:
        return self.task.resolve_options({**self.options, **overrides}) if overrides else self.options

    def read(self, item, **options) -> Document:
        if isinstance(item, Document):
            return item
        return self.task.read(item if isinstance(item, dict) else Path(item), self._options(options))

    def run(self, item, **options) -> Result:
        """Read and predict one input: the filled document and its artifacts (errors raise)."""
        opts = self._options(options)
        doc = item if isinstance(item, Document) else self.task.read(item if isinstance(item, dict) else Path(item),
                                                                      opts)
        res = self.task.predict(doc, opts)
        res.name = input_name(item)
        res.doc.meta["task"] = self.task.name
        return res

    def __call__(self, item, **options) -> Document:
        return self.run(item, **options).doc

    def inputs(self, items: Iterable) -> list:
        """Expand folders into the task's input files (any depth, sorted) and ``.txt`` listings into
        the paths they list (one a line, as written; blank and ``#`` lines skipped); other items as given."""
        out = []
        for it in items:
            if isinstance(it, (str, Path)) and Path(it).is_dir():
                files = self.task.input_files(Path(it))
                if not files:
                    raise GraphmieError("E007", it, detail=f"no input files for --task {self.task.name} "
                                        f"({', '.join(self.task.input_suffixes)}) in this folder")
                out.extend(files)
            elif isinstance(it, (str, Path)) and Path(it).suffix.lower() == ".txt" and \
                    ".txt" not in self.task.input_suffixes:
                out.extend(_listing(Path(it)))
            else:
                out.append(it)
        return out

    def pipe(self, items: Iterable, batch_size: int = 8, errors: str = "raise", artifacts: bool = False,
             **options) -> Iterator:
        """Documents for ``items`` (folders expanded), in order. ``errors="return"`` yields a
        :class:`Result` with ``error`` set for a failed input instead of raising (the rest go
        on); ``artifacts=True`` yields Results instead of Documents."""
        if errors not in ("raise", "return"):
            raise GraphmieError("E022", None, name="errors", value=errors, choices="raise, return")
        batch: list = []
        for item in self.inputs(items):
            batch.append(item)
            if len(batch) >= max(int(batch_size), 1):
                yield from self._batch(batch, errors, artifacts, options)
                batch = []
        if batch:
            yield from self._batch(batch, errors, artifacts, options)

    def _batch(self, batch: list, errors: str, artifacts: bool, options: dict) -> Iterator:
        for item in batch:
            if errors == "raise":
                res = self.run(item, **options)
                yield res if artifacts else res.doc
                continue
            try:
                res = self.run(item, **options)
            except Exception as e:  # noqa: BLE001 - recorded on the result; the batch goes on
                res = Result(doc=None, name=input_name(item), error=e)
            yield res if (artifacts or res.error is not None) else res.doc

    def extract(self, items: Iterable, out_dir: str | Path, formats=None, store=None, progress: bool = True):
        """Predict every input and write its files into ``out_dir`` (see :func:`graphmie.pipeline.run_extract`;
        on a Ray cluster, the same files: :func:`graphmie.scale.ray_extract`)."""
        from .pipeline import DEFAULT_FORMATS, run_extract

        return run_extract(self, list(items), Path(out_dir), formats=tuple(formats or DEFAULT_FORMATS), store=store,
                           progress=progress)


def load(task: str, checkpoint: str | Path | None = None, **options) -> Pipeline:
    """A ready pipeline for ``task`` (``form``, ``post``, ``entity``, ``procedure``)."""
    from .registry import tasks

    return Pipeline(tasks.get(task).load(checkpoint), options)
