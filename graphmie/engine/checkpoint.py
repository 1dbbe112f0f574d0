"""One checkpoint format for every method: safetensors weights + one JSON sidecar.

``<name>.safetensors`` holds the tensors (fp16 for floating point by default); ``<name>.json``
beside it holds everything else::

    {"format": "graphmie.checkpoint", "format_version": 2, "method": "re2",
     "graphmie_version": "0.1.0", "weights_sha256": "...",
     "config": {...resolved config...}, "meta": {...labels, vocabularies...},
     "record": {...how it was trained: command, data, date, figures, history...}}

Both files are written atomically (temporary name, then rename); the sidecar names the SHA-256
of the weights it belongs to, so a pair that was torn apart (a crash between the two renames, a
file copied over another) is refused (``E028``) instead of silently mixed.

:func:`resolve_checkpoint` takes what users type: nothing (the shipped default), the name of a
shipped checkpoint (``form_re2_ablation``), a ``.safetensors`` file, or a run folder written by
``graphmie train`` (``model.safetensors`` inside). Loading never unpickles anything.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GraphmieError
from ..io import atomic_write_bytes, atomic_write_text, load_weights

FORMAT = "graphmie.checkpoint"
FORMAT_VERSION = 2
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
RUN_WEIGHTS = "model.safetensors"


@dataclass
class Checkpoint:
    method: str
    config: dict
    state: dict
    meta: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        """The checkpoint's name (its file stem; the run folder's name for ``model.safetensors``)."""
        if self.path is None:
            return "unsaved"
        return self.path.parent.name if self.path.name == RUN_WEIGHTS else self.path.stem

    @property
    def version(self) -> str:
        """What provenance records as the model version: the training date, else the file name."""
        return str(self.record.get("date") or self.name)

    def float_state(self) -> dict:
        """The tensors with floating point ones in float32 (graphmie computes in float32)."""
        return {k: v.float() if v.is_floating_point() else v for k, v in self.state.items()}


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(path: str | Path, method: str, state: dict, config: dict, meta: dict | None = None,
                    record: dict | None = None, half: bool = True) -> Path:
    """Write ``path`` (a ``.safetensors`` file, or a folder that gets ``model.safetensors``) and its
    sidecar. Returns the weights' path."""
    import torch
    from safetensors.torch import save

    from .. import __version__

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / RUN_WEIGHTS
    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and v.dtype != torch.float16:
            v = v.half()
        tensors[k] = v
    data = save(tensors, metadata={"format": FORMAT, "method": method})
    sidecar = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method, "graphmie_version": __version__,
               "weights_sha256": _sha256(data), "config": config, "meta": meta or {}, "record": record or {}}
    atomic_write_bytes(path, data)
    atomic_write_text(sidecar_path(path), json.dumps(sidecar, indent=2, default=str))
    return path


def write_sidecar(weights: str | Path, method: str, config: dict, meta: dict | None = None,
                  record: dict | None = None) -> Path:
    """A sidecar for existing weights (used to move older checkpoints into this format)."""
    from .. import __version__

    weights = Path(weights)
    sidecar = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method, "graphmie_version": __version__,
               "weights_sha256": _sha256(weights.read_bytes()), "config": config, "meta": meta or {},
               "record": record or {}}
    atomic_write_text(sidecar_path(weights), json.dumps(sidecar, indent=2, default=str))
    return sidecar_path(weights)


def copy_with_members(src: str | Path, dst: str | Path, members: list[str], record: dict | None = None) -> Path:
    """Copy checkpoint ``src`` to ``dst`` (weights bytes unchanged, so the SHA-256 stays valid) with its
    config's ``model.members`` set to ``members`` and ``record`` (when given) as its training record."""
    import shutil

    shutil.copyfile(src, dst)
    side = read_sidecar(Path(src))
    cfg = json.loads(json.dumps(side["config"]))
    cfg.setdefault("model", {})["members"] = list(members)
    write_sidecar(dst, side["method"], cfg, side["meta"], side["record"] if record is None else record)
    return Path(dst)


