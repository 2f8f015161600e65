"""The bench scripts are not a package and import their siblings (``import protocol``), so their tests import
them with ``bench/`` on ``sys.path`` for the duration of a test module."""

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def import_bench_script():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCH))
