"""``civicmap`` commands of this product area (placeholder until the area lands)."""

from __future__ import annotations

from collections.abc import Callable


def register(add: Callable) -> None:
    """Add this area's sub-commands to the parser (see :data:`cli.FEATURE_COMMANDS`)."""
