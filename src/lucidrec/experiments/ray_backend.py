"""Cells on a Ray cluster (``lucidrec experiment run --backend ray [--address ...]``), for grids that outgrow one
machine. Optional: ``pip install ray``. Every Ray node needs lucidrec installed and the datasets (and any run
folders the cells refer to) at the same paths; the records come back to the calling process, which writes them.

Ray's object references become ``concurrent.futures`` futures (``ObjectRef.future()``), so the scheduling loop
is the local process pool's.
"""

from __future__ import annotations

import os

from lucidrec.config import ConfigError


class RayExecutor:
    def __init__(self, address: str | None, threads: int):
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray backend needs Ray: pip install ray") from None
        self.ray, self.threads = ray, threads
        self.started_here = not ray.is_initialized()
        if self.started_here:
            env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
            if os.environ.get("PYTHONPATH"):  # a source checkout run with PYTHONPATH: the workers import the same code
                env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            ray.init(address=address, runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False)

    def submit(self, function, *args):
        remote = self.ray.remote(num_cpus=self.threads)(function)
        return remote.remote(*args).future()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started_here:
            self.ray.shutdown()
