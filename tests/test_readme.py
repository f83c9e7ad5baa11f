"""The README's promises: its two commands, CI running the test one, a generated method table."""

from pathlib import Path

import pytest

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


@pytest.mark.minilm
def test_readme_service_walkthrough_runs_as_written(tmp_path):
    """The README's service block, run by bash as it stands (on a free port instead of 8000)."""
    import os
    import shutil
    import socket
    import subprocess
    import sys

    if not shutil.which("curl"):
        pytest.skip("the walkthrough uses curl, which is not installed here")
    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- service:start -->"):text.index("<!-- service:end -->")]
    script = block.split("```bash\n", 1)[1].split("```", 1)[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = script.replace("8000", str(port))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    wrapped = f"set -euo pipefail\n{script}\nkill %1; wait %1 || true\n"
    out = subprocess.run(["bash", "-c", wrapped], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"name":"sentiment"' in out.stdout and '"name":"topic"' in out.stdout and '"head":"zero_shot"' in out.stdout
    assert '"predictions":[{"label":"pos"' in out.stdout  # "what a film" reads as positive
    assert '"results":{"sentiment"' in out.stdout and '"topic"' in out.stdout
    assert "listening on http://127.0.0.1:" in out.stderr
