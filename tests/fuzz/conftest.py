"""Hypothesis profiles of the fuzz suite: ``ci`` (the default, small and fast) and ``long``
(``pytest tests/fuzz --hypothesis-profile=long``).

This file is imported as ``conftest`` too, so it re-exports the helpers of ``tests/conftest.py``
(``from conftest import shared, REPO`` keeps working in a run that collects both)."""
import importlib.util
from pathlib import Path

from hypothesis import HealthCheck, settings

_spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).resolve().parent.parent / "conftest.py")
_top = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_top)
REPO, SHARED_DATA, shared, with_members = _top.REPO, _top.SHARED_DATA, _top.shared, _top.with_members

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("ci")
