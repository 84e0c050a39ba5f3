"""The ASGI entry point for process managers: ``uvicorn --factory townsquare.asgi:app``.

Settings come from the ``TOWNSQUARE_*`` environment, which is how ``townsquare serve`` hands its
options to every worker process. Migrations are not run here: ``townsquare serve`` (or
``townsquare migrate``) applies them once, before any worker starts.
"""

from __future__ import annotations

from fastapi import FastAPI

from townsquare.app import create_app
from townsquare.config import Settings


def app() -> FastAPI:
    return create_app(Settings(), migrate=False)
