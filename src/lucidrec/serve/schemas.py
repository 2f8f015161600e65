"""Request and response bodies of the recommender API (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator


class Problem(BaseModel):
    detail: str = Field(description="What was wrong, naming the unknown run, user or item.")


class Health(BaseModel):
    status: Literal["ok"]
    runs: list[str]
    warming: list[str] = Field(default_factory=list, description="Runs whose stored users' states are still being "
                                                                 "computed (they answer meanwhile, a little slower).")


class Item(BaseModel):
    item_id: str
    title: str


class ScoredItem(Item):
    rank: int = Field(ge=1)
    score: float


class InterpreterInfo(BaseModel):
    task: Literal["residual", "recovery"] = Field(description="What the adapter was trained to make the LM say: "
                                                              "residual, the item appended between two states; "
                                                              "recovery, the last items a state holds.")
    lm: str = Field(description="The language model that reads the states.")
    folder: str = Field(description="The adapter folder's name.")


class RunSummary(BaseModel):
    name: str
    dataset: str
    model: str = Field(description="Backbone (sasrec, gru4rec, ...) or baseline (pop, cooc).")
    method: str = Field(description="Item embedding (id, frozen, llmemb, ger) or 'baseline'.")
    n_users: int
    n_items: int
    explainable: bool = Field(description="Whether /explanations answers for this run (it has an explainer of "
                                          "its scores or an attached RecInterpreter).")
    interpreter: InterpreterInfo | None = Field(None, description="The RecInterpreter attached to the run (serve "
                                                                  "--interpreter), None when none is.")
    metrics: dict[str, float] = Field(description="Flat metric keys as in metrics.json (test/full/ndcg@10, ...).")


class RunDetail(RunSummary):
    groups: dict[str, dict[str, float]] = Field(
        description="Test metrics (full ranking) by user/item group: all, tail, head, short, long, ...; "
                    "n_users is the group's size.")


class UserBrief(BaseModel):
    user_id: str
    history_length: int


class UserPage(BaseModel):
    run: str
    total: int
    offset: int
    users: list[UserBrief]


class UserHistory(BaseModel):
    run: str
    user_id: str
    history: list[Item] = Field(description="Oldest first.")


class Recommendations(BaseModel):
    run: str
    user_id: str | None = Field(description="None for an ad-hoc history.")
    history_masked: bool
    history: list[Item] = Field(description="The history the recommendations follow on, oldest first.")
    items: list[ScoredItem]


class RecommendRequestBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_ids: list[str] = Field(default_factory=list, description="History as item ids, oldest first.")
    titles: list[str] = Field(default_factory=list, description="History as exact titles (after item_ids).")
    k: int = 10
    mask_history: bool = True
    user_id: str | None = Field(None, description="Score the history as this known user: their per-user parameters "
                                                  "(GER's user part, LANE's preferences). None: a visitor without any.")

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.item_ids and not self.titles:
            raise ValueError("give the history as item_ids or titles (at least one item)")
        return self


def recommend_request_model(max_k: int, max_history: int) -> type[RecommendRequestBase]:
    """The request body with this server's limits in its schema (so clients and fuzzers see them)."""
    return create_model(
        "RecommendRequest", __base__=RecommendRequestBase,
        item_ids=(list[str], Field(default_factory=list, max_length=max_history, description="History as item ids, oldest first.")),
        titles=(list[str], Field(default_factory=list, max_length=max_history, description="History as exact titles.")),
        k=(int, Field(10, ge=1, le=max_k, description="How many items to recommend.")),
    )


class SearchHit(Item):
    score: float
    match: Literal["title", "encoder"] = Field(description="'title': the query is part of the title; "
                                                             "'encoder': nearest by the sentence encoder.")


class SearchResults(BaseModel):
    run: str
    query: str
    encoder: str | None = Field(description="The sentence encoder used, None when only titles were matched.")
    items: list[SearchHit]


class ItemDetail(Item):
    run: str
    interactions: int = Field(description="Interactions with the item in the dataset.")
    fields: dict[str, str] = Field(description="The catalog's text fields of the item.")


class Weight(BaseModel):
    name: str
    value: float


class ItemExplanation(ScoredItem):
    contributions: list[Weight] = Field(description="What each attribute adds to the score (GER; empty for LANE, "
                                                    "whose preference weights are the explanation's profile).")
    rest: float | None = Field(description="The part of the score no named attribute carries.")
    text: str


class StateReading(BaseModel):
    """RecInterpreter: what a frozen language model, through the adapter trained on this run, says the
    recommender's state encodes (greedy answers to the adapter folder's first test prompt)."""

    task: Literal["residual", "recovery"]
    lm: str = Field(description="The language model that read the state.")
    prompt: str = Field(description="The prompt; the state's soft tokens go where it says <SeqHere>.")
    current_state: str = Field(description="The LM's answer for the current state. residual: read from the states "
                                           "before and after the last item, so at best that item's title; "
                                           "recovery: the titles of the last items.")
    predicted_next_item: str = Field(description="Its answer for the state the recommender expects next (in place of "
                                                 "the current one): the item the recommender predicts, as the LM "
                                                 "names it.")
    last_item: Item
    recent_items: list[Item] = Field(description="The history's last items, oldest first (what recovery should list).")
    recommender_top: list[Item] = Field(description="The recommender's own top items after this history (history "
                                                    "left out), to hold predicted_next_item against.")
    heldout: bool | None = Field(description="Whether the user was held out from the adapter's training (a fair "
                                             "test of the reading); None for a history without a user.")


class Explanation(BaseModel):
    run: str
    user_id: str | None = Field(description="None for an ad-hoc history.")
    method: str = Field(description="Which explainer answered, e.g. 'ger-attribute-contributions'.")
    profile: list[Weight] = Field(description="The user's weights: GER's attribute profile, or LANE's preference "
                                              "phrases with the attention weight the score used.")
    text: str
    items: list[ItemExplanation]
    notes: list[str] = Field(default_factory=list, description="What stood in for missing per-user parts "
                                                               "(e.g. a visitor has no stored preferences).")
    reading: StateReading | None = Field(None, description="RecInterpreter's reading of the state, when asked for "
                                                           "(reading=true) on a run served with an interpreter.")
