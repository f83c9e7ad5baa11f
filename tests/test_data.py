import json

import numpy as np
import pytest

from anytask.data import (k_shot_indices, list_tasks, load_task, make_topic_task, read_table, sklearn_dataset,
                          task_seed)
from anytask.core.errors import AnytaskError


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_read_jsonl_and_csv_with_configurable_columns(tmp_path):
    d = read_table(_jsonl(tmp_path / "a.jsonl", [{"sentence": "hi", "y": "pos"}, {"sentence": "bye", "y": "neg"}]),
                   text_column="sentence", label_column="y")
    assert d.X == ["hi", "bye"] and d.y.tolist() == ["pos", "neg"]
    (tmp_path / "b.csv").write_text("text,label\n\"hello, world\",1\nbye,0\n", encoding="utf-8")
    c = read_table(tmp_path / "b.csv")
    assert c.X == ["hello, world", "bye"] and c.y.tolist() == ["1", "0"]


def test_missing_column_names_the_columns_found_and_the_flag(tmp_path):
    path = _jsonl(tmp_path / "a.jsonl", [{"sentence": "hi", "label": "x"}])
    with pytest.raises(AnytaskError, match=r"no 'text' column \(columns found: label, sentence\).*--text-column"):
        read_table(path)


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n'.encode("latin-1"))
    with pytest.raises(AnytaskError, match=r"not UTF-8.*line 2.*iconv"):
        read_table(path)


def test_empty_file_bad_json_and_unknown_type(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(AnytaskError, match="no rows"):
        read_table(tmp_path / "e.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 1}\n{oops\n')
    with pytest.raises(AnytaskError, match="line 2: not valid JSON"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(AnytaskError, match="unknown file type"):
        read_table(tmp_path / "x.parquet")


def test_data_root_layout_and_close_match_suggestion(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "mytask").mkdir(exist_ok=True)
        _jsonl(tmp_path / "mytask" / f"{split}.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    assert list_tasks(tmp_path) == ["mytask"]
    train, test = load_task(tmp_path, "mytask")
    assert len(train) == len(test) == 2
    with pytest.raises(AnytaskError, match="Did you mean mytask"):
        load_task(tmp_path, "mytsk")


def test_k_shot_is_balanced_deterministic_and_per_class_stable():
    y = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 3)
    with pytest.warns(UserWarning, match="fewer than 4"):
        idx = k_shot_indices(y, 4, seed=7)
    counts = {c: int((y[idx] == c).sum()) for c in "abc"}
    assert counts == {"a": 4, "b": 4, "c": 3}
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(idx, k_shot_indices(y, 4, seed=7))
    other = k_shot_indices(y[:80], 4, seed=7)  # dropping class c leaves a and b's draws unchanged
    np.testing.assert_array_equal(other, idx[:8])
    assert not np.array_equal(k_shot_indices(y[:80], 4, seed=8), other)
    assert task_seed("trec", 4, 0) == task_seed("trec", 4, 0) != task_seed("trec", 4, 1)


def test_sklearn_datasets_and_synthetic_task():
    train, test = sklearn_dataset("wine")
    assert train.X.shape[1] == 13 and not train.is_text and len(set(train.y)) == 3
    with pytest.raises(AnytaskError, match="digits"):
        sklearn_dataset("mnist")
    tr, te = make_topic_task(20)
    assert tr.is_text and len(tr) == len(te) == 120 and not set(tr.X) & set(te.X)
    assert make_topic_task(20)[0].X == tr.X


def test_shared_data_root_reads_every_task(shared_text):
    names = list_tasks(shared_text)
    assert len(names) == 11
    train, test = load_task(shared_text, "trec")
    assert len(train) == 5452 and set(train.y) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}


def test_unicode_line_separators_inside_strings_stay_in_the_text(tmp_path):
    path = tmp_path / "u.jsonl"
    rows = [{"text": "one\u2028two\x85three", "label": "a"}, {"text": "b", "label": "c"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert read_table(path).X[0] == "one\u2028two\x85three"


def test_a_task_folder_is_found_under_the_root_or_its_text_subfolder(tmp_path):
    from anytask.data import load_dataset

    (tmp_path / "text" / "tiny").mkdir(parents=True)
    for split in ("train", "test"):
        (tmp_path / "text" / "tiny" / f"{split}.jsonl").write_text('{"text": "a", "label": "x"}\n'
                                                                     '{"text": "b", "label": "y"}\n')
    assert len(load_dataset("tiny", data_root=tmp_path)[0]) == 2
    assert len(load_dataset("tiny", data_root=tmp_path / "text")[0]) == 2
