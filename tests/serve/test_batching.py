"""The micro-batcher shared by both apps, and the CLI's word when the serve extra is missing."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lucidrec.serve.batching import MicroBatcher


def test_concurrent_requests_share_a_batch_and_keep_their_answers():
    sizes = []
    batcher = MicroBatcher(lambda requests: sizes.append(len(requests)) or [r * 10 for r in requests], max_batch=8,
                           wait=0.05)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(batcher, range(16)))
    batcher.stop()
    assert answers == [r * 10 for r in range(16)]
    assert sum(sizes) == 16 and max(sizes) > 1 and max(sizes) <= 8


def test_a_failing_batch_fails_its_requests_and_the_worker_lives_on():
    def process(requests):
        if "boom" in requests:
            raise RuntimeError("backend failed")
        return [r.upper() for r in requests]

    batcher = MicroBatcher(process, max_batch=1, wait=0.0)
    with pytest.raises(RuntimeError, match="backend failed"):
        batcher("boom")
    assert batcher("ok") == "OK"
    batcher.stop()
    assert batcher("again") == "AGAIN"  # served again after a stop (an app started twice)
    batcher.stop()
    assert not any(t.name == "lucidrec-batcher" and t.is_alive() for t in threading.enumerate())


def test_serve_without_the_extra_names_it(monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from lucidrec.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "uvicorn not installed: pip install 'lucidrec[serve]'" in result.output


def test_the_loop_batcher_scores_what_arrived_together_in_one_call():
    import asyncio

    from lucidrec.serve.batching import LoopBatcher

    sizes = []

    def process(requests):
        sizes.append(len(requests))
        if "boom" in requests:
            raise RuntimeError("backend failed")
        return [r * 10 for r in requests]

    async def main():
        batcher = LoopBatcher(process, max_batch=4)
        answers = await asyncio.gather(*(batcher.run(r) for r in range(10)))
        failed = await asyncio.gather(batcher.run(1), batcher.run("boom"), return_exceptions=True)
        return answers, failed, await batcher.run(3)

    answers, failed, after = asyncio.run(main())
    assert answers == [r * 10 for r in range(10)] and sizes[:3] == [4, 4, 2]  # one loop turn, cut at max_batch
    assert all(isinstance(f, RuntimeError) for f in failed) and after == 30  # the batch fails together; the next works
