"""Fixtures shared across the suite: the demo district loaded once through the real import path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.demo_support import copy_demo

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "data" / "demo"


@pytest.fixture(scope="session")
def demo_design() -> dict:
    """The designed truth of the demo district (data/demo/design.json), recorded at construction."""
    return json.loads((DEMO_DIR / "design.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A workspace holding the demo district, imported by ``civicmap demo``'s code path.

    Session-scoped and shared: tests must not modify it (copy it with ``tmp_path`` to write).
    """
    from cli import load_demo
    from layers.store import Workspace

    path = tmp_path_factory.mktemp("demo") / "ws"
    load_demo(path, user="pytest")
    return Workspace.open(path)


@pytest.fixture
def demo_copy(demo_workspace, tmp_path) -> Path:
    """A private copy of the demo workspace for one test (its path)."""
    return copy_demo(demo_workspace, tmp_path)


@pytest.fixture(scope="session")
def demo_layers(demo_workspace) -> dict:
    return demo_workspace.read_all()
