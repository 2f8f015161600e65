"""Users' own data: any CSV/TSV/Parquet table, with a mapping from its column names to ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.errors import DataFormatError


class ColumnMapping(BaseModel):
    """Names of the user's columns; ``None`` means the table does not have that field."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str | None = "timestamp"
    rating: str | None = "rating"
    seq_pos: str | None = None


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    separator = sep or ("\t" if path.suffix in (".tsv", ".tab") else ",")
    try:
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise DataFormatError(path, str(exc)) from exc


def load_table(
    interactions: str | Path,
    mapping: ColumnMapping | dict | None = None,
    items: str | Path | None = None,
    item_id_column: str = "item_id",
    name: str | None = None,
    sep: str | None = None,
) -> Dataset:
    """Load a table of interactions (and optionally one of items) under a column mapping.

    Missing timestamps and ratings are allowed; order then follows ``seq_pos`` if mapped, else the
    file order per user.
    """
    mapping = mapping if isinstance(mapping, ColumnMapping) else ColumnMapping.model_validate(mapping or {})
    table = read_table(Path(interactions), sep)
    renamed = {}
    for ours, theirs in mapping.model_dump().items():
        if theirs is None:
            continue
        if theirs not in table.columns:
            optional = ours in ("timestamp", "rating") and theirs == ours
            if optional:
                continue
            raise DataFormatError(interactions, f"missing column (has: {', '.join(table.columns)})", field=theirs)
        renamed[ours] = table[theirs]
    frame = pd.DataFrame(renamed)
    for column, caster in (("timestamp", _to_epoch), ("rating", lambda s: pd.to_numeric(s, errors="raise"))):
        if column in frame:
            try:
                frame[column] = caster(frame[column])
            except (ValueError, TypeError) as exc:
                raise DataFormatError(interactions, f"cannot parse values: {exc}", field=mapping.model_dump()[column]) from exc
    catalog = ItemCatalog.empty()
    if items is not None:
        item_table = read_table(Path(items), sep)
        if item_id_column not in item_table.columns:
            raise DataFormatError(items, f"missing column (has: {', '.join(item_table.columns)})", field=item_id_column)
        catalog = ItemCatalog(item_table.rename(columns={item_id_column: "item_id"}).astype({"item_id": str}))
    return Dataset(name or Path(interactions).stem, frame, catalog, source=str(interactions))


def _to_epoch(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        return numeric.astype("Int64")
    parsed = pd.to_datetime(values, errors="raise", utc=True)
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("Int64")
