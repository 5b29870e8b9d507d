"""Placeholder replaced by the Graph management API."""

from __future__ import annotations

from starlette.applications import Starlette

from dicomite.services import Services


def graph_app(services: Services) -> Starlette:
    del services
    return Starlette()
