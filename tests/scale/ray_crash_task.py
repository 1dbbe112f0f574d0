"""A post task whose worker process is killed (SIGKILL) the first time it reads an input named
``crash_*.json``: the test of the Ray engine's restarts and retries. Imported by the Ray workers
(the test puts this folder on their PYTHONPATH)."""
import os
import signal
from pathlib import Path

from graphmie.tasks.post import PostTask


class CrashOncePostTask(PostTask):
    def read(self, item, options):
        path = Path(item) if not isinstance(item, dict) else None
        if path is not None and path.name.startswith("crash_"):
            marker = path.with_suffix(".killed")
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().read(item, options)
