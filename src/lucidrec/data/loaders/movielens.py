"""Official GroupLens formats: MovieLens-100K, MovieLens-1M and MovieLens latest (CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.loaders._delimited import YEAR_IN_TITLE, read_delimited
from lucidrec.errors import DataFormatError

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)


def _year(title: str):
    match = YEAR_IN_TITLE.search(title or "")
    return int(match.group(1)) if match else pd.NA


def _ratings_frame(frame: pd.DataFrame, user: str, item: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": frame[user].astype(str),
            "item_id": frame[item].astype(str),
            "timestamp": frame["timestamp"].astype("Int64"),
            "rating": frame["rating"].astype("Float32"),
        }
    )


def _notes(*bads) -> list[str]:
    return [bad.summary() for bad in bads if bad.lines]


# --- MovieLens-100K: u.data (tab separated) + u.item ('|' separated, latin-1) -------------------

def detect_100k(folder: Path) -> bool:
    return (folder / "u.data").is_file()


def load_100k(folder: Path, name: str = "ml-100k", on_bad_lines: str = "raise") -> Dataset:
    ratings, bad_r = read_delimited(
        folder / "u.data", ["user", "item", "rating", "timestamp"], sep="\t",
        numeric={"user": "int", "item": "int", "rating": "float", "timestamp": "int"}, on_bad_lines=on_bad_lines,
    )
    items = ItemCatalog.empty()
    bad_i = None
    if (folder / "u.item").is_file():
        columns = ["item_id", "title", "release", "video_release", "url", *ML100K_GENRES]
        raw, bad_i = read_delimited(
            folder / "u.item", columns, sep="|", numeric={"item_id": "int"}, encoding="latin-1",
            on_bad_lines=on_bad_lines,
        )
        flags = raw[list(ML100K_GENRES)].to_numpy() == "1"
        genres = [[g for g, on in zip(ML100K_GENRES, row) if on] for row in flags]
        items = ItemCatalog(
            pd.DataFrame(
                {
                    "item_id": raw["item_id"].astype(str),
                    "title": raw["title"].replace("", pd.NA).astype("string"),
                    "release": raw["release"].replace("", pd.NA).astype("string"),
                    "genres": genres,
                }
            )
        )
    return Dataset(name, _ratings_frame(ratings, "user", "item"), items, source=str(folder / "u.data"),
                   notes=_notes(bad_r, *([bad_i] if bad_i else [])))


# --- MovieLens-1M: ratings.dat + movies.dat ('::' separated, latin-1) ------------------------

def detect_1m(folder: Path) -> bool:
    return (folder / "ratings.dat").is_file()


def load_1m(folder: Path, name: str = "ml-1m", on_bad_lines: str = "raise") -> Dataset:
    ratings, bad_r = read_delimited(
        folder / "ratings.dat", ["user", "item", "rating", "timestamp"], sep="::", encoding="latin-1",
        numeric={"user": "int", "item": "int", "rating": "float", "timestamp": "int"}, on_bad_lines=on_bad_lines,
    )
    items, bads = _movies(folder / "movies.dat", sep="::", header=False, on_bad_lines=on_bad_lines)
    return Dataset(name, _ratings_frame(ratings, "user", "item"), items, source=str(folder / "ratings.dat"),
                   notes=_notes(bad_r, *bads))


# --- MovieLens latest / 20M / 25M / 32M: ratings.csv + movies.csv -----------------------------

def detect_csv(folder: Path) -> bool:
    return (folder / "ratings.csv").is_file() and (folder / "movies.csv").is_file()


def load_csv(folder: Path, name: str = "ml-latest-small", on_bad_lines: str = "raise") -> Dataset:
    ratings, bad_r = read_delimited(
        folder / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], sep=",", header=True,
        numeric={"userId": "int", "movieId": "int", "rating": "float", "timestamp": "int"}, on_bad_lines=on_bad_lines,
    )
    items, bads = _movies(folder / "movies.csv", sep=",", header=True, on_bad_lines=on_bad_lines)
    return Dataset(name, _ratings_frame(ratings, "userId", "movieId"), items, source=str(folder / "ratings.csv"),
                   notes=_notes(bad_r, *bads))


def _movies(path: Path, sep: str, header: bool, on_bad_lines: str):
    if not path.is_file():
        return ItemCatalog.empty(), []
    columns = ["movieId", "title", "genres"]
    raw, bad = read_delimited(
        path, columns, sep=sep, header=header, numeric={"movieId": "int"},
        encoding="latin-1" if not header else "utf-8", on_bad_lines=on_bad_lines, quoting=header,
    )
    genres = [[] if g in ("", "(no genres listed)") else g.split("|") for g in raw["genres"]]
    titles = raw["title"].str.strip()
    frame = pd.DataFrame(
        {
            "item_id": raw["movieId"].astype(str),
            "title": titles.replace("", pd.NA).astype("string"),
            "year": pd.array([_year(t) for t in titles], dtype="Int64"),
            "genres": genres,
        }
    )
    if frame["item_id"].duplicated().any():
        dup = frame.loc[frame["item_id"].duplicated(), "item_id"].iloc[0]
        line = int(np.flatnonzero(frame["item_id"].to_numpy() == dup)[1]) + (2 if header else 1)
        raise DataFormatError(path, f"movie id {dup} defined twice", line=line, field="movieId")
    return ItemCatalog(frame), [bad]
