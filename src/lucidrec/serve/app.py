"""The recommender API and the web explorer (``lucidrec serve RUN ...``).

Models are loaded once at start, and the stored users' states are computed once (on a background
thread at start, or at a user's first request): a user's recommendations are then one product with
the item table. Scoring requests that arrive together are batched into one call on the event loop;
at most ``max_pending`` scoring requests are in flight (the next gets 503). Explanations and search
run on the thread pool; RecInterpreter's readings too, cached and bounded (:mod:`lucidrec.serve.readings`).
"""

from contextlib import asynccontextmanager
from importlib import resources

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from lucidrec.interpret.reader import HistoryTooShort
from lucidrec.serve import explanations, readings
from lucidrec.serve.batching import LoopBatcher
from lucidrec.serve.config import ServeConfig
from lucidrec.serve.docs_pages import api_app
from lucidrec.serve.runs import NotFound, ScoreRequest, ServedRun
from lucidrec.serve.schemas import (Explanation, Health, Item, ItemDetail, Problem, Recommendations, RunDetail,
                                    RunSummary, ScoredItem, SearchHit, SearchResults, UserBrief, UserHistory, UserPage,
                                    recommend_request_model)
from lucidrec.serve.security import BodyLimitMiddleware, ScoringGate, api_key_dependency

HISTORY_SHOWN = 50  # the most recent history items echoed with recommendations
MAX_PAGE = 1000
MAX_SEARCH = 50
MAX_QUERY_CHARS = 200
STATIC = resources.files("lucidrec.serve") / "static"

_errors = {401: {"model": Problem, "description": "Missing or wrong API key"},
           413: {"model": Problem, "description": "Request body over the limit"},
           503: {"model": Problem, "description": "Too many scoring requests (or state readings) in flight; retry"}}
_not_found = {404: {"model": Problem, "description": "Unknown run, user or item (named in detail)"}}


