"""The web explorer in a real browser: Playwright drives headless Chromium (the system's package,
never a downloaded build) through the page served by a live server on loopback."""

import os
import shutil
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
K = 5


def chromium_path() -> str:
    path = os.environ.get("LUCIDREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip("no chromium executable (apt-get install chromium; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_explorer(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.problems = problems
    page.goto(server.base_url + "/")
    page.wait_for_selector("[data-testid=status]:has-text('ready')")
    return page


@pytest.fixture
def page(browser, live_server):
    page = open_explorer(browser, live_server)
    yield page
    page.close()


def texts(page, selector: str) -> list[str]:
    return [node.inner_text() for node in page.query_selector_all(selector)]


def show_user(page, user: str = "1") -> None:
    """Ask the explorer for ``user``'s top K (the caller waits for what it expects to see)."""
    page.fill("[data-testid=k]", str(K))
    page.fill("[data-testid=user-input]", user)
    page.click("[data-testid=show-user]")


def test_pick_a_user_see_recommendations_explanations_and_metrics(page, live_server):
    assert texts(page, "[data-testid=run-select] option") == ["ger", "sasrec", "pop", "lane"]
    assert "ml-100k · sasrec · ger" in page.inner_text("[data-testid=run-info]")
    groups = page.eval_on_selector_all("[data-testid=metrics] tbody tr", "rows => rows.map(r => r.dataset.group)")
    assert {"all", "head", "tail", "short", "long"} <= set(groups)

    show_user(page)
    page.wait_for_selector("[data-testid=why]")
    expected = httpx.get(f"{live_server.base_url}/runs/ger/users/1/recommendations", params={"k": K}).json()
    assert texts(page, "[data-testid=rec-title]") == [item["title"] for item in expected["items"]]
    assert len(texts(page, "[data-testid=why]")) == K and texts(page, "[data-testid=why]")[0].startswith("score ")
    assert page.query_selector_all("[data-testid=recommendation] .bar") and page.query_selector_all("[data-testid=profile] .bar")
    assert "leans towards" in page.inner_text("[data-testid=explanation-text]")
    history = httpx.get(f"{live_server.base_url}/runs/ger/users/1").json()["history"]
    assert texts(page, "[data-testid=history] li") == [item["title"] for item in history]
    if os.environ.get("LUCIDREC_SCREENSHOT"):  # refresh docs/img/explorer.png
        page.screenshot(path=os.environ["LUCIDREC_SCREENSHOT"])
    assert page.problems == []


def test_a_lane_run_shows_preference_bars_and_the_text(page, live_server):
    page.select_option("[data-testid=run-select]", "lane")
    page.wait_for_selector("[data-testid=status]:has-text('lane ready')")
    show_user(page)
    page.wait_for_selector("[data-testid=why]")
    api = httpx.get(f"{live_server.base_url}/runs/lane/users/1/explanations", params={"k": K}).json()
    assert texts(page, "[data-testid=rec-title]") == [item["title"] for item in api["items"]]
    assert "Preferences (attention weight the score used)" in page.inner_text("[data-testid=profile]")
    names = texts(page, "[data-testid=profile] .bars > span:not(.bar-value)")
    assert names == [w["name"] for w in api["profile"]] and len(names) == 5
    widths = page.eval_on_selector_all("[data-testid=profile] .bar", "bars => bars.map(b => parseFloat(b.style.width))")
    assert widths == pytest.approx([100 * w["value"] for w in api["profile"]], abs=0.01)  # shares of 1
    assert f"attended most to {names[0]}" in page.inner_text("[data-testid=explanation-text]")
    assert texts(page, "[data-testid=why]")[0].startswith("score ")
    if os.environ.get("LUCIDREC_SCREENSHOT_LANE"):  # refresh docs/img/explorer-lane.png
        page.screenshot(path=os.environ["LUCIDREC_SCREENSHOT_LANE"])

    page.click("[data-testid=tab-history]")  # a visitor's history: no stored preferences, and the page says so
    page.fill("[data-testid=title-input]", "star wars")
    page.wait_for_selector("[data-testid=title-list] option[value='Star Wars (1977)']", state="attached")
    page.fill("[data-testid=title-input]", "Star Wars (1977)")
    page.press("[data-testid=title-input]", "Enter")
    page.wait_for_selector("[data-testid=typed-history] li:has-text('Star Wars (1977)')")
    page.click("[data-testid=show-history]")
    page.wait_for_selector("[data-testid=notes] li")
    assert "no stored preferences" in page.inner_text("[data-testid=notes]")
    assert page.query_selector_all("[data-testid=profile] .bar") == []
    page.fill("[data-testid=as-user]", "1")  # ... or a known user's preferences
    page.click("[data-testid=show-history]")
    page.wait_for_selector("[data-testid=profile] .bar")
    # the same five preferences, weighted by what this history's last position attends to
    assert sorted(texts(page, "[data-testid=profile] .bars > span:not(.bar-value)")) == sorted(names)
    assert page.query_selector("[data-testid=notes] li") is None
    assert page.problems == []


def test_type_a_history_with_autocomplete(page, live_server):
    page.select_option("[data-testid=run-select]", "sasrec")
    page.wait_for_selector("[data-testid=status]:has-text('sasrec ready')")
    page.click("[data-testid=tab-history]")
    page.fill("[data-testid=k]", str(K))
    for query, title in (("star wars", "Star Wars (1977)"), ("fargo", "Fargo (1996)")):
        page.fill("[data-testid=title-input]", query)
        page.wait_for_selector(f"[data-testid=title-list] option[value='{title}']", state="attached")
        page.fill("[data-testid=title-input]", title)
        page.press("[data-testid=title-input]", "Enter")
        page.wait_for_selector(f"[data-testid=typed-history] li:has-text('{title}')")
    page.click("[data-testid=show-history]")
    page.wait_for_selector("[data-testid=rec-title]")
    expected = httpx.post(f"{live_server.base_url}/runs/sasrec/recommend", json={"item_ids": ["50", "100"], "k": K}).json()
    assert texts(page, "[data-testid=rec-title]") == [item["title"] for item in expected["items"]]
    assert "no explainer" in page.inner_text("[data-testid=explanation-text]")
    assert page.problems == []


def test_the_interpreters_reading_renders_when_asked_for(browser, read_server):
    page = open_explorer(browser, read_server)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "reading=true" in request.url else None)
    try:
        assert "read by RecInterpreter (residual)" in page.inner_text("[data-testid=run-info]")
        show_user(page)
        page.wait_for_selector("[data-testid=read-state]", state="visible")
        page.wait_for_selector("[data-testid=status]:has-text('top 5 for user 1')")
        expected = httpx.get(f"{read_server.base_url}/runs/sasrec/users/1/recommendations", params={"k": K}).json()
        assert texts(page, "[data-testid=rec-title]") == [item["title"] for item in expected["items"]]
        assert asked == [] and texts(page, "[data-testid=reading-current]") == []  # the LM waits for the button
        page.click("[data-testid=read-state]")
        page.wait_for_selector("[data-testid=reading-current]")
        api = httpx.get(f"{read_server.base_url}/runs/sasrec/users/1/explanations",
                        params={"k": K, "reading": "true"}).json()["reading"]
        assert len(asked) == 1
        assert page.inner_text("[data-testid=reading-current]") == (api["current_state"] or "(no answer)")
        assert page.inner_text("[data-testid=reading-next]") == (api["predicted_next_item"] or "(no answer)")
        output = page.inner_text("[data-testid=reading-output]")
        assert api["last_item"]["title"] in output and api["recommender_top"][0]["title"] in output
        assert "tiny-llama-0" in page.inner_text("[data-testid=reading-about]")
        if os.environ.get("LUCIDREC_SCREENSHOT_READING"):  # to look at the layout (the tiny LM's words mean nothing)
            page.screenshot(path=os.environ["LUCIDREC_SCREENSHOT_READING"])

        page.select_option("[data-testid=run-select]", "ger")  # a run without an interpreter has no button
        page.wait_for_selector("[data-testid=status]:has-text('ger ready')")
        page.click("[data-testid=show-user]")
        page.wait_for_selector("[data-testid=why]")
        assert not page.is_visible("[data-testid=read-state]")
        assert page.problems == []
    finally:
        page.close()


def test_errors_are_shown_not_thrown(page):
    page.fill("[data-testid=user-input]", "no-such-user")
    page.click("[data-testid=show-user]")
    page.wait_for_selector("[data-testid=status].error")
    assert "unknown user 'no-such-user'" in page.inner_text("[data-testid=status]")
    page.problems[:] = [p for p in page.problems if "404" not in p]  # the browser logs the 404 response itself
    assert page.problems == []


def test_with_an_api_key_the_page_asks_for_it(browser, served_runs):
    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig
    from lucidrec.serve.server import BackgroundServer

    key = "explorer-key-0123456789"
    with BackgroundServer(create_app(served_runs, ServeConfig(api_key=key))).start() as server:
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.base_url + "/")
        page.wait_for_selector("#key-box:not([hidden])")
        assert "401" in page.inner_text("[data-testid=status]")
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.wait_for_selector("[data-testid=status]:has-text('ready')")
        assert texts(page, "[data-testid=run-select] option") == ["ger", "sasrec", "pop", "lane"]
        assert problems == []
        page.close()


def test_the_api_docs_render_with_every_outside_request_blocked(browser):
    """/docs and /redoc in a browser that may reach this server only: Swagger UI and ReDoc still draw the API
    (ReDoc's bundle asks its vendor's site for a "powered by" logo; it is left out, nothing else is missing)."""
    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig
    from lucidrec.serve.server import BackgroundServer

    with BackgroundServer(create_app({}, ServeConfig())).start() as server:
        page = browser.new_page()
        outside, problems = [], []
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.base_url)
                   else (outside.append(route.request.url), route.abort()))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.base_url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path[data-path='/runs/{run}/recommend']")
        assert outside == [] and problems == []
        page.goto(server.base_url + "/redoc")
        page.wait_for_selector("[data-section-id='tag/status']")  # ReDoc drew the operations, by tag
        assert all(url.endswith(".svg") for url in outside) and problems == []
        page.close()
