"""The LANE recipe: ``item_table → preferences → aligned_run``.

- ``item_table``: the titles' sentence vectors (``<run>/lane/items.*``), keyed by the encoder and the data;
- ``preferences``: P phrases per user from the training history (chat model) or a recorded file, encoded
  by the same encoder (``<run>/lane/preferences.*``), keyed by the preference settings, data and split;
- ``aligned_run``: the run itself over the ``lane`` embedding, whose state hook aligns the states
  with the preferences.
"""

from __future__ import annotations

import json
from pathlib import Path

from lucidrec.config import validate_config
from lucidrec.data import dataset_folder
from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.embeddings.lane.state_files import (ITEMS, PREFERENCES, STATE_DIR, items_fingerprint,
                                                 preferences_fingerprint, read_stage, split_identity, stage_meta,
                                                 write_stage)
from lucidrec.files import write_text_atomic
from lucidrec.methods.lane.extraction import (create_chat, encode_preferences, extract_from_history, extract_with_chat,
                                              read_recorded)
from lucidrec.methods.lane.item_table import encode_titles
from lucidrec.methods.recipe import RECIPES, Recipe, RecipeContext, StageState, StageStatus, run_status, say


def lane_config(context: RecipeContext) -> LaneConfig:
    params = {k: v for k, v in context.config.embedding.items() if k != "name"}
    return validate_config(LaneConfig, params, "embedding 'lane'")


def make_encoder(config: LaneConfig):
    from lucidrec.lm.encoder import TextEncoder

    return TextEncoder(config.encoder, cache_dir=config.cache_dir, show_progress=False)


@RECIPES.register("lane")
class LaneRecipe(Recipe):
    stages = ("item_table", "preferences", "aligned_run")

    def __init__(self, encoder=None, chat=None):
        # Injected in tests (a small encoder, the mock chat model); built from the config otherwise.
        self.encoder, self.chat = encoder, chat

    def _encoder(self, config: LaneConfig):
        if self.encoder is None:
            self.encoder = make_encoder(config)
        return self.encoder

    def prepare(self, context: RecipeContext) -> None:
        config = lane_config(context)
        folder = Path(context.run_dir) / STATE_DIR
        data, split = context.data, context.split
        key = items_fingerprint(config, data.data_hash)
        if read_stage(folder, ITEMS, key) is None:
            say("lane", "encoding item titles", context.progress)
            table, has_title, info = encode_titles(data, self._encoder(config))
            write_stage(folder, ITEMS, {"vectors": table, "has_title": has_title}, {**info, "fingerprint": key})
        key = preferences_fingerprint(config, data.data_hash, split_identity(split))
        if read_stage(folder, PREFERENCES, key) is None:
            say("lane", f"extracting preferences ({config.source})", context.progress)
            if config.source == "recorded":
                extraction = read_recorded(recorded_file(config.recorded_path, context.config.data), data,
                                           config.n_preferences)
            elif config.source == "history":
                extraction = extract_from_history(config, data, split.train)
            else:
                chat = self.chat if self.chat is not None else create_chat(config)
                extraction = extract_with_chat(config, data, split.train, chat, progress=context.progress)
            vectors, mask = encode_preferences(extraction, self._encoder(config), config.n_preferences)
            lines = [json.dumps({"user_id": str(data.user_ids[u]), "source": extraction.sources[u],
                                 "phrases": extraction.phrases[u]}, ensure_ascii=False)
                     for u in range(len(extraction.phrases))]
            write_text_atomic(folder / f"{PREFERENCES}.jsonl", "\n".join(lines) + "\n")
            meta = {"source": config.source, "counts": extraction.counts(), **extraction.stats,
                    "possible_test_leakage": bool(extraction.stats.get("possible_test_leakage", False)),
                    "fingerprint": key}
            write_stage(folder, PREFERENCES, {"vectors": vectors, "mask": mask}, meta)

    def status(self, context: RecipeContext) -> list[StageStatus]:
        config = lane_config(context)
        folder = Path(context.run_dir) / STATE_DIR
        expected = {ITEMS: items_fingerprint(config, context.data.data_hash),
                    PREFERENCES: preferences_fingerprint(config, context.data.data_hash, split_identity(context.split))}
        out = []
        for stage, name in (("item_table", ITEMS), ("preferences", PREFERENCES)):
            meta = stage_meta(folder, name)
            if meta is not None and meta.get("fingerprint") == expected[name]:
                out.append(StageStatus(stage, StageState.DONE, str(folder)))
            else:
                note = "made for other settings" if meta is not None else ""
                if name == PREFERENCES and config.source == "llm":
                    note = note or "answers already in the chat cache are reused"
                out.append(StageStatus(stage, StageState.MISSING, str(folder), note))
        out.append(run_status("aligned_run", context.run_dir))
        return out


def recorded_file(path: str, data_config) -> Path:
    """A recorded-preferences file as given, or else relative to the dataset's folder (so a grid or run file can
    name ``llm/user_preferences.jsonl`` of the dataset without a machine's path)."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    inside = dataset_folder(data_config.dataset, data_config.data_dir) / given
    return inside if inside.exists() else given