def create_app(runs: dict[str, ServedRun], config: ServeConfig | None = None, *, warm_search: bool = False,
               warm_states_at_start: bool = True) -> FastAPI:
    config = config or ServeConfig.from_env()
    gate = ScoringGate(config.max_pending)
    state_readings = readings.Readings(config.max_readings, config.reading_cache)
    batchers = {name: LoopBatcher(run.score_batch, max_batch=config.max_batch, wait=config.batch_wait_ms / 1000)
                for name, run in runs.items()}
    warming: set[str] = set()

    def warm_states(run: ServedRun) -> None:
        try:
            run.warm_states()
        finally:
            warming.discard(run.name)

    @asynccontextmanager
    async def lifespan(_app):
        import threading

        for run in runs.values():  # stored users' states, so their requests skip the forward pass
            if warm_states_at_start and run.model is not None:
                warming.add(run.name)
                threading.Thread(target=warm_states, args=(run,), name=f"lucidrec-warm-{run.name}", daemon=True).start()
        if warm_search:  # the encoder and the catalog's title vectors, before the first visitor types
            for run in runs.values():
                threading.Thread(target=run.search_index, daemon=True).start()
        yield
        for batcher in batchers.values():
            batcher.stop()

    app = api_app(title="lucidrec", version="1", lifespan=lifespan,
                  description="Recommendations, explanations and item search of trained lucidrec runs.")
    app.state.runs, app.state.gate, app.state.config, app.state.batchers = runs, gate, config, batchers
    app.state.readings = state_readings
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)

    @app.exception_handler(NotFound)
    @app.exception_handler(explanations.NoExplainer)
    @app.exception_handler(readings.NoInterpreter)
    async def not_found(_request, exc: Exception):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(HistoryTooShort)
    async def too_short(_request, exc: HistoryTooShort):  # the shape of every other 422
        return JSONResponse({"detail": [{"type": "value_error", "loc": ["history"], "msg": str(exc)}]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode: malformed input, like any other
            error = {"type": "body_not_decodable", "loc": ["body"], "msg": f"malformed request body: {exc.detail}"}
            return JSONResponse({"detail": [error]}, status_code=422)  # the shape of every other 422
        return await http_exception_handler(request, exc)

    @app.get("/health", response_model=Health, tags=["status"])
    def health() -> Health:
        return Health(status="ok", runs=list(runs), warming=sorted(warming))

    api = APIRouter(dependencies=[Depends(api_key_dependency(config))], responses=_errors)

    async def get_run(run: str = Path(description="Run name, as listed by /runs.")) -> ServedRun:
        if run not in runs:
            raise NotFound("run", run)
        return runs[run]

    def summary(run: ServedRun, detail: bool = False) -> RunSummary:
        values = dict(name=run.name, dataset=run.dataset, model=run.model_name, method=run.method,
                      n_users=run.data.n_users, n_items=run.n_items, explainable=explanations.explainable(run),
                      interpreter=None if run.interpreter is None else run.interpreter.info(), metrics=run.metrics)
        return RunDetail(**values, groups=run.metric_groups()) if detail else RunSummary(**values)

    def item(run: ServedRun, index: int) -> Item:
        return Item(item_id=run.item_id(index), title=run.title(index))

    async def recommend(run: ServedRun, history: list[int], user: int, k: int, mask: bool,
                        stored: bool = False) -> list[ScoredItem]:
        with gate.slot():
            top = await batchers[run.name].run(ScoreRequest(tuple(history), user, k, mask, stored))
        return [ScoredItem(item_id=run.item_id(i), title=run.title(i), rank=rank + 1, score=score)
                for rank, (i, score) in enumerate(top)]

    K = Query(10, ge=1, le=config.max_k, description="How many items.")

    @api.get("/runs", response_model=list[RunSummary], tags=["runs"])
    def list_runs() -> list[RunSummary]:
        return [summary(run) for run in runs.values()]

    @api.get("/runs/{run}", response_model=RunDetail, responses=_not_found, tags=["runs"])
    def run_detail(run: ServedRun = Depends(get_run)) -> RunSummary:
        return summary(run, detail=True)

    @api.get("/runs/{run}/users", response_model=UserPage, responses=_not_found, tags=["users"])
    def list_users(run: ServedRun = Depends(get_run), offset: int = Query(0, ge=0),
                   limit: int = Query(100, ge=1, le=MAX_PAGE)) -> UserPage:
        lengths = run.data.sequences.lengths()
        stop = min(offset + limit, run.data.n_users)
        users = [UserBrief(user_id=str(run.data.user_ids[u]), history_length=int(lengths[u])) for u in range(offset, stop)]
        return UserPage(run=run.name, total=run.data.n_users, offset=offset, users=users)

    @api.get("/runs/{run}/users/{user}", response_model=UserHistory, responses=_not_found, tags=["users"])
    def user_history(user: str, run: ServedRun = Depends(get_run)) -> UserHistory:
        history = run.history(run.user_index(user))
        return UserHistory(run=run.name, user_id=user, history=[item(run, i) for i in history])

    @api.get("/runs/{run}/users/{user}/recommendations", response_model=Recommendations, responses=_not_found,
             tags=["recommend"])
    async def user_recommendations(user: str, run: ServedRun = Depends(get_run), k: int = K,
                                   mask_history: bool = Query(True, description="Leave out items already seen.")):
        index = run.user_index(user)
        history = run.history(index)
        items = await recommend(run, history, index, k, mask_history, stored=True)
        return Recommendations(run=run.name, user_id=user, history_masked=mask_history,
                               history=[item(run, i) for i in history[-HISTORY_SHOWN:]], items=items)

    RecommendRequest = recommend_request_model(config.max_k, config.max_history)

    def resolve_history(run: ServedRun, body) -> list[int]:
        return [run.item_index(i) for i in body.item_ids] + [run.item_by_title(t) for t in body.titles]

    def resolve_user(run: ServedRun, body) -> int | None:
        return None if body.user_id is None else run.user_index(body.user_id)

    @api.post("/runs/{run}/recommend", response_model=Recommendations, responses=_not_found, tags=["recommend"])
    async def recommend_history(body: RecommendRequest, run: ServedRun = Depends(get_run)):  # type: ignore[valid-type]
        """Score an ad-hoc history (item ids, then exact titles, oldest first): with ``user_id``, with that
        user's per-user parameters; without, as a visitor who has none."""
        history = resolve_history(run, body)
        user = resolve_user(run, body)
        items = await recommend(run, history, -1 if user is None else user, body.k, body.mask_history)
        return Recommendations(run=run.name, user_id=body.user_id, history_masked=body.mask_history,
                               history=[item(run, i) for i in history[-HISTORY_SHOWN:]], items=items)

    READING = Query(False, description="Also RecInterpreter's reading of the state (runs served with --interpreter; "
                                       "seconds on a CPU the first time, then cached; 503 while too many are being "
                                       "generated, 404 on a run without an interpreter).")

    async def explain(run: ServedRun, history: list[int], user: int | None, user_id: str | None, k: int,
                      reading: bool, stored: bool = False) -> Explanation:
        if reading:
            readings.require_interpreter(run)  # before any work
        if explanations.unavailable(run) is None:
            with gate.slot():
                answer = await run_in_threadpool(explanations.explain, run, history, user, k)
        elif run.interpreter is not None:
            items = await recommend(run, history, -1 if user is None else user, k, True, stored)
            answer = explanations.scores_only(run, user_id, items)
        else:
            explanations.require_explainer(run)
        if reading:
            answer.reading = await state_readings.read(run, history, user)
        return answer

    @api.get("/runs/{run}/users/{user}/explanations", response_model=Explanation, responses=_not_found,
             tags=["explain"])
    async def user_explanations(user: str, run: ServedRun = Depends(get_run), k: int = K,
                                reading: bool = READING) -> Explanation:
        """Why each of the top-k items is recommended to the user (404 when the run has neither an explainer
        nor an interpreter), and with ``reading=true`` what RecInterpreter's language model reads in the
        user's state."""
        index = run.user_index(user)
        return await explain(run, run.history(index), index, user, k, reading, stored=True)

    @api.post("/runs/{run}/explain", response_model=Explanation, responses=_not_found, tags=["explain"])
    async def explain_history(body: RecommendRequest, run: ServedRun = Depends(get_run),  # type: ignore[valid-type]
                              reading: bool = READING):
        """Why each of the top-k items follows an ad-hoc history (404 when the run has neither an explainer nor
        an interpreter); with ``user_id``, with that user's per-user parameters (LANE: their preferences),
        else as a visitor. ``reading=true`` adds RecInterpreter's reading of the history's state."""
        history = resolve_history(run, body)
        user = resolve_user(run, body)
        return await explain(run, history, user, body.user_id, body.k, reading)

    @api.get("/runs/{run}/items", response_model=SearchResults, responses=_not_found, tags=["items"])
    async def search_items(run: ServedRun = Depends(get_run),
                           query: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS,
                                              description="Part of a title, or a description."),
                           limit: int = Query(10, ge=1, le=MAX_SEARCH)) -> SearchResults:
        with gate.slot():
            index = await run_in_threadpool(run.search_index)
            hits = await run_in_threadpool(index.search, query, limit)
        return SearchResults(run=run.name, query=query, encoder=index.encoder_name,
                             items=[SearchHit(item_id=run.item_id(i), title=run.title(i), score=score, match=match)
                                    for i, score, match in hits])

    @api.get("/runs/{run}/items/{item_id}", response_model=ItemDetail, responses=_not_found, tags=["items"])
    def item_detail(item_id: str, run: ServedRun = Depends(get_run)) -> ItemDetail:
        index = run.item_index(item_id)
        fields = {k: str(v) for k, v in run.data.catalog.record(item_id).items()}
        return ItemDetail(run=run.name, item_id=item_id, title=run.title(index), interactions=run.interactions(index),
                          fields=fields)

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def explorer() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/explorer", StaticFiles(directory=str(STATIC)), name="explorer")
    return app
