"""Registries: named, lazily imported components (tasks and methods).

A registry maps a name to either an object or an ``"module:attr"`` string that is
imported on first use, so the CLI starts fast and optional parts never import
unless asked for. Adding a method is one folder under ``graphmie/methods/`` and one
``methods.register`` line here.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .errors import GraphmieError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None) -> Callable | Any:
        if obj is not None:
            self._entries[name] = obj
            return obj

        def deco(o):
            self._entries[name] = o
            return o

        return deco

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise GraphmieError("E022", None, name=self.kind, value=name, choices=", ".join(sorted(self._entries)))
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


#: Tasks: one per input kind. Each is a :class:`graphmie.tasks.base.Task` subclass.
tasks = Registry("task")
tasks.register("form", "graphmie.tasks.form:FormTask")
tasks.register("post", "graphmie.tasks.post:PostTask")
tasks.register("entity", "graphmie.tasks.entity:EntityTask")
tasks.register("procedure", "graphmie.tasks.procedure:ProcedureTask")

#: Methods: one per paper method, each a :class:`graphmie.engine.method.Method` in its own folder.
methods = Registry("method")
methods.register("re2", "graphmie.methods.re2:RE2")
methods.register("mre_ise", "graphmie.methods.mre_ise:MREISE")
methods.register("mner", "graphmie.methods.mner:MNER")
methods.register("hindex", "graphmie.methods.hindex:HIndex")
methods.register("seqgmper", "graphmie.methods.seqgmper:SeqGMPERMethod")

#: Parts a method uses that ship their own weights, each a loader ``load(spec) -> part``
#: (the name is the ``method`` their checkpoint sidecar records).
parts = Registry("part")
parts.register("re2.segment", "graphmie.methods.re2.segment:load_segmenter")
