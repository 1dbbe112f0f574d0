"""Config-first construction, after detectron2's ``@configurable`` and spaCy's configs.

Configs are TOML files in ``configs/``. A class decorated with :func:`configurable`
can be built either with ordinary keyword arguments or from a config section::

    @configurable
    class Model(nn.Module):
        def __init__(self, hidden: int = 128, heads: int = 4): ...

    Model(hidden=64)
    Model.from_config({"hidden": 64, "heads": 2})

Unknown keys in a section are an error (a typo must not silently fall back to a default).

Every method declares its configuration as a *schema*: a nested dict of defaults (sections are
dicts). :func:`resolve` merges a config into its schema and refuses what does not fit it: an
unknown key is ``E020`` naming the key and the closest known one, a value of the wrong type is
``E021``. The same check runs on TOML files, on ``--set`` overrides and on the options of
``evaluate`` / ``extract``.
"""
from __future__ import annotations

import copy
import inspect
import os
import platform
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import GraphmieError, closest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
#: top-level keys every config may hold besides its sections
TOP_LEVEL = {"task": "", "method": "", "meta": None}


def cache_dir(task: str) -> Path:
    """Where a task caches derived features (never in the repo; safe to delete at any time):
    ``$GRAPHMIE_CACHE/<task>``, by default the user's own ``$XDG_CACHE_HOME/graphmie/<task>``
    (``~/.cache/graphmie``), created private (0700) so another local user cannot plant features.
    Entries are keyed by content hashes of what produced them."""
    env = os.environ.get("GRAPHMIE_CACHE")
    root = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graphmie"
    if not root.exists():
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root / task


class Mapping(dict):
    """A schema value that is a free mapping (any keys), not a section: ``Mapping({"PER": "PER"})``."""


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _check_value(key: str, section: str, default, value, source):
    """``value`` converted to the type of ``default`` (an int is a valid float), or E021."""
    if default is None or value is None:
        return value
    if isinstance(default, Mapping):
        if not isinstance(value, dict):
            raise GraphmieError("E021", source, key=key, section=section, expected="a table", value=value)
        return dict(value)
    t = type(default)
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if t is bool and not isinstance(value, bool) or t is int and (isinstance(value, bool) or not isinstance(value, int)) \
            or t in (float, str, list) and not isinstance(value, t):
        raise GraphmieError("E021", source, key=key, section=section, expected=_TYPE_NAMES.get(t, t.__name__),
                            value=value)
    return copy.deepcopy(value)


def _is_section(v) -> bool:
    return isinstance(v, dict) and not isinstance(v, Mapping)


def resolve(schema: dict, config: dict | None = None, source=None, section: str = "",
            top_level: dict | None = None) -> dict:
    """The defaults of ``schema`` updated with ``config``; sections are nested dicts.

    Unknown keys are ``E020`` (with the closest known key), wrong types ``E021``; ``source``
    (a file) is named in both. ``top_level`` adds keys allowed at the top only (``task``, ...),
    kept in the result when given."""
    known = {**(top_level or {}), **schema}
    where = f"[{section}]" if section else "the top level"
    config = config or {}
    for key in config:
        if key not in known:
            raise GraphmieError("E020", source, key=key, section=where, hint=closest(key, known))
    out = {}
    for key, default in known.items():
        sub = f"{section}.{key}" if section else key
        if _is_section(default):
            value = config.get(key, {})
            if not isinstance(value, dict):
                raise GraphmieError("E021", source, key=key, section=where, expected="a table of options",
                                    value=value)
            out[key] = resolve(default, value, source, sub)
        elif key in config:
            out[key] = _check_value(key, where, default, config[key], source)
        elif key not in (top_level or {}):
            out[key] = copy.deepcopy(default)
    return out


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    """Read a TOML config; ``overrides`` uses dotted keys (``{"training.epochs": 3}``)."""
    path = Path(path)
    if not path.exists():
        raise GraphmieError("E001", path)
    try:
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GraphmieError("E011", path, detail=str(e)) from None
    if not isinstance(cfg, dict):
        raise GraphmieError("E004", path, detail="a config is a TOML table")
    for key, value in (overrides or {}).items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise GraphmieError("E029", path, detail=f"{key!r}: {p!r} is not a section")
        node[leaf] = value
    cfg.setdefault("meta", {})["config_path"] = str(path)
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``training.epochs=3`` -> ("training.epochs", 3); values parsed as TOML scalars."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise GraphmieError("E029", None, detail=repr(text))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def configurable(cls):
    """Give ``cls`` a ``from_config(section)`` constructor that checks its keys."""
    sig = inspect.signature(cls.__init__)
    params = {n for n in sig.parameters if n != "self"}

    @classmethod
    def from_config(klass, section: dict | None = None, **extra):
        section = dict(section or {})
        section.update(extra)
        for key in section:
            if key not in params:
                raise GraphmieError("E020", None, key=key, section=klass.__name__, hint=closest(key, params))
        return klass(**section)

    cls.from_config = from_config
    return cls


def package_versions(names: tuple[str, ...] = ("graphmie", "torch", "torch-geometric", "transformers",
                                               "spacy", "faiss-cpu", "numpy")) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out
