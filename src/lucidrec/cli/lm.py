"""``lucidrec lm``: serve a local model over the OpenAI protocol, inspect and clear LLM caches."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import JsonOption, choice_option, guarded, require_serve_extra
from lucidrec.lm.chat import CHAT_BACKENDS

app = typer.Typer(help="Language models: serve, ask, inspect availability and caches.", no_args_is_help=True)

CacheDirOption = typer.Option(None, "--cache-dir", help="Cache root (default: $LUCIDREC_CACHE_DIR or ~/.cache/lucidrec).")


def _cache_root(cache_dir: Optional[Path]) -> Path:
    from lucidrec.lm.config import CacheConfig

    return CacheConfig(dir=cache_dir).root()


def _cache_stats(root: Path) -> dict:
    from lucidrec.lm.cache import ResponseCache
    from lucidrec.lm.vector_cache import VectorCache

    out = {}
    for name, cls, sub in (("responses", ResponseCache, "llm/responses.sqlite"), ("vectors", VectorCache, "vectors/vectors.sqlite")):
        if (root / sub).is_file():
            stats = cls(root / sub).stats()
            stats.pop("session", None)
            out[name] = stats
        else:
            out[name] = {"path": str(root / sub), "entries": 0, "note": "not created yet"}
    return out


@app.command("serve")
@guarded
def serve(
    model: str = typer.Option("SmolLM2-135M-Instruct", "--model", help="Folder, hub id, .gguf file, or the default SmolLM2."),
    gguf_file: Optional[str] = typer.Option(None, "--gguf-file", help="GGUF file name inside --model."),
    backend: str = choice_option("transformers", "--backend", kind="local backend", choices=("transformers", "mock"),
                                 help="Local backend to serve."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", help="0 picks a free port."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name reported by /v1/models."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Prompts per generate() call."),
    batch_wait_ms: float = typer.Option(20.0, "--batch-wait-ms", help="How long to gather concurrent requests into one batch."),
    use_cache: bool = typer.Option(False, "--cache/--no-cache", help="Also cache answers on the server side."),
    cache_dir: Optional[Path] = CacheDirOption,
):
    """Serve a local model at http://HOST:PORT/v1 (chat completions with logprobs, models).

    Binds loopback unless --host says otherwise; set LUCIDREC_API_KEY to require a key."""
    require_serve_extra()
    import uvicorn

    from lucidrec.lm.chat import create_chat_model
    from lucidrec.serve.config import ServeConfig
    from lucidrec.serve.lm_app import create_lm_app
    from lucidrec.serve.server import uvicorn_config, warn_if_exposed

    options = {"cache": {"dir": cache_dir, "enabled": use_cache}, "show_progress": False}
    if backend == "transformers":
        options.update(model=model, gguf_file=gguf_file, batch_size=batch_size)
    chat = create_chat_model(backend, **options)
    if hasattr(chat, "load"):
        typer.echo(f"loading {chat.model_id} ...", err=True)
        chat.load()
    config = ServeConfig.from_env()
    app = create_lm_app(chat, model_name=name, config=config, max_batch=batch_size, batch_wait=batch_wait_ms / 1000,
                        use_cache=use_cache)
    warn_if_exposed(host, config)
    typer.echo(f"serving {app.state.model_name} at http://{host}:{port}/v1 (Ctrl-C to stop)", err=True)
    uvicorn.Server(uvicorn_config(app, host, port, config)).run()


@app.command("ask")
@guarded
def ask(
    prompt: str = typer.Argument(..., help="The user message."),
    backend: str = choice_option("transformers", "--backend", kind="chat backend", choices=CHAT_BACKENDS,
                                 help="Chat backend to ask."),
    model: Optional[str] = typer.Option(None, "--model"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai backend: server URL (default $LUCIDREC_LLM_BASE_URL)."),
    system: Optional[str] = typer.Option(None, "--system", help="A system message."),
    max_tokens: int = typer.Option(128, "--max-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the model even when the answer is cached (and do not store it)."),
    cache_dir: Optional[Path] = CacheDirOption,
):
    """Send one prompt through any backend (cached like any other call) and print the answer."""
    from lucidrec.lm.chat import create_chat_model

    options: dict = {"cache": {"dir": cache_dir}, "show_progress": False}
    if model:
        options["model"] = model
    if base_url:
        options["base_url"] = base_url
    chat = create_chat_model(backend, **options)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    response = chat.complete(messages, no_cache=no_cache, max_tokens=max_tokens, temperature=temperature)
    typer.echo(response.text)
    typer.echo(f"[{chat.model_id}; {'cached' if response.cached else 'model call'}; "
               f"{response.prompt_tokens}+{response.completion_tokens} tokens]", err=True)


@app.command("info")
@guarded
def info(cache_dir: Optional[Path] = CacheDirOption, as_json: bool = JsonOption):
    """Which encoders and chat models are available offline, endpoint settings, and where the caches are."""
    from lucidrec.lm.chat import CHAT_BACKENDS
    from lucidrec.lm.config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV, TransformersChatConfig
    from lucidrec.lm.errors import ModelNotFoundError
    from lucidrec.lm.models import hub_offline, locate_causal_lm, locate_encoder

    def probe(locate, name):
        try:
            found = locate(name)
            return {"available": True, "path": found.path, "identity": found.identity,
                    **({"gguf_file": found.gguf_file} if found.gguf_file else {})}
        except ModelNotFoundError as exc:
            return {"available": False, "error": str(exc)}

    root = _cache_root(cache_dir)
    models_dir = TransformersChatConfig(models_dir=root / "models" if cache_dir else None).resolved_models_dir()
    report = {
        "chat_backends": list(CHAT_BACKENDS),
        "default_encoder": probe(locate_encoder, "all-MiniLM-L6-v2"),
        "default_chat_model": probe(locate_causal_lm, "SmolLM2-135M-Instruct"),
        "converted_models": sorted(p.name for p in models_dir.iterdir()) if models_dir.is_dir() else [],
        "models_dir": str(models_dir),
        "hf_hub_offline": hub_offline(),
        "openai_backend": {BASE_URL_ENV: os.environ.get(BASE_URL_ENV), MODEL_ENV: os.environ.get(MODEL_ENV),
                           f"{API_KEY_ENV} set": bool(os.environ.get(API_KEY_ENV))},
        "cache_root": str(root),
        "caches": _cache_stats(root),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        typer.echo(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


@app.command("cache-stats")
@guarded
def cache_stats(cache_dir: Optional[Path] = CacheDirOption, as_json: bool = JsonOption):
    """Entries and size of the response and vector caches, per backend/model."""
    stats = _cache_stats(_cache_root(cache_dir))
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    for name, value in stats.items():
        count = value.get("entries", value.get("vectors", 0))
        typer.echo(f"{name}: {count} entries, {value.get('size_bytes', 0) / 1e6:.1f} MB at {value['path']}")
        for group in value.get("groups", []) + value.get("models", []):
            typer.echo(f"  {json.dumps(group)}")


@app.command("clear")
@guarded
def clear(
    cache_dir: Optional[Path] = CacheDirOption,
    responses: bool = typer.Option(True, "--responses/--no-responses", help="Clear cached LLM answers."),
    vectors: bool = typer.Option(False, "--vectors/--no-vectors", help="Clear cached text vectors too."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Only answers of this backend."),
    model: Optional[str] = typer.Option(None, "--model", help="Only answers / vectors of this model identity."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
):
    """Delete cached answers (and optionally vectors)."""
    from lucidrec.lm.cache import ResponseCache
    from lucidrec.lm.vector_cache import VectorCache

    root = _cache_root(cache_dir)
    if not yes:
        typer.confirm(f"clear {'answers' if responses else ''}{' and ' if responses and vectors else ''}"
                      f"{'vectors' if vectors else ''} under {root}?", abort=True)
    if responses and (root / "llm" / "responses.sqlite").is_file():
        removed = ResponseCache.in_dir(root).clear(backend=backend, model=model)
        typer.echo(f"removed {removed} cached answers")
    if vectors and (root / "vectors" / "vectors.sqlite").is_file():
        removed = VectorCache.in_dir(root).clear(identity=model)
        typer.echo(f"removed {removed} cached vectors")
