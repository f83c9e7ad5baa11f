"""docs/results/ is generated from the committed result files: a stale or hand-edited table fails here."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _docs_module():
    spec = importlib.util.spec_from_file_location("benchmark_docs", ROOT / "benchmarks" / "docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_results_pages_regenerate_byte_identically_from_the_result_files():
    docs = _docs_module()
    for family in docs.PAGES:
        committed = (ROOT / "docs" / "results" / f"{family}.md").read_text(encoding="utf-8")
        assert committed == docs.page(family), f"docs/results/{family}.md is stale: run python benchmarks/docs.py"


def test_every_result_file_is_on_a_results_page():
    docs = _docs_module()
    shown = {f for _, sections in docs.PAGES.values() for s in sections for f in s.files}
    files = {str(p.relative_to(ROOT / "benchmarks")) for p in (ROOT / "benchmarks").glob("*/*.json")
             if not p.name.endswith(".state.json")}  # a benchmark's resumable progress (gitignored), not a result
    assert files - shown == set(), f"result files with no results page: {sorted(files - shown)}"
