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


# -- a new user's mistakes: one clear line and exit 2, or a visible, documented behaviour ----------

def _topics(tmp_path, extra=()):
    from anytask.data import make_topic_task

    train, _ = make_topic_task(6)
    rows = [{"text": t, "label": y} for t, y in zip(train.X, train.y)] + list(extra)
    return _write(tmp_path / "train.jsonl", rows)


@pytest.mark.parametrize("param, message", [
    ("C=abc", "'C' parameter of LinearProbe must be"),
    ("C=-1", "'C' parameter of LinearProbe must be"),
    ("max_iter=0", "'max_iter' parameter of LinearProbe must be"),
])
def test_bad_head_parameter_values_are_one_line_errors(param, message, tmp_path, capsys):
    assert main(["fit", "--backbone", "tiny", "--data", str(_topics(tmp_path)), "--head", "linear_probe",
                 "--param", param, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("row, message", [
    ({"text": "   ", "label": "sport"}, "'text' is empty"),
    ({"text": "a goal", "label": None}, "'label' is null"),
])
def test_empty_texts_and_null_labels_name_their_line(row, message, tmp_path, capsys):
    data = _topics(tmp_path, [row])
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert message in err and f"line {len(data.read_text().splitlines())}" in err


def test_library_and_service_refuse_blank_texts_with_the_same_words():
    from anytask.apps.classifier import TextClassifier
    from anytask.core.errors import AnytaskError

    with pytest.raises(AnytaskError, match=r"training texts\[1\] is empty or blank"):
        TextClassifier(backbone="tiny").fit(["a goal", " "], ["a", "b"])


def test_fit_never_overwrites_an_existing_folder_without_force(tmp_path, capsys):
    data = _topics(tmp_path)
    out = tmp_path / "m"
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--out", str(out)]) == 0
    before = (out / "config.json").read_bytes()
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "centroid", "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert (out / "config.json").read_bytes() == before
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "centroid", "--out", str(out),
                 "--force"]) == 0
    assert "Centroid" in (out / "config.json").read_text()


def test_more_shots_than_examples_is_said_and_recorded(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", "--backbone", "tiny", "--tasks", "sklearn:iris", "--shots", "2,60", "--seeds", "1",
                 "--out", str(out), "--no-progress", "-q"]) == 0
    captured = capsys.readouterr()
    assert "fewer than 60 training examples" in captured.err and "is a cap" in captured.err
    res = json.loads(out.read_text())
    assert res["short_classes"][0]["shots"] == 60
    assert "±" not in captured.out and "one seed, so no spread" in captured.out  # one seed: no fake spread


def test_zero_seeds_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--tasks", "sklearn:iris", "--seeds", "0", "--out", "x.json"])
    assert e.value.code == 2 and "expected a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("anytask ")


def test_finetune_command_writes_a_folder_anytask_merge_reads(bert_folders, tmp_path, capsys):
    data = _write(tmp_path / "d.jsonl", [{"text": t, "label": y} for t, y in
                                         [("good fun", "pos"), ("bad day", "neg"), ("great", "pos"), ("awful", "neg")]])
    out = tmp_path / "tuned"
    assert main(["finetune", "--data", str(data), "--base", str(bert_folders[0]), "--steps", "2", "--batch-size", "4",
                 "--out", str(out), "-q"]) == 0
    assert (out / "model.safetensors").is_file() and json.loads((out / "finetune.json").read_text())["steps"] == 2
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(f"base: {bert_folders[0]}\nmodels:\n  - {{path: {out}, weight: 1.0}}\nmethod: task_arithmetic\n")
    assert main(["merge", str(cfg), str(tmp_path / "merged"), "--no-progress"]) == 0
    assert main(["finetune", "--data", str(data), "--base", str(bert_folders[0]), "--mode", "sideways",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown fine-tuning mode 'sideways'" in capsys.readouterr().err


def test_predict_refuses_a_blank_text_like_the_service(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["fit", "--backbone", "tiny", "--data", str(_topics(tmp_path)), "--out", str(out), "-q"]) == 0
    assert main(["predict", "--model", str(out), "--text", "a goal", "--text", "  "]) == 2
    assert "texts[1] is empty or blank" in capsys.readouterr().err
