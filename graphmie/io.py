"""Safe file I/O: atomic writes, checked reads, safe weight loading."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

try:
    import fcntl
except ImportError:        # not POSIX: no advisory lock (one writer at a time is then the user's to keep)
    fcntl = None

from .document import Document
from .errors import GraphmieError

#: Largest image accepted, in pixels (width * height). A 600-dpi A3 page is ~70 Mpx.
MAX_IMAGE_PIXELS = 80_000_000

_UMASK = os.umask(0)
os.umask(_UMASK)


def file_mode() -> int:
    """The permissions an ordinary new file gets here (0666 less the umask)."""
    return 0o666 & ~_UMASK


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def update_json(path: str | Path, update: Callable[[Any], Any]) -> Any:
    """Read-modify-write of a JSON file shared by concurrent processes: under an advisory lock on
    ``PATH.lock`` the file is read again (``None`` when absent), ``update(old)`` gives the new value and it
    is written atomically. Two runs adding their own rows to one results file keep both rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            new = update(json.loads(path.read_text(encoding="utf-8")) if path.exists() else None)
            atomic_write_text(path, json.dumps(new, indent=2))
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return new


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content; missing -> ``E001``, unreadable or not UTF-8 -> ``E002``."""
    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GraphmieError("E002", path, detail=e.strerror or str(e)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GraphmieError("E002", path, detail=f"not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_json(path: str | Path) -> Any:
    text = read_text(path)
    if not text.strip(" \t\n\r\x0b\x0c"):           # ASCII whitespace only, as before
        raise GraphmieError("E007", path, detail="the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphmieError("E003", path, detail=f"{e.msg} at line {e.lineno} column {e.colno}") from None


def open_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS):
    """Open an image as RGB with a clear error for missing, non-image, or oversized files."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise GraphmieError("E006", path, detail=f"{w}x{h} px exceeds {max_pixels} px")
            if w == 0 or h == 0:
                raise GraphmieError("E007", path, detail="image has zero size")
            return im.convert("RGB")
    except GraphmieError:
        raise
    except Image.DecompressionBombError as e:
        raise GraphmieError("E006", path, detail=str(e)) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise GraphmieError("E005", path, detail=str(e) or type(e).__name__) from None


def load_weights(path: str | Path):
    """Load a state dict safely: safetensors, or ``torch.load(weights_only=True)``. Never unpickles."""
    import torch

    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any decode failure is reported the same way
        raise GraphmieError("E010", path, detail=_first_reason(e)) from None


def _first_reason(e: Exception) -> str:
    """The first line of a loader's error, without its advice (torch suggests ``weights_only=False``,
    i.e. unpickling the file: never do that with a file someone handed you)."""
    text = str(e)
    if "Weights only load failed" in text:
        return "the file holds pickled Python objects, not only tensors (graphmie never unpickles)"
    return text.splitlines()[0] if text else type(e).__name__


def input_name(item) -> str:
    """A stable, distinct name for one input: its path, its document's source, or, for an inline
    input (a dict), a hash of all of it (text, pair, image, caption...)."""
    if isinstance(item, Document):
        return item.source
    if isinstance(item, dict):
        blob = json.dumps(item, sort_keys=True, ensure_ascii=True, default=str)
        return "inline:" + hashlib.sha1(blob.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return str(item)
