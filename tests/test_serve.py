"""The HTTP service: every endpoint and error path, durability across restarts and kill -9."""

import json
import signal
import threading
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from anytask.core.errors import AnytaskError  # noqa: E402
from anytask.apps.serve import build_app  # noqa: E402
from anytask.apps.serve.service import Limits  # noqa: E402

from servers import AUTH, TOKEN, free_port, start_server  # noqa: E402
SPORTS = ["the match ended in a draw", "the striker scored a goal", "the team won the cup", "a great tennis final"]
FOOD = ["bake the bread for an hour", "the soup needs more salt", "fresh basil in the sauce", "a cake with cream"]


def examples(n=4):
    return [{"text": t, "label": "sports"} for t in SPORTS[:n]] + [{"text": t, "label": "food"} for t in FOOD[:n]]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def client(home):
    app = build_app(home, backbone="tiny", token=TOKEN, limits=Limits(max_body_bytes=50_000, max_texts=8,
                                                                        max_tasks=5))
    with TestClient(app) as c:
        yield c


def create(client, name="topics", **extra):
    return client.post("/v1/tasks", json={"name": name, "examples": examples(), **extra}, headers=AUTH)


def test_task_lifecycle(client):
    assert client.get("/healthz").json() == {"status": "ok", "backbone": "tiny", "tasks": 0}
    r = create(client, head="centroid")
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["classes"] == ["food", "sports"] and info["n_examples"] == 8 and info["version"] == 1
    assert [t["name"] for t in client.get("/v1/tasks").json()["tasks"]] == ["topics"]
    assert client.get("/v1/tasks/topics").json()["head"] == "centroid"
    r = client.post("/v1/tasks/topics/predict", json={"texts": ["the striker scored a goal", "the soup needs more salt"]})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == ["sports", "food"]
    assert abs(sum(preds[0]["probabilities"].values()) - 1) < 1e-6
    r = client.post("/v1/tasks/topics/examples", json={"examples": [{"text": "what a day", "label": "weather"},
                                                                     {"text": "rain all day", "label": "weather"}]},
                    headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["classes"] == ["food", "sports", "weather"]
    assert client.delete("/v1/tasks/topics", headers=AUTH).status_code == 204
    assert client.get("/v1/tasks/topics").status_code == 404


def test_default_head_works_and_multi_task_predict_shares_one_encoder_pass(client):
    assert create(client, "a").status_code == 201
    assert client.get("/v1/tasks/a").json()["head"] == "auto"
    assert create(client, "b", head="zero_shot").status_code == 201
    before = client.get("/metrics").text
    r = client.post("/v1/predict", json={"tasks": ["a", "b"], "texts": ["a cake with cream", "the team won"]})
    assert r.status_code == 200
    assert set(r.json()["results"]) == {"a", "b"}
    assert all(len(v["predictions"]) == 2 for v in r.json()["results"].values())
    after = client.get("/metrics").text

    def encoded(text):
        return int(float(next(ln for ln in text.splitlines()
                              if ln.startswith("anytask_encoder_texts_total")).split()[1]))

    assert encoded(after) - encoded(before) == 2  # two texts, one pass, for both tasks


@pytest.mark.parametrize("headers, status, message", [
    ({}, 401, "missing bearer token"),
    ({"Authorization": "Bearer nope-nope-nope"}, 403, "wrong token"),
    ({"Authorization": "Basic abc"}, 401, "missing bearer token"),
])
def test_writes_need_the_token(client, headers, status, message):
    r = client.post("/v1/tasks", json={"name": "x", "examples": examples()}, headers=headers)
    assert r.status_code == status and message in r.json()["detail"]
    assert client.get("/v1/tasks").json()["tasks"] == []


@pytest.mark.parametrize("body, status, message", [
    ({"name": "x", "examples": [{"text": "a", "label": "one"}, {"text": "b", "label": "one"}]}, 400, "only one class"),
    ({"name": "../../etc", "examples": examples()}, 400, "invalid task name"),
    ({"name": "x", "examples": examples(), "head": "centriod"}, 400, "Did you mean 'centroid'"),
    ({"name": "x", "examples": examples(), "head": "knn", "params": {"k": 3}}, 400, "bad parameters"),
    ({"name": "x", "examples": examples(), "head": "linear_probe", "params": {"C": -1}}, 400, "'C' parameter of LinearProbe must be"),
    ({"name": "x", "examples": examples(), "head": "knn", "params": {"n_neighbors": "many"}}, 400, "'n_neighbors' parameter of KNN must be"),
    ({"name": "x", "examples": []}, 422, "examples"),
    ({"name": "x", "examples": [{"text": "", "label": "a"}, {"text": "b", "label": "c"}]}, 422, "text"),
    ({"name": "x", "examples": [{"text": "  ", "label": "a"}, {"text": "b", "label": "c"}]}, 400, "blank"),
    ({"name": "x", "examples": examples(), "surprise": 1}, 422, "surprise"),
    ({"name": "x"}, 422, "examples"),
])
def test_bad_create_requests_get_4xx_and_leave_nothing(client, home, body, status, message):
    r = client.post("/v1/tasks", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert client.get("/v1/tasks").json()["tasks"] == []
    assert not any((home / "heads").iterdir())


def test_other_error_paths(client):
    assert create(client).status_code == 201
    assert create(client).status_code == 409
    r = client.post("/v1/tasks", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert client.post("/v1/tasks/nope/predict", json={"texts": ["a"]}).status_code == 404
    assert client.post("/v1/predict", json={"tasks": ["topics", "nope"], "texts": ["a"]}).status_code == 404
    assert client.post("/v1/tasks/topics/predict", json={"texts": []}).status_code == 422
    r = client.post("/v1/tasks/topics/predict", json={"texts": ["a"] * 9})
    assert r.status_code == 400 and "limit is 8" in r.json()["detail"]
    r = client.post("/v1/tasks/topics/predict", json={"texts": ["x" * 60_000]})
    assert r.status_code == 413
    assert client.delete("/v1/tasks/nope", headers=AUTH).status_code == 404
    assert client.post("/v1/tasks/nope/examples", json={"examples": examples()}, headers=AUTH).status_code == 404
    for i in range(4):
        assert create(client, f"t{i}").status_code == 201
    r = create(client, "one-too-many")
    assert r.status_code == 400 and "limit of 5 tasks" in r.json()["detail"]


def test_read_only_and_dev_modes(home):
    with pytest.raises(AnytaskError, match="refusing to start without a token"):
        build_app(home, backbone="tiny")
    with TestClient(build_app(home, backbone="tiny", dev=True)) as c:
        assert create(c).status_code == 201  # no token needed in dev mode
    with TestClient(build_app(home, backbone="tiny", read_only=True)) as c:
        r = c.delete("/v1/tasks/topics", headers=AUTH)
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
        assert c.post("/v1/tasks/topics/predict", json={"texts": ["goal"]}).status_code == 200
    from anytask.apps.serve import serve

    with pytest.raises(AnytaskError, match="loopback"):
        serve(host="0.0.0.0", home=home, backbone="tiny", dev=True)


def test_tasks_survive_a_restart(home):
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        create(c, head="linear_probe")
        before = c.post("/v1/tasks/topics/predict", json={"texts": ["a goal", "salt"]}).json()
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        assert c.post("/v1/tasks/topics/predict", json={"texts": ["a goal", "salt"]}).json() == before


def test_openapi_documents_the_stable_paths(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/healthz", "/v1/tasks", "/v1/tasks/{name}", "/v1/tasks/{name}/examples", "/v1/tasks/{name}/predict",
              "/v1/predict", "/v1/groups"]:
        assert p in paths


def test_acknowledged_tasks_survive_kill_9(home):
    import httpx

    port = free_port()
    proc = start_server(home, port)
    acknowledged, stop = [], threading.Event()

    def writer():
        i = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/tasks", json={"name": f"task-{i}", "examples": examples()})
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acknowledged.append(f"task-{i}")
                i += 1

    threads = [threading.Thread(target=writer) for _ in range(1)]
    for t in threads:
        t.start()
    # kill once a few creates were acknowledged (a condition, not a clock: slow machines just wait longer)
    deadline = time.time() + 120
    while len(acknowledged) < 3 and time.time() < deadline and all(t.is_alive() for t in threads):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert acknowledged, "no task was created before the kill"
    proc = start_server(home, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            names = {t["name"] for t in c.get("/v1/tasks").json()["tasks"]}
            assert set(acknowledged) <= names
            for name in acknowledged:
                r = c.post(f"/v1/tasks/{name}/predict", json={"texts": ["the striker scored a goal"]})
                assert r.status_code == 200, (name, r.text)
            # nothing half-created: every listed task predicts, and no orphan head folder is left
            for name in names:
                assert c.post(f"/v1/tasks/{name}/predict", json={"texts": ["x y"]}).status_code == 200
        versions = {p.parent.name for p in (home / "heads").glob("*/v*")}
        assert versions == names
    finally:
        proc.kill()
        proc.wait()


def test_concurrent_writers_leave_a_consistent_registry(client, home):
    from concurrent.futures import ThreadPoolExecutor

    def make(i):  # four distinct tasks and four racing for the same name
        return create(client, f"task-{i}" if i < 4 else "contested").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(make, range(8)))
    assert codes[:4] == [201] * 4
    assert sorted(codes[4:]) == [201, 409, 409, 409]
    names = {t["name"] for t in client.get("/v1/tasks").json()["tasks"]}
    assert names == {"task-0", "task-1", "task-2", "task-3", "contested"}
    assert {p.parent.name for p in (home / "heads").glob("*/v*")} == names
    for name in names:
        assert client.post(f"/v1/tasks/{name}/predict", json={"texts": ["a goal"]}).status_code == 200


def test_racing_creates_cannot_pass_the_task_limit(client):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: create(client, f"race-{i}").status_code, range(8)))
    assert codes.count(201) == 5 and codes.count(400) == 3
    assert len(client.get("/v1/tasks").json()["tasks"]) == 5


def test_every_request_is_logged_in_one_line(home):
    lines = []
    with TestClient(build_app(home, backbone="tiny", token=TOKEN, log=lines.append)) as c:
        c.get("/healthz")
        c.post("/v1/tasks/nope/predict", json={"texts": ["x"]})
    assert lines[0].startswith("GET /healthz 200 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("POST /v1/tasks/nope/predict 404 ")


def test_json_request_logs_name_the_task(home):
    import json

    lines = []
    with TestClient(build_app(home, backbone="tiny", token=TOKEN, log=lines.append, log_json=True)) as c:
        c.get("/healthz")
        c.post("/v1/tasks/nope/predict", json={"texts": ["x"]})
        c.post("/v1/indexes/docs/search", json={"queries": ["x"]})
    health, predict, search = map(json.loads, lines)
    assert health["method"] == "GET" and health["path"] == "/healthz" and health["status"] == 200
    assert health["ms"] >= 0 and health["time"].endswith("+00:00") and "task" not in health
    assert predict["task"] == "nope" and predict["status"] == 404
    assert search["index"] == "docs" and search["status"] == 404


def test_a_zero_shot_task_from_label_names_alone(client):
    r = client.post("/v1/tasks", json={"name": "topic", "labels": ["sport", "finance"]}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["head"] == "zero_shot" and sorted(r.json()["classes"]) == ["finance", "sport"]
    out = client.post("/v1/tasks/topic/predict", json={"texts": ["a goal"]}).json()["predictions"][0]
    assert out["label"] in {"sport", "finance"}
    bad = client.post("/v1/tasks", json={"name": "t2", "labels": ["a", "b"], "head": "linear_probe"}, headers=AUTH)
    assert bad.status_code == 400 and "zero_shot" in bad.json()["detail"]
    assert client.post("/v1/tasks", json={"name": "t3", "labels": ["only"]}, headers=AUTH).status_code == 422


def test_score_heads_take_numeric_targets_and_answer_with_a_score(client):
    ratings = [{"text": t, "label": v} for t, v in zip(SPORTS + FOOD, [1, 2.5, 3, 4, 7, 8, 9.5, 10])]
    r = client.post("/v1/tasks", json={"name": "rating", "examples": ratings, "head": "ridge"}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["classes"] == [] and r.json()["head"] == "ridge"
    pred = client.post("/v1/tasks/rating/predict", json={"texts": ["a cake with cream"]}).json()["predictions"][0]
    assert set(pred) == {"score"} and isinstance(pred["score"], float)
    more = client.post("/v1/tasks/rating/examples", json={"examples": [{"text": "rain all day", "label": 5}]},
                       headers=AUTH)  # refitted on the stored examples, read back as numbers
    assert more.status_code == 200 and more.json()["version"] == 2 and more.json()["n_examples"] == 9
    both = client.post("/v1/predict", json={"tasks": ["rating"], "texts": ["a goal"]}).json()["results"]
    assert set(both["rating"]["predictions"][0]) == {"score"}
    anchors = {"groups": [["a terrible text", "a fine text", "a wonderful text"]], "target_range": [1, 10]}
    r = client.post("/v1/tasks", json={"name": "zs", "head": "anchored", "params": anchors}, headers=AUTH)
    assert r.status_code == 201, r.text  # anchors alone: zero-shot scoring, no examples
    score = client.post("/v1/tasks/zs/predict", json={"texts": ["a goal"]}).json()["predictions"][0]["score"]
    assert 1 <= score <= 10
    words = [{"text": t, "label": "high"} for t in SPORTS] + [{"text": t, "label": "low"} for t in FOOD]
    bad = client.post("/v1/tasks", json={"name": "w", "examples": words, "head": "ridge"}, headers=AUTH)
    assert bad.status_code == 400 and "needs a number" in bad.json()["detail"]
    ok = client.post("/v1/tasks", json={"name": "w", "examples": words, "head": "ridge",
                                        "params": {"order": ["low", "high"]}}, headers=AUTH)
    assert ok.status_code == 201, ok.text
    nan = '{"name": "n", "head": "ridge", "examples": [{"text": "a", "label": NaN}, {"text": "b", "label": 1}]}'
    assert client.post("/v1/tasks", content=nan, headers={**AUTH, "content-type": "application/json"}).status_code \
        in (400, 422)


# -- the reliability probe's findings (issue: no silent wrong answers, no lost tasks) ---------------

def test_a_deleted_and_recreated_task_never_answers_with_the_old_head(client):
    pos_neg = [{"text": "great film", "label": "pos"}, {"text": "awful film", "label": "neg"}] * 2
    fin_sport = [{"text": "shares fell", "label": "finance"}, {"text": "a late goal", "label": "sports"}] * 2
    assert client.post("/v1/tasks", json={"name": "stale", "examples": pos_neg}, headers=AUTH).status_code == 201
    assert client.post("/v1/tasks/stale/predict", json={"texts": ["x y"]}).json()["predictions"][0]["label"] in \
        {"pos", "neg"}
    assert client.delete("/v1/tasks/stale", headers=AUTH).status_code == 204
    assert client.post("/v1/tasks", json={"name": "stale", "examples": fin_sport}, headers=AUTH).status_code == 201
    for r in (client.post("/v1/tasks/stale/predict", json={"texts": ["x y"]}).json()["predictions"][0],
              client.post("/v1/predict", json={"tasks": ["stale"], "texts": ["x y"]}).json()["results"]["stale"]["predictions"][0]):
        assert r["label"] in {"finance", "sports"}


@pytest.mark.parametrize("params, message", [({"scale": 1e400}, "not a finite number"),
                                             ({"scale": float("nan")}, "not a finite number"),
                                             ({"max_iter": -1}, "'max_iter' parameter")])
def test_non_finite_or_nonsense_parameters_are_refused(client, params, message):
    head = "centroid" if "scale" in params else "linear_probe"
    body = json.dumps({"name": "p", "examples": examples(), "head": head, "params": params})  # NaN as JSON allows
    r = client.post("/v1/tasks", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code in (400, 422) and message in r.text, r.text


def test_booleans_are_not_labels_and_names_cannot_end_in_a_newline(client):
    r = client.post("/v1/tasks", json={"name": "b", "examples": [{"text": "a", "label": True},
                                                                {"text": "b", "label": False}]}, headers=AUTH)
    assert r.status_code == 422
    assert create(client, "a\n").status_code in (400, 422)


def test_dev_mode_refuses_foreign_host_and_origin_headers(home):
    with TestClient(build_app(home, backbone="tiny", dev=True)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "evil.example:8000"}).status_code == 403
        assert c.post("/v1/tasks", json={"name": "x", "examples": examples()},
                      headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.get("/healthz", headers={"Host": "127.0.0.1:8000", "Origin": "http://localhost:8000"}).status_code == 200


def test_a_damaged_head_is_a_503_with_an_id_not_a_400_with_server_paths(client, home, capfd):
    assert create(client, "broken").status_code == 201
    for config in (home / "heads" / "broken").glob("v*/config.json"):  # damage the stored head on disk
        data = json.loads(config.read_text())
        data["extra"]["classes"] = data["extra"]["classes"][::-1]
        config.write_text(json.dumps(data))
    r = client.post("/v1/tasks/broken/predict", json={"texts": ["a goal"]})
    assert r.status_code == 503 and str(home) not in r.text and "error " in r.json()["detail"]
    assert "broken" in capfd.readouterr().err


def test_one_writer_per_home_and_readers_never_clean_up(home):
    from anytask.apps.serve.store import TaskStore

    writer = TaskStore(home)
    (home / "heads" / "inflight" / "v1").mkdir(parents=True)  # what a create in progress looks like
    with pytest.raises(AnytaskError, match="one writer per home"):
        TaskStore(home)
    reader = TaskStore(home, read_only=True)
    assert (home / "heads" / "inflight" / "v1").is_dir()  # a reader removed nothing
    with pytest.raises(AnytaskError, match="read-only"):
        reader.delete("anything")
    reader.close()
    writer.close()
    TaskStore(home).close()  # the lock is free again once the writer closes


def test_a_missing_or_corrupted_registry_never_deletes_heads(client, home):
    from anytask.apps.serve.store import TaskStore

    assert create(client, "keep").status_code == 201
    client.__exit__(None, None, None)  # stop the server: its lock is released
    (home / "registry.sqlite").rename(home / "registry.moved")
    for suffix in ("-wal", "-shm"):
        (home / f"registry.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(AnytaskError, match="refusing to start"):
        TaskStore(home)
    assert any((home / "heads" / "keep").iterdir())
    (home / "registry.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(AnytaskError, match="not a readable task registry"):
        TaskStore(home)
    assert any((home / "heads" / "keep").iterdir())


def test_large_answers_need_top_k_and_metrics_stay_bounded(home):
    many = [{"text": f"example {i} of class {i}", "label": f"c{i}"} for i in range(40)]
    with TestClient(build_app(home, backbone="tiny", token=TOKEN, limits=Limits(max_probabilities=100))) as c:
        assert c.post("/v1/tasks", json={"name": "wide", "examples": many, "head": "centroid"},
                      headers=AUTH).status_code == 201
        big = c.post("/v1/tasks/wide/predict", json={"texts": ["a", "b", "c"]})
        assert big.status_code == 400 and "top_k" in big.json()["detail"]
        small = c.post("/v1/tasks/wide/predict", json={"texts": ["a", "b", "c"], "top_k": 2}).json()["predictions"]
        assert all(len(p["probabilities"]) == 2 and p["label"] in p["probabilities"] for p in small)
        c.request("FROB", "/healthz")
        c.get("/metrics")
        before = c.get("/metrics").text.count("\n")
        for verb in ("BREW", "WHEN", "ZAP"):
            c.request(verb, "/healthz")
        text = c.get("/metrics").text
        assert text.count("\n") == before  # made-up methods share the one "OTHER" series: no new lines
        assert 'anytask_requests_total{method="OTHER",path="/healthz",status="405"} 4.0' in text
        assert 'anytask_request_duration_seconds_bucket{le="0.1",method="POST",path="/v1/tasks/{name}/predict"}' in text


def test_scratch_files_stay_inside_the_home_and_leftovers_are_removed_at_start(home):
    from anytask.apps.serve.store import TaskStore

    store = TaskStore(home)
    leftover = home / "heads" / "t" / ".v1.scratch-abc"  # what a kill -9 during a save leaves
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"partial")
    store.close()
    TaskStore(home).close()
    assert not leftover.exists()


def test_a_raw_text_head_is_served_beside_feature_heads(tmp_path, bert_folders):
    """contrastive reads raw texts (its tuned layers run their own forward); the feature heads share one pass."""
    app = build_app(tmp_path / "home", backbone=f"hf:{bert_folders[0]}", token=TOKEN)
    with TestClient(app) as client:
        r = create(client, "tuned", head="contrastive", params={"max_steps": 2, "batch_size": 4})
        assert r.status_code == 201, r.text
        assert create(client, "plain", head="centroid").status_code == 201
        r = client.post("/v1/predict", json={"tasks": ["tuned", "plain"], "texts": ["the team won", "more salt"]})
        assert r.status_code == 200, r.text
        for result in r.json()["results"].values():
            preds = result["predictions"]
            assert len(preds) == 2 and all(abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in preds)
        r = client.post("/v1/tasks/tuned/examples", json={"examples": [{"text": "rain all day", "label": "weather"},
                                                                       {"text": "a sunny week", "label": "weather"}]},
                        headers=AUTH)
        assert r.status_code == 200 and r.json()["classes"] == ["food", "sports", "weather"]


def test_a_group_of_tasks_is_trained_together_and_served_like_any_task(client, home):
    sentiment = [{"text": t, "label": lab} for t, lab in [("what a great match", "pos"), ("a lovely cake", "pos"),
                                                          ("the soup was awful", "neg"), ("a dull final", "neg")]]
    body = {"name": "g1", "method": "mmoe", "params": {"steps": 20, "hidden": 8},
            "tasks": {"topic": examples(), "mood": sentiment}}
    r = client.post("/v1/groups", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["method"] == "mmoe" and [t["name"] for t in out["tasks"]] == ["topic", "mood"]
    assert all(t["head"] == "multitask" and t["head_params"] == {"method": "mmoe", "group": "g1"} for t in out["tasks"])
    r = client.post("/v1/predict", json={"tasks": ["topic", "mood"], "texts": ["the striker scored a goal"]})
    assert r.status_code == 200 and set(r.json()["results"]["topic"]["predictions"][0]["probabilities"]) == {
        "food", "sports"}
    r = client.post("/v1/tasks/mood/examples", json={"examples": sentiment}, headers=AUTH)
    assert r.status_code == 400 and "group" in r.json()["detail"]
    # a name that exists, too few tasks, an unknown method: refused before anything is stored
    assert client.post("/v1/groups", json={**body, "name": "g2"}, headers=AUTH).status_code == 409
    r = client.post("/v1/groups", json={**body, "tasks": {"solo": examples()}}, headers=AUTH)
    assert r.status_code == 422
    r = client.post("/v1/groups", json={**body, "method": "mmeo", "tasks": {"a": examples(), "b": sentiment}},
                    headers=AUTH)
    assert r.status_code == 400 and "Did you mean 'mmoe'" in r.json()["detail"]
    assert sorted(t["name"] for t in client.get("/v1/tasks").json()["tasks"]) == ["mood", "topic"]
    assert client.post("/v1/groups", json={**body, "tasks": {"a": examples()}}, headers={}).status_code in (401, 422)
