"""Load benchmark of ``lucidrec serve``: recommendation latency and throughput on loopback, a measurement record.

    python bench/bench_serve.py RUN [--clients 1 10 50] [--requests 2000] [--seconds 60] [--k 10] [--record FILE]

Starts ``lucidrec serve RUN`` in a child process on a free loopback port, waits until /health reports
no run still computing its users' states, then for
each number of concurrent clients sends ``GET /runs/NAME/users/USER/recommendations?k=K`` for random
users of the run (httpx, one keep-alive connection per client) until ``--requests`` answers or
``--seconds`` have passed, whichever comes first, after a short warm-up. Prints throughput, p50, p99 and
the count of non-200 answers per level, then stops the server; writes ``results/measurements/serve.json``
(``--record`` for another file) and prints its table. Traffic goes to 127.0.0.1 only; every loop is bounded in
requests and time.

Latency on a shared machine mostly measures the other processes; the CPU time the server process spent
per answer (``server CPU ms/req``, read from /proc on Linux) does not, so it is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

HOST = "127.0.0.1"  # loopback only: this script never sends traffic elsewhere
WARMUP_REQUESTS = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(run: Path, port: int, threads: int, max_pending: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lucidrec", "serve", str(run), "--host", HOST, "--port", str(port),
               "--threads", str(threads), "--max-pending", str(max_pending), "--log-level", "warning",
               "--no-warm-search"]  # no title encoding competing with the measured requests
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=None)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            health = httpx.get(base + "/health", timeout=2)
            if health.status_code == 200 and not health.json().get("warming"):  # stored users' states computed
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /health within {timeout:.0f} s")


async def level(base: str, run: str, users: list[str], clients: int, max_requests: int, seconds: float, k: int,
                seed: int) -> dict:
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0

    async def client_loop(client: httpx.AsyncClient):
        nonlocal sent
        async with client:
            while sent < max_requests and time.monotonic() < deadline:
                sent += 1
                user = rng.choice(users)
                started = time.perf_counter()
                try:
                    response = await client.get(f"/runs/{run}/users/{user}/recommendations", params={"k": k})
                    status = response.status_code
                except httpx.TransportError:
                    status = -1  # connection refused or reset
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    # Every client is built before any request is timed: building one (httpx makes an SSL context) takes
    # 0.1-0.2 s of the benchmark's own CPU, which, done inside the loop, held up the first requests' answers.
    pool = [httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)) for _ in range(clients)]
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(client) for client in pool))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "seconds": round(elapsed, 2),
            "throughput_rps": round(len(latencies) / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "errors": sum(n for s, n in statuses.items() if s != 200),
            "statuses": {str(s): n for s, n in sorted(statuses.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="A run folder (trained run or baseline).")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests", type=int, default=2000, help="At most this many requests per level.")
    parser.add_argument("--seconds", type=float, default=60.0, help="At most this long per level.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server.")
    parser.add_argument("--max-pending", type=int, default=64, help="The server's in-flight bound.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/serve.json)")
    args = parser.parse_args()

    port = free_port()
    base = f"http://{HOST}:{port}"
    server = start_server(args.run, port, args.threads, args.max_pending)
    try:
        wait_until_up(base, server)
        run = httpx.get(base + "/runs").json()[0]
        page = httpx.get(f"{base}/runs/{run['name']}/users", params={"limit": 1000}).json()
        users = [u["user_id"] for u in page["users"]]
        asyncio.run(level(base, run["name"], users, 4, WARMUP_REQUESTS, 30, args.k, args.seed))
        rows = []
        for n, clients in enumerate(args.clients):
            cpu_before = cpu_seconds(server.pid)
            row = asyncio.run(level(base, run["name"], users, clients, args.requests, args.seconds, args.k, args.seed + n))
            cpu_after = cpu_seconds(server.pid)
            row["server_cpu_ms_per_request"] = (None if cpu_before is None or cpu_after is None else
                                                round(1000 * (cpu_after - cpu_before) / row["requests"], 2))
            rows.append(row)
    finally:
        server.terminate()
        server.wait(timeout=30)
    columns = [{"name": "clients"}, {"name": "requests"}, {"name": "req/s", "digits": 1}, {"name": "p50 ms", "digits": 1},
               {"name": "p99 ms", "digits": 1}, {"name": "errors"}, {"name": "server CPU ms/req", "digits": 2}]
    table = {"title": f"{run['dataset']} {run['model']} ({run['method']}), {run['n_items']:,} items, k = {args.k}",
             "columns": columns,
             "rows": [[r["clients"], r["requests"], r["throughput_rps"], r["p50_ms"], r["p99_ms"], r["errors"],
                       r["server_cpu_ms_per_request"]] for r in rows],
             "note": f"GET /runs/NAME/users/USER/recommendations for random stored users, at most {args.requests} "
                     f"requests or {args.seconds:g} s per level; server and clients on one machine over loopback; "
                     "server CPU ms/req is the server process's own CPU time per answer."}
    record = build_measurement("serve", "Serving: latency and throughput", [table], threads=args.threads,
                               extra={"dataset": run["dataset"], "model": run["model"], "method": run["method"],
                                      "n_items": run["n_items"], "k": args.k, "levels": rows})
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
