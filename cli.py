"""The ``civicmap`` command line (filled in by the foundation work)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("civicmap: not yet implemented")
