"""``benchmarks/cli.py`` times its processes as an installed package runs them: from bytecode.

The shared machines set ``PYTHONDONTWRITEBYTECODE=1``; the benchmark's warm-up run then left no
``.pyc`` and every timed ``manymodels train`` compiled our ~200 modules from source (0.27 s CPU
of the store-sales sample's, charged to the command; a user's install has them compiled).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def cli_bench() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import cli as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_timed_processes_load_bytecode_the_warm_up_wrote(
    cli_bench: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``PYTHONDONTWRITEBYTECODE=1`` around it, the processes the benchmark times still
    find the module they import compiled (in the cache the untimed run filled), and the
    benchmark writes nothing beside the sources."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPATH", str(src))
    cache = tmp_path / "pycache"
    argv = [
        sys.executable,
        "-c",
        "import probe_module, sys; assert sys.flags.dont_write_bytecode == 0",
    ]
    wall, cpu = cli_bench._process_seconds(argv, 1, cache=cache)
    assert wall > 0 and cpu >= 0
    assert [p.name for p in cache.rglob("probe_module*.pyc")], sorted(cache.rglob("*"))[:20]
    assert not (src / "__pycache__").exists()
