"""Private copies of the session's demo workspace, for tests that write (cases, sign-ins, imports)."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_demo(demo_workspace, folder: Path) -> Path:
    """Copy ``demo_workspace`` (the conftest fixture) to ``folder / "ws"``; returns the copy's path."""
    path = Path(folder) / "ws"
    shutil.copytree(demo_workspace.path, path)
    return path
