"""Search indexes in the service: every path and error, restarts, a read-only replica, kill -9 during adds."""

import signal
import sqlite3
import threading
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from anytask.apps.serve import build_app  # noqa: E402
from anytask.apps.serve.service import Limits  # noqa: E402
from servers import AUTH, TOKEN, free_port, start_server  # noqa: E402

DOCS = ["the striker scored a goal", "bake the bread for an hour", "the stock market fell sharply",
        "a new vaccine for the flu", "the team won the cup", "fresh basil in the sauce"]


def documents(texts=DOCS, prefix="d"):
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(texts)]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def client(home):
    app = build_app(home, backbone="tiny", token=TOKEN, limits=Limits(max_texts=8, max_indexes=3, max_documents=10))
    with TestClient(app) as c:
        yield c


def make(client, name="docs", **extra):
    return client.post("/v1/indexes", json={"name": name, "documents": documents(), **extra}, headers=AUTH)


def search(client, queries, k=3, name="docs"):
    r = client.post(f"/v1/indexes/{name}/search", json={"queries": queries, "k": k})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_index_lifecycle(client):
    r = make(client)
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["name"], info["index"], info["n_documents"], info["version"]) == ("docs", "exact", 6, 1)
    assert [i["name"] for i in client.get("/v1/indexes").json()["indexes"]] == ["docs"]
    assert client.get("/v1/indexes/docs").json()["dim"] == info["dim"]
    # every document finds itself first, with cosine ~1, and hits come best first
    results = search(client, DOCS, k=3)
    assert [hits[0]["id"] for hits in results] == [f"d{i}" for i in range(6)]
    assert all(abs(hits[0]["score"] - 1) < 1e-4 and hits[0]["text"] == DOCS[i] for i, hits in enumerate(results))
    assert all(h[0]["score"] >= h[1]["score"] >= h[2]["score"] for h in results)

    r = client.post("/v1/indexes/docs/documents", json={"documents": [{"id": "new", "text": "a rainy day in town"}]},
                    headers=AUTH)
    assert r.status_code == 200 and r.json()["n_documents"] == 7 and r.json()["version"] == 2
    assert search(client, ["a rainy day in town"], k=1)[0][0]["id"] == "new"
    assert client.get("/v1/indexes/docs/documents/new").json() == {"id": "new", "text": "a rainy day in town"}

    assert client.delete("/v1/indexes/docs/documents/new", headers=AUTH).json()["n_documents"] == 6
    r = client.post("/v1/indexes/docs/documents/delete", json={"ids": ["d0", "d1"]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["n_documents"] == 4
    found = {h["id"] for hits in search(client, DOCS, k=4) for h in hits}
    assert found == {"d2", "d3", "d4", "d5"}
    assert client.get("/v1/indexes/docs/documents/d0").status_code == 404

    assert client.delete("/v1/indexes/docs", headers=AUTH).status_code == 204
    assert client.get("/v1/indexes/docs").status_code == 404
    assert client.post("/v1/indexes/docs/search", json={"queries": ["x"]}).status_code == 404
    assert make(client).status_code == 201  # the name is free again, and the new index is not the old one
    assert search(client, ["the striker scored a goal"], k=1)[0][0]["id"] == "d0"


def test_index_writes_need_the_token_and_reads_do_not(client):
    assert client.post("/v1/indexes", json={"name": "docs", "documents": documents()}).status_code == 401
    assert make(client).status_code == 201
    bad = {"Authorization": "Bearer wrong-token"}
    assert client.post("/v1/indexes/docs/documents", json={"documents": documents(prefix="x")},
                       headers=bad).status_code == 403
    assert client.delete("/v1/indexes/docs").status_code == 401
    assert client.post("/v1/indexes/docs/documents/delete", json={"ids": ["d0"]}).status_code == 401
    assert client.get("/v1/indexes").status_code == 200 and search(client, ["goal"], k=1)


@pytest.mark.parametrize("body, status, words", [
    ({"name": "docs", "documents": []}, 422, "documents"),
    ({"name": "../x", "documents": documents()}, 400, "invalid index name"),
    ({"name": "docs", "documents": documents() + [{"id": "d0", "text": "again"}]}, 400, "duplicate id 'd0'"),
    ({"name": "docs", "documents": [{"id": "a", "text": ""}]}, 422, "text"),
    ({"name": "docs", "documents": documents(), "index": "nope"}, 400, "nope"),
    ({"name": "docs", "documents": documents(), "params": {"bogus": 1}}, 400, "bogus"),
    ({"name": "docs", "documents": documents(DOCS * 2)}, 400, "at most 10"),
    ({"name": "docs", "documents": documents(), "extra": 1}, 422, "extra"),
])
def test_bad_index_requests_are_clear_errors(client, body, status, words):
    r = client.post("/v1/indexes", json=body, headers=AUTH)
    assert r.status_code == status and words in r.json()["detail"], r.text
    assert client.get("/v1/indexes").json()["indexes"] == []  # nothing half-created


def test_bad_changes_and_searches_change_nothing(client):
    assert make(client).status_code == 201
    assert make(client).status_code == 409
    before = search(client, DOCS)
    cases = [
        (client.post("/v1/indexes/docs/documents", json={"documents": [{"id": "z", "text": "fine"},
                                                                     {"id": "d3", "text": "clash"}]}, headers=AUTH),
         400, "'d3' is already in index"),
        (client.post("/v1/indexes/docs/documents", json={"documents": documents(DOCS, prefix="y")}, headers=AUTH),
         400, "limit of 10"),
        (client.post("/v1/indexes/docs/documents/delete", json={"ids": ["d1", "ghost"]}, headers=AUTH),
         404, "no document 'ghost'"),
        (client.post("/v1/indexes/docs/documents/delete", json={"ids": [f"d{i}" for i in range(6)]}, headers=AUTH),
         400, "empty"),
        (client.post("/v1/indexes/nope/documents", json={"documents": documents()}, headers=AUTH), 404, "no index"),
        (client.post("/v1/indexes/docs/search", json={"queries": ["x"], "k": 7}), 400, "holds 6 documents"),
        (client.post("/v1/indexes/docs/search", json={"queries": ["x"], "k": 0}), 422, "k"),
        (client.post("/v1/indexes/docs/search", json={"queries": ["x"] * 9}), 400, "limit"),
        (client.post("/v1/indexes/docs/search", json={"queries": [""]}), 422, "queries"),
    ]
    for r, status, words in cases:
        assert r.status_code == status and words in r.json()["detail"], r.text
    info = client.get("/v1/indexes/docs").json()
    assert info["n_documents"] == 6 and info["version"] == 1
    assert search(client, DOCS) == before
    for name in ("a", "b"):
        assert make(client, name).status_code == 201
    r = make(client, "c")
    assert r.status_code == 400 and "limit of 3 indexes" in r.json()["detail"]


def test_indexes_survive_a_restart_and_a_replica_sees_changes(home):
    kinds = ["exact"] + (["hnsw"] if _has_usearch() else [])
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        for kind in kinds:
            assert make(c, kind, index=kind).status_code == 201
        c.post("/v1/indexes/exact/documents/delete", json={"ids": ["d2"]}, headers=AUTH)
        before = {kind: search(c, DOCS, k=4, name=kind) for kind in kinds}
        with TestClient(build_app(home, backbone="tiny", read_only=True)) as replica:
            assert search(replica, DOCS, k=4, name="exact") == before["exact"]
            c.post("/v1/indexes/exact/documents", json={"documents": [{"id": "late", "text": "a rainy day"}]},
                   headers=AUTH)
            assert search(replica, ["a rainy day"], k=1, name="exact")[0][0]["id"] == "late"  # reloaded: new version
            r = replica.post("/v1/indexes/exact/documents", json={"documents": documents(prefix="r")}, headers=AUTH)
            assert r.status_code == 403
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        assert c.get("/v1/indexes/exact").json()["n_documents"] == 6
        for kind in kinds:
            after = search(c, DOCS, k=4, name=kind)
            assert [[h["id"] for h in hits] for hits in after][:2] == [[h["id"] for h in hits]
                                                                      for hits in before[kind]][:2]


def test_an_index_from_another_backbone_is_refused(home):
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        assert make(c).status_code == 201
    with sqlite3.connect(home / "registry.sqlite") as conn:  # as if the backbone's weights had changed since
        conn.execute("UPDATE indexes SET identity = 'tiny@other-weights'")
    with TestClient(build_app(home, backbone="tiny", token=TOKEN)) as c:
        r = c.post("/v1/indexes/docs/search", json={"queries": ["goal"]})
        assert r.status_code == 400 and "tiny@other-weights" in r.json()["detail"]
        r = c.post("/v1/indexes/docs/documents", json={"documents": documents(prefix="n")}, headers=AUTH)
        assert r.status_code == 400 and "create the index again" in r.json()["detail"]


def test_concurrent_adds_all_land(client):
    from concurrent.futures import ThreadPoolExecutor

    assert client.post("/v1/indexes", json={"name": "docs", "documents": documents(DOCS[:2])},
                       headers=AUTH).status_code == 201

    def add(i):
        return client.post("/v1/indexes/docs/documents", json={"documents": [{"id": f"c{i}", "text": f"text {i}"}]},
                           headers=AUTH).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(add, range(8))) == [200] * 8
    info = client.get("/v1/indexes/docs").json()
    assert info["n_documents"] == 10 and info["version"] == 9
    hits = search(client, [f"text {i}" for i in range(8)], k=1)
    assert [h[0]["id"] for h in hits] == [f"c{i}" for i in range(8)]  # the live index saw every commit


def test_acknowledged_documents_survive_kill_9(home):
    import httpx

    port = free_port()
    proc = start_server(home, port)
    acknowledged, stop = [], threading.Event()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=10) as c:
        assert c.post("/v1/indexes", json={"name": "docs", "documents": documents()}).status_code == 201

    def writer():
        i = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=10) as c:
            while not stop.is_set():
                batch = [{"id": f"b{i}-{j}", "text": f"batch {i} document {j}"} for j in range(5)]
                try:
                    r = c.post("/v1/indexes/docs/documents", json={"documents": batch})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.extend(d["id"] for d in batch)
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.time() + 120  # kill once a few adds were acknowledged (a condition, not a clock)
    while len(acknowledged) < 15 and time.time() < deadline and thread.is_alive():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    thread.join()
    assert acknowledged, "no document was added before the kill"
    proc = start_server(home, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            n = c.get("/v1/indexes/docs").json()["n_documents"]
            assert n >= 6 + len(acknowledged) and (n - 6) % 5 == 0  # whole batches only
            for doc_id in acknowledged:
                assert c.get(f"/v1/indexes/docs/documents/{doc_id}").status_code == 200, doc_id
            hits = c.post("/v1/indexes/docs/search", json={"queries": [f"batch 0 document {j}" for j in range(5)],
                                                             "k": 1}).json()["results"]
            assert [h[0]["id"] for h in hits] == [f"b0-{j}" for j in range(5)]
    finally:
        proc.kill()
        proc.wait()


def _has_usearch() -> bool:
    import importlib.util

    return importlib.util.find_spec("usearch") is not None
