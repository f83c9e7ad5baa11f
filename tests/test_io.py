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
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
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
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(AnytaskError, match="only anytask classes"):
        io.load(path)
