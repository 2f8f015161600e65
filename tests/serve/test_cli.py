"""``lucidrec serve`` from the command line: a real process on a free loopback port."""

import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app


def test_a_folder_that_is_no_run_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output


@pytest.mark.slow
def test_serve_starts_answers_and_stops(run_folders, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "lucidrec", "serve", f"mine={run_folders['sasrec']}",
                                str(run_folders["pop"]), "--port", str(port), "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        health = httpx.get(base + "/health").json()
        assert (health["status"], health["runs"]) == ("ok", ["mine", "pop"])
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "/explorer/app.js" in page.text
        assert httpx.get(base + "/explorer/app.js").status_code == 200
        assert "/runs/{run}/recommend" in httpx.get(base + "/openapi.json").json()["paths"]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "loaded mine: ml-100k sasrec (id)" in output and f"explorer at http://127.0.0.1:{port}/" in output
