"""WSGI entry point: ``waitress-serve --call app:create`` or ``civicmap serve``.

Configuration comes from the environment (``CIVICMAP_WORKSPACE``, ``CIVICMAP_SETTINGS``);
see :func:`webmap.create_app`.
"""

from __future__ import annotations

from flask import Flask

from webmap import create_app


def create() -> Flask:
    """The application configured from the environment."""
    return create_app()
