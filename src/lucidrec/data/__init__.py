"""Datasets: loading by name, preparation (filters, ids), splits and popularity statistics."""

from __future__ import annotations

from pathlib import Path

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.download import OFFICIAL_DATASETS
from lucidrec.data.formats import FORMATS, detect_format
from lucidrec.errors import DataFormatError, UnknownNameError
from lucidrec.settings import resolve_data_dir

__all__ = ["Dataset", "ItemCatalog", "load_dataset", "available_datasets"]


def available_datasets(data_dir: str | Path | None = None) -> list[str]:
    """Folders under the data directory that some loader can read."""
    root = resolve_data_dir(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and detect_format(p) is not None)


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder of dataset ``name``: ``<data dir>/<name>``, or ``name`` itself when it is a folder path."""
    root = resolve_data_dir(data_dir)
    return Path(name) if Path(name).is_dir() and not (root / name).is_dir() else root / name


def load_dataset(name: str, data_dir: str | Path | None = None, on_bad_lines: str = "raise") -> Dataset:
    """Load ``name`` from the data directory (or a path to a folder), whatever its format.

    ``on_bad_lines="skip"`` skips malformed lines of text formats and records how many, and which,
    in ``Dataset.notes``; the default raises :class:`DataFormatError` naming file, line and field.
    """
    if on_bad_lines not in ("raise", "skip"):
        raise ValueError("on_bad_lines must be 'raise' or 'skip'")
    root = resolve_data_dir(data_dir)
    folder = dataset_folder(name, data_dir)
    found = detect_format(folder) if folder.is_dir() else None
    if found is None:
        if not root.is_dir() and not folder.is_dir():
            source = "given by --data-dir" if data_dir else "the default data directory"
            hint = f"; `lucidrec data download {name}` fetches it there" if name in OFFICIAL_DATASETS else ""
            raise DataFormatError(root, f"the data folder does not exist ({source}): check the path{hint}")
        if folder.is_dir():
            expected = "; ".join(f.name for f in FORMATS)
            raise DataFormatError(folder, f"no recognised dataset files here or in raw/ (formats: {expected})")
        if name in OFFICIAL_DATASETS:
            raise DataFormatError(
                folder, f"dataset '{name}' is not in {root}; fetch it with `lucidrec data download {name}` "
                f"(or set --data-dir / LUCIDREC_DATA_DIR to where it is)",
            )
        raise UnknownNameError("dataset", name, sorted(set(available_datasets(root)) | set(OFFICIAL_DATASETS)))
    fmt, where = found
    kwargs = {"on_bad_lines": on_bad_lines} if fmt.reads_bad_lines else {}
    dataset = fmt.load(where, Path(name).name, **kwargs)
    dataset.notes.insert(0, f"format: {fmt.name} ({where})")
    return dataset
