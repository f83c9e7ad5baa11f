import json

import numpy as np
import pytest

from anytask.apps.cli import main


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_list_and_markdown_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "linear_probe" in out and "minilm" in out
    assert main(["list", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| family | kind | name |") and "| heads | head | `zero_shot` |" in table


def test_fit_predict_embed_round_trip(tmp_path, capsys):
    from anytask.data import make_topic_task

    train, _ = make_topic_task(10)
    data = _write(tmp_path / "train.jsonl", [{"text": t, "label": y} for t, y in zip(train.X, train.y)])
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "centroid",
                 "--param", "scale=10", "--out", str(tmp_path / "model")]) == 0
    assert main(["predict", "--model", str(tmp_path / "model"), "--text", "the match was won"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    pred = json.loads(lines[-1])
    assert pred["label"] in set(train.y) and abs(sum(pred["probabilities"].values()) - 1) < 1e-5
    assert main(["embed", "--backbone", "tiny", "--text", "a", "--text", "b", "--out", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (2, 32)


def test_bench_cli_writes_json_markdown_and_plot(tmp_path):
    out = tmp_path / "r.json"
    assert main(["bench", "--backbone", "tiny", "--tasks", "sklearn:wine,synthetic:topics", "--heads", "centroid,knn",
                 "--shots", "2,4", "--seeds", "2", "--max-test", "30", "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["backbone"] == "tiny" and res["heads"] == ["linear_probe", "centroid", "knn"]
    assert len(res["results"]) == 2 * 3 * 2 * 2
    row = res["results"][0]
    assert {"task", "head", "shots_per_class", "seed", "accuracy", "macro_f1", "fit_seconds",
            "predict_seconds"} <= set(row)
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["bench", "--tasks", "nope", "--heads", "centroid", "--out", "x.json"], "needs --data-root"),
    (["bench", "--backbone", "tiny", "--tasks", "sklearn:wine", "--heads", "centriod", "--out", "x.json"],
     "Did you mean 'centroid'"),
    (["fit", "--backbone", "tiny", "--data", "missing.jsonl", "--out", "m"], "does not exist"),
    (["predict", "--model", "no-model-here", "--text", "x"], "no saved anytask model"),
    (["embed", "--backbone", "nonsense", "--text", "x"], "unknown backbone"),
])
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_one_class_training_file_is_refused_without_writing(tmp_path, capsys):
    data = _write(tmp_path / "one.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}])
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--out", str(tmp_path / "m")]) == 2
    assert "only one class" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_demo_runs_on_the_tiny_backbone(tmp_path, capsys):
    assert main(["demo", "--backbone", "tiny", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "backbone weights unchanged" in out
    assert (tmp_path / "demo" / "few_shot.png").is_file()
    assert (tmp_path / "demo" / "topic-classifier" / "config.json").is_file()


@pytest.mark.minilm
@pytest.mark.slow
def test_demo_on_minilm(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0


def test_explain_prints_concepts_and_writes_html(tmp_path, capsys, tiny_concepts):
    from anytask.data import make_topic_task

    train, _ = make_topic_task(10)
    data = _write(tmp_path / "train.jsonl", [{"text": t, "label": y} for t, y in zip(train.X, train.y)])
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "concept_bottleneck",
                 "--param", f"concepts={tiny_concepts}", "--param", "l1=0.0001", "--out", str(tmp_path / "m")]) == 0
    assert main(["explain", "--model", str(tmp_path / "m"), "--text", "the match was won", "--top", "3",
                 "--html", str(tmp_path / "cards.html")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["label"] in set(train.y) and 1 <= len(out["concepts"]) <= 3
    page = (tmp_path / "cards.html").read_text()
    assert "the match was won" in page and out["concepts"][0]["name"] in page
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "centroid", "--out",
                 str(tmp_path / "c")]) == 0
    assert main(["explain", "--model", str(tmp_path / "c"), "--text", "x"]) == 2
    assert "not a concept-bottleneck classifier" in capsys.readouterr().err
