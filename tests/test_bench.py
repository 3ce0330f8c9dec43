"""`make bench` keeps working: its parts that drive the product's own semantics (the tick's
concurrency, the reaction times through install live) run here once, on a tiny scale. Nothing is
asserted about speed: only that each part measures something (a row with a number)."""

import importlib.util
import shutil
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture
def bench(tmp_path):
    spec = importlib.util.spec_from_file_location("spillover_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.CONSOLE.exists():
        pytest.fail(f"{module.CONSOLE} is missing: make install")
    root = tmp_path / "bench"
    root.mkdir()
    b = module.Bench(root, 3)
    yield module, b
    b.close()
    shutil.rmtree(root, ignore_errors=True)


def test_the_reaction_rows_measure_every_run(bench):
    module, b = bench
    rows = module.bench_reaction(b, runs=2)
    assert [name for name, *_ in rows] == ["reaction: wall (StopFailure) → flip in settings.json",
                                          "reaction: statusline reading ≥ threshold → flip"]
    assert all(ratio is not None and ratio > 0 for _, _, ratio, _ in rows), b.notes


def test_the_tick_row_reads_all_three_endpoints(bench):
    module, b = bench
    [(name, _, ratio, _)] = module.bench_tick(b)
    assert name.startswith("tick, 3 slow endpoints") and ratio > 0
