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
    import json
    import shutil

    from graphmie.engine.checkpoint import WEIGHTS_DIR, load_checkpoint, read_sidecar, write_sidecar

    dst = tmp_path / f"{name}.safetensors"
    shutil.copyfile(WEIGHTS_DIR / f"{shipped}.safetensors", dst)
    side = read_sidecar(WEIGHTS_DIR / f"{shipped}.safetensors")
    cfg = json.loads(json.dumps(side["config"]))
    cfg.setdefault("model", {})["members"] = members
    write_sidecar(dst, side["method"], cfg, side["meta"], side["record"])
    return load_checkpoint(dst, "unused", method=method)
