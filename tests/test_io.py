import json

import numpy as np
import pytest

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head


def _fitted(blobs):
    X, y = blobs
    return create_head("centroid").fit(X, y), X


def test_save_load_round_trip(tmp_path, blobs):
    head, X = _fitted(blobs)
    io.save(head, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = io.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))


def test_overwrite_is_atomic_and_leaves_no_temp_folders(tmp_path, blobs):
    head, _ = _fitted(blobs)
    io.save(head, tmp_path / "m")
    io.save(head, tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_failed_save_keeps_the_previous_model(tmp_path, blobs, monkeypatch):
    head, X = _fitted(blobs)
    io.save(head, tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        io.save(create_head("centroid").fit(X[::-1], blobs[1][::-1]), tmp_path / "m")
    monkeypatch.undo()
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_corrupted_weights_are_detected(tmp_path, blobs):
    head, _ = _fitted(blobs)
    path = io.save(head, tmp_path / "m")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(AnytaskError, match="checksum"):
        io.load(path)


def test_truncated_config_and_missing_folder_are_clear_errors(tmp_path, blobs):
    head, _ = _fitted(blobs)
    path = io.save(head, tmp_path / "m")
    (path / "config.json").write_text('{"class": ')
    with pytest.raises(AnytaskError, match="not valid JSON"):
        io.load(path)
    with pytest.raises(AnytaskError, match="does not exist"):
        io.load(tmp_path / "nowhere")


def test_only_anytask_classes_are_loaded(tmp_path, blobs):
    head, _ = _fitted(blobs)
    path = io.save(head, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["class"] = "os:system"
    config["config_sha256"] = io.config_digest(config)  # the checksum catches damage; this is deliberate
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(AnytaskError, match="only anytask classes"):
        io.load(path)


# -- saved models that were edited or damaged: refused with a clear error, never a silent wrong answer --

def _saved_probe(tmp_path, blobs):
    from anytask.methods.heads import create_head

    X, y = blobs
    return X, io.save(create_head("linear_probe").fit(X, y), tmp_path / "m")


def test_an_edited_class_list_is_refused(tmp_path, blobs):
    X, folder = _saved_probe(tmp_path, blobs)
    config = json.loads((folder / "config.json").read_text())
    config["extra"]["classes"] = config["extra"]["classes"][::-1]  # would invert every label
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AnytaskError, match="does not match its config_sha256"):
        io.load(folder)


@pytest.mark.parametrize("damage", ["wrong shape", "one-dimensional", "nan", "not a tensor file"])
def test_damaged_tensors_are_clear_errors(tmp_path, blobs, damage):
    from safetensors.torch import load_file, save_file

    X, folder = _saved_probe(tmp_path, blobs)
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    if damage == "wrong shape":
        tensors["coef"] = tensors["coef"][:, :5].contiguous()
    elif damage == "one-dimensional":
        tensors["coef"] = tensors["coef"].flatten().contiguous()
    elif damage == "nan":
        tensors["coef"][0, 0] = float("nan")
    if damage == "not a tensor file":
        weights.write_bytes(b"\x00" * 64)
    else:
        save_file(tensors, str(weights))
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = io.file_sha256(weights)  # a consistent checksum: the content itself is wrong
    config["config_sha256"] = io.config_digest(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AnytaskError, match="corrupted saved"):
        io.load(folder)


def test_a_deeply_nested_config_is_a_clear_error(tmp_path, blobs):
    _, folder = _saved_probe(tmp_path, blobs)
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AnytaskError, match="not valid JSON"):
        io.load(folder)


def test_a_saved_folder_cannot_choose_where_the_cache_is_written(tmp_path):
    from anytask.apps.classifier import TextClassifier

    elsewhere = tmp_path / "somewhere-else"
    clf = TextClassifier(backbone="tiny", head="zero_shot", cache_dir=str(elsewhere))
    clf.fit(["a goal", "rates rose", "a match", "shares fell"], ["sport", "finance", "sport", "finance"])
    loaded = io.load(io.save(clf, tmp_path / "m"))
    assert loaded.cache_dir is None and loaded.head_.cache_dir is None


def test_saved_folders_carry_a_model_card_and_save_pretrained_round_trips(tmp_path):
    from anytask import TextClassifier, create_head

    texts = ["a goal in the match", "rates rose again", "the striker scored", "shares fell"]
    labels = ["sport", "finance", "sport", "finance"]
    clf = TextClassifier(backbone="tiny", head="linear_probe").fit(texts, labels)
    folder = clf.save_pretrained(tmp_path / "clf")
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: anytask\n") and "text-classification" in card
    assert "| head | `linear_probe` |" in card and "`finance`, `sport` (2)" in card
    assert clf.backbone_identity_.replace("|", "\\|") in card and "TextClassifier.from_pretrained" in card
    loaded = TextClassifier.from_pretrained(folder)
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    (folder / "README.md").write_text("edited by hand")  # documentation only: never read back
    assert TextClassifier.from_pretrained(folder).predict(texts[:1]).shape == (1,)
    head = create_head("centroid").fit(np.eye(4, dtype=np.float32), ["a", "b", "a", "b"])
    head_folder = head.save_pretrained(tmp_path / "head")
    assert "| kind | `anytask.methods.heads.centroid:Centroid` |" in (head_folder / "README.md").read_text()
    with pytest.raises(AnytaskError, match="holds a Centroid, not a TextClassifier"):
        TextClassifier.from_pretrained(head_folder)
    with pytest.raises(AnytaskError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE=0"):
        TextClassifier.from_pretrained("someone/not-cached-anywhere")