def path_exists(p: Path) -> bool:
    """``p.exists()``, False where the name itself cannot be looked up (too long, say)."""
    try:
        return p.exists()
    except OSError:
        return False


def resolve_checkpoint(spec: str | Path | None, default: str) -> Path:
    """The weights file for ``spec``: None -> the shipped ``default``; a shipped name; a file; a run folder."""
    if spec is None or str(spec) == "":
        return WEIGHTS_DIR / f"{default}.safetensors"
    p = Path(spec)
    if not path_exists(p) and p.suffix == "" and len(p.parts) == 1 and path_exists(WEIGHTS_DIR / f"{p}.safetensors"):
        return WEIGHTS_DIR / f"{p}.safetensors"
    if not path_exists(p):
        raise GraphmieError("E001", p)
    if p.is_dir():
        if (p / RUN_WEIGHTS).exists():
            return p / RUN_WEIGHTS
        found = sorted(f for f in p.glob("*.safetensors") if sidecar_path(f).exists())
        if len(found) == 1:
            return found[0]
        raise GraphmieError("E001", p / RUN_WEIGHTS)
    return p


def read_sidecar(weights: Path) -> dict:
    side = sidecar_path(weights)
    if not side.exists():
        raise GraphmieError("E026", weights, detail=f"{side.name} is missing beside the weights")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GraphmieError("E026", side, detail=f"not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphmieError("E027", side, detail=f"not a {FORMAT} sidecar")
    if data.get("format_version") != FORMAT_VERSION:
        raise GraphmieError("E027", side, detail=f"format version {data.get('format_version')!r}; this graphmie "
                            f"reads version {FORMAT_VERSION}")
    for key, typ in (("method", str), ("config", dict), ("meta", dict), ("record", dict)):
        if not isinstance(data.get(key), typ):
            raise GraphmieError("E026", side, detail=f"'{key}' must be a {typ.__name__}")
    return data


def load_checkpoint(spec: str | Path | None, default: str, method: str | tuple[str, ...] | None = None) -> Checkpoint:
    """Resolve and load a checkpoint; ``method`` (a name or names) is what the caller can run."""
    path = resolve_checkpoint(spec, default)
    side = read_sidecar(path)
    allowed = (method,) if isinstance(method, str) else method
    if allowed and side["method"] not in allowed:
        raise GraphmieError("E027", path, detail=f"weights of method {side['method']!r}, expected "
                            f"{' or '.join(map(repr, allowed))}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GraphmieError("E002", path, detail=e.strerror or str(e)) from None
    if side.get("weights_sha256") and _sha256(raw) != side["weights_sha256"]:
        raise GraphmieError("E028", path, detail=f"the SHA-256 in {sidecar_path(path).name} is not the weights'")
    state = load_weights(path)
    return Checkpoint(method=side["method"], config=side["config"], state=state, meta=side["meta"],
                      record=side["record"], path=path)


def load_state_into(model, ckpt: Checkpoint, trainable_only: bool = False) -> None:
    """Load ``ckpt``'s tensors into ``model`` (strict; or, with ``trainable_only``, every key
    ``model.is_trainable_key`` names must be present and nothing else: the rest is a frozen
    pretrained encoder already in the model). Shape or key mismatches are ``E025``."""
    state = ckpt.float_state()
    try:
        missing, unexpected = model.load_state_dict(state, strict=not trainable_only)
    except RuntimeError as e:
        raise GraphmieError("E025", ckpt.path, detail=str(e).splitlines()[0]) from None
    bad = ([k for k in missing if model.is_trainable_key(k)] if trainable_only else list(missing)) + list(unexpected)
    if bad:
        raise GraphmieError("E025", ckpt.path, detail=f"keys {bad[:3]}")
