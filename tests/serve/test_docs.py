"""The API docs pages (/docs, /redoc) of both apps load nothing from outside the server: they work offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

DOCS_PAGES = ("/docs", "/redoc")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _apps():
    from lucidrec.lm.chat.mock import MockChatModel
    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig
    from lucidrec.serve.lm_app import create_lm_app

    return {"recommender": create_app({}, ServeConfig()),
            "language model": create_lm_app(MockChatModel(cache={"enabled": False}), config=ServeConfig())}


@pytest.mark.parametrize("which", ["recommender", "language model"])
@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_pages_reference_only_the_servers_own_assets(which, page):
    with TestClient(_apps()[which]) as client:
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), \
            "a page that works offline names no other host"
        parser = _Links()
        parser.feed(html)
        assets = [url for url in parser.urls if url.endswith((".js", ".css"))]
        assert len(assets) >= (2 if page == "/docs" else 1)  # Swagger UI's script and style sheet; ReDoc's script
        for url in parser.urls:
            assert url.startswith("/"), url
            fetched = client.get(url)
            assert fetched.status_code == 200 and len(fetched.content) > 1000, url
        assert "/openapi.json" in html
