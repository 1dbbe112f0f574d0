"""The interface a method folder (``graphmie/methods/<method>/``) implements.

A *method* is one paper's model for one task: its config schema with defaults, its graph
building, its network with its loss and decoding, its dataset-to-sample preparation and its
training hooks into the :class:`~graphmie.engine.trainer.Trainer`. A *task*
(:mod:`graphmie.tasks`) is the thin adapter around it: inputs -> method -> outputs.

A method is registered by name in :data:`graphmie.registry.methods`; a checkpoint's sidecar
names the method that wrote it, so loading weights picks the method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import TOP_LEVEL, resolve
from ..document import Document
from .checkpoint import Checkpoint


@dataclass
class Result:
    """What predicting one input gives: the filled document and its artifacts (in-memory objects a
    task renders into extra output files, e.g. the scene graph, the layout graph). ``error`` is set
    instead when the input failed (``Pipeline.pipe(errors="return")``)."""

    doc: Document | None
    artifacts: dict = field(default_factory=dict)
    name: str = ""
    error: Exception | None = None


class Method:
    #: registry name (also the folder name under graphmie/methods/)
    name: str = ""
    #: the task this method serves (form, post, entity, procedure)
    task: str = ""
    #: the model name facts carry in their provenance
    model_name: str = ""
    #: the config schema: sections of defaults (see :func:`graphmie.config.resolve`)
    schema: dict = {}
    #: the options of ``graphmie evaluate --set KEY=VALUE`` with their defaults
    eval_options: dict = {}

    def __init__(self, ckpt: Checkpoint):
        self.ckpt = ckpt
        self.config = ckpt.config

    @classmethod
    def resolve_config(cls, config: dict | None, source=None) -> dict:
        """``config`` merged into the schema; unknown keys and wrong types are coded errors."""
        return resolve(cls.schema, config, source, top_level=TOP_LEVEL)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "Method":
        """The trained model, ready to predict."""
        raise NotImplementedError

    #: for methods whose ``model.members`` lists checkpoints averaged with this one: the config keys
    #: (``(section, key)``) every member must share with the checkpoint that lists it
    member_keys: tuple = ()

    @staticmethod
    def member_path(spec, owner: Checkpoint) -> Path:
        """Where member ``spec`` of ``owner``'s ensemble is: a path relative to ``owner``'s folder when one
        exists there, else ``spec`` itself (a shipped name or a path). A spec that is no name is E021."""
        from ..errors import GraphmieError
        from .checkpoint import path_exists

        if not isinstance(spec, str) or not spec.strip():
            raise GraphmieError("E021", owner.path, key="members", section="[model]",
                                expected="a list of checkpoint names or paths", value=spec)
        p = Path(spec)
        if not p.is_absolute() and owner.path is not None and path_exists(Path(owner.path).parent / p):
            p = Path(owner.path).parent / p
        return p

    @classmethod
    def load_member(cls, spec, owner: Checkpoint, cfg: dict) -> "Method":
        """Member ``spec`` of ``owner``'s ensemble (``model.members``, found by :meth:`member_path`): a
        checkpoint of this method that agrees with ``cfg`` on :attr:`member_keys` and is itself no
        ensemble. A bad spec is E021, a member that does not fit E025."""
        from ..errors import GraphmieError
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(cls.member_path(spec, owner), spec, method=cls.name)
        sub = cls.resolve_config(ckpt.config, ckpt.path)
        bad = [".".join(k) for k in cls.member_keys if sub[k[0]][k[1]] != cfg[k[0]][k[1]]]
        if sub["model"].get("members"):
            bad.append("model.members (an ensemble cannot be a member)")
        if bad:
            raise GraphmieError("E025", ckpt.path, detail=f"listed as a member of {Path(owner.path).name}, but "
                                f"differs in {', '.join(bad)}")
        return cls.from_checkpoint(ckpt)

    @property
    def version(self) -> str:
        return self.ckpt.version

    def predict(self, doc: Document, **options) -> Result:
        """Fill ``doc`` with entities, relations and groundings, each with provenance."""
        raise NotImplementedError

    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        """Train from a config; write the checkpoint and ``run.json`` into ``out_dir``; return dev figures."""
        raise NotImplementedError

    def evaluate(self, data: Path, split: str | None = None, **options) -> dict:
        """Score on a dataset folder; a flat JSON-able dict."""
        raise NotImplementedError
