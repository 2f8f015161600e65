"""The API docs pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with the scripts and style sheets
the ``fastapi-offline`` package ships, so they work without internet (FastAPI's own pages load them from a CDN).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

#: No "valid spec" badge: Swagger UI would ask an online validator for it.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
#: Where the docs pages' assets are served from.
ASSETS_URL = "/docs-assets"


def api_app(**settings) -> FastAPI:
    """A FastAPI app (``settings`` as for ``FastAPI``) whose /docs and /redoc load their assets from this server."""
    return FastAPIOffline(swagger_ui_parameters=SWAGGER_UI_PARAMETERS, static_url=ASSETS_URL, **settings)
