import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("GRAPHMIE_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path under ../shared/data; skips the test with a clear reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared dataset not found at {p} (set GRAPHMIE_DATA to the data folder)")
    return p


@pytest.fixture(autouse=True, scope="session")
def _threads():
    import torch

    torch.manual_seed(0)
    yield


def with_members(tmp_path: Path, shipped: str, name: str, members, method: str):
    """A copy of shipped checkpoint ``shipped`` named ``name`` whose ``model.members`` is ``members``, loaded."""
    from graphmie.engine.checkpoint import WEIGHTS_DIR, copy_with_members, load_checkpoint

    dst = copy_with_members(WEIGHTS_DIR / f"{shipped}.safetensors", tmp_path / f"{name}.safetensors", members)
    return load_checkpoint(dst, "unused", method=method)
