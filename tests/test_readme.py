"""The README's promises: its two commands, CI running the test one, a generated method table."""

from pathlib import Path

from anytask.apps.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [ln.strip() for ln in lines[:12] if ln.strip().startswith("python3 -m venv")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    demo, tests = _readme_commands()
    assert demo.endswith("anytask demo") and "torch" not in demo  # torch comes pinned from constraints.txt
    assert tests.endswith("python -m pytest")
    assert tests in (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()


def test_readme_method_table_is_generated_from_the_registry(capsys):
    main(["list", "--markdown"])
    generated = capsys.readouterr().out.strip()
    text = (ROOT / "README.md").read_text()
    start, end = text.index("<!-- methods:start -->"), text.index("<!-- methods:end -->")
    assert text[start:end].split("\n", 1)[1].strip() == generated, \
        "README method table is stale: paste the output of `anytask list --markdown`"
