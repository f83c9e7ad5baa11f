"""TaskService: what the HTTP layer calls. Many tasks, one backbone, one encoder pass per input.

All the work lives here (validation, embedding through the batcher, fitting heads with
the library's registry, the durable store); ``app.py`` only maps HTTP to these calls.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts
from anytask.methods.heads import DEFAULT_HEAD, HEADS, create_head_for, reads_texts
from anytask.apps.serve.batching import DynamicBatcher
from anytask.apps.serve.store import TaskInfo, TaskStore



def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 5_000_000
    max_texts: int = 256  # per predict request
    max_examples: int = 5_000  # per create / add request
    max_text_chars: int = 10_000
    max_tasks: int = 1_000
    max_tasks_per_predict: int = 64
    max_probabilities: int = 100_000  # per predict response, summed over texts x classes; top_k goes past it
    max_indexes: int = 100
    max_documents: int = 200_000  # per index
    max_k: int = 1_000  # documents per search query
    max_live_documents: int = 2_000_000  # documents of all indexes held in memory at once (least recently used go)


class TaskService:
    def __init__(self, store: TaskStore, embedder, *, backbone: str, limits: Limits = Limits(),
                 max_wait_ms: float = 5.0, cache_dir: str | None = None, head_cache_size: int = 256) -> None:
        self.store = store
        self.embedder = embedder
        self.backbone = backbone
        self.limits = limits
        self.cache_dir = cache_dir
        self.batcher = DynamicBatcher(embedder, max_wait_ms=max_wait_ms)
        self._heads: OrderedDict[tuple[str, int, float], object] = OrderedDict()
        self._heads_lock = threading.Lock()
        self._head_cache_size = head_cache_size
        from anytask.apps.serve.index_store import IndexStore
        from anytask.apps.serve.indexes import IndexService

        backbone_obj = getattr(embedder, "backbone", None)
        self.indexes = IndexService(IndexStore(store), self.batcher, backbone=backbone, limits=limits,
                                    identity=getattr(backbone_obj, "identity", backbone))

    # -- validation -------------------------------------------------------------------------------
    def check_texts(self, texts: list[str], *, limit: int, what: str = "texts") -> None:
        check_input_texts(texts, what=what, limit=limit, max_chars=self.limits.max_text_chars)

    @staticmethod
    def is_scorer(head: str | None) -> bool:
        """Whether ``head`` is a score head (anytask.methods.scores): numeric targets in, a number out."""
        from anytask.methods.scores import SCORERS

        return head is not None and head in SCORERS.names()

    def _head_params(self, head: str, params: dict | None) -> dict:
        if self.is_scorer(head):
            from anytask.methods.scores import SCORERS

            SCORERS.get(head)
        else:
            HEADS.get(head)
        params = dict(params or {})
        for key in ("backbone", "cache_dir"):
            if key in params:
                raise AnytaskError(f"head parameter {key!r} is set by the server; leave it out")
        return params

    def _build_head(self, head: str, params: dict):
        if self.is_scorer(head):
            from anytask.methods.scores import create_scorer_for

            return create_scorer_for(head, self.backbone, self.cache_dir, **params)
        return create_head_for(head, self.backbone, self.cache_dir, **params)

    # -- tasks ------------------------------------------------------------------------------------
    async def create_task(self, name: str, texts: list[str], labels: list, head: str | None,
                          params: dict | None, label_names: list | None = None) -> TaskInfo:
        """A new task from examples, or (``label_names`` and no examples) a zero-shot task from label names."""
        from anytask.apps.serve.store import TaskExists, check_name

        check_name(name)
        if label_names is not None:
            head = head or "zero_shot"
            if head != "zero_shot":
                raise AnytaskError(f"labels=[...] declares the classes of a zero_shot task; head {head!r} learns its "
                                   "classes from examples: leave labels out, or use head zero_shot")
            if len({str(v) for v in label_names}) < 2:
                raise AnytaskError("labels needs at least 2 distinct label names")
        head = head or DEFAULT_HEAD
        params = self._head_params(head, params)
        if label_names is not None:
            if "labels" in params:
                raise AnytaskError("give the label names once: as labels=[...], not also in params")
            params["labels"] = [str(v) for v in label_names]
        elif not texts and not (self.is_scorer(head) and head == "anchored"):  # anchors alone score zero-shot
            raise AnytaskError("examples is empty; send labelled examples, or labels=[...] (label names) for a "
                               "zero-shot task")
        if texts:
            self.check_texts(texts, limit=self.limits.max_examples, what="examples")
        if await asyncio.to_thread(self.store.count) >= self.limits.max_tasks:
            raise AnytaskError(f"the server holds its limit of {self.limits.max_tasks} tasks; delete one first")
        if await asyncio.to_thread(self.store.exists, name):
            raise TaskExists(f"a task named {name!r} already exists; delete it first or add examples to it")
        X = await self._inputs(head, params, texts) if texts else None
        model = await asyncio.to_thread(self._fit, head, params, X, labels)
        return await asyncio.to_thread(functools.partial(self.store.create, max_tasks=self.limits.max_tasks),
                                       name, head, params, self.backbone, model, texts, labels)

    async def _inputs(self, head: str, params: dict | None, texts: list[str]):
        """What a head reads: the shared encoder's embeddings, or the raw texts for heads that run their own
        (tuned) copy of a backbone, such as contrastive, prompt_tuning, lm_prompt or auto with an lm."""
        return list(texts) if self._reads_texts(head, params) else await self.batcher.embed(texts)

    def _reads_texts(self, head: str, params: dict | None) -> bool:
        return not self.is_scorer(head) and reads_texts(head, params)

    def _targets(self, head: str, params: dict, labels: list) -> np.ndarray:
        """Labels as a head fits them: class names (text) for a classifier; numbers for a score head (stored
        examples come back as text), or ordered levels when its params give ``order``."""
        if not self.is_scorer(head):
            return np.asarray([str(v) for v in labels], dtype=object)
        if "order" in params:
            return np.asarray([str(v) for v in labels], dtype=object)
        try:
            return np.asarray([float(v) for v in labels], dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(v for v in labels if not _is_number(v))
            raise AnytaskError(f"score head {head!r} needs a number as each example's label, got {bad!r}; send "
                               "numbers, or params.order=[lowest, ..., highest] to read labels as ordered "
                               "levels") from None

    def _fit(self, head: str, params: dict, X: np.ndarray, labels: list):
        model = self._build_head(head, params)
        y = self._targets(head, params, labels)
        try:
            return model.fit() if X is None else model.fit(X, y)  # no examples: zero_shot from label names
        except AnytaskError:
            raise
        except (TypeError, ValueError) as e:  # a parameter of the wrong type or range
            raise AnytaskError(f"cannot fit head {head!r} with parameters {params}: {e}") from None

    async def create_group(self, group: str, tasks: dict[str, tuple[list[str], list]], method: str,
                           params: dict | None) -> list[TaskInfo]:
        """Several tasks trained *together* by one multi-task model (``anytask.methods.multitask``), each stored
        as an ordinary task (head ``multitask``, ``head_params.group``) that predicts like any other. Names and
        limits are checked before fitting; if storing one task fails, the ones already stored are removed."""
        from anytask.apps.serve.store import TaskExists, check_name
        from anytask.methods.multitask import MULTITASK
        from anytask.methods.multitask.head import MultiTaskHead

        check_name(group)
        MULTITASK.get(method)
        if len(tasks) < 2:
            raise AnytaskError("a group trains several tasks together; send at least 2 tasks")
        params = dict(params or {})
        for name, (texts, labels) in tasks.items():
            check_name(name)
            if not texts:
                raise AnytaskError(f"task {name!r} has no examples; every task of a group needs labelled examples")
            self.check_texts(texts, limit=self.limits.max_examples, what=f"examples of {name!r}")
            if await asyncio.to_thread(self.store.exists, name):
                raise TaskExists(f"a task named {name!r} already exists; delete it first or rename it in the group")
        if await asyncio.to_thread(self.store.count) + len(tasks) > self.limits.max_tasks:
            raise AnytaskError(f"the group's {len(tasks)} tasks would pass the server's limit of "
                               f"{self.limits.max_tasks} tasks; delete some first")
        every = [t for texts, _ in tasks.values() for t in texts]
        embedded, X, start = await self.batcher.embed(every), {}, 0  # one request for all the group's texts
        for name, (texts, _) in tasks.items():
            X[name], start = embedded[start:start + len(texts)], start + len(texts)

        def fit():
            data = {n: (X[n], np.asarray([str(v) for v in labels], dtype=object)) for n, (_, labels) in tasks.items()}
            try:
                model = MULTITASK.get(method)(**params).fit(data)
            except TypeError as e:
                raise AnytaskError(f"cannot fit multi-task method {method!r} with parameters {params}: {e}") from None
            return {n: MultiTaskHead.from_group(model, n, group=group) for n in tasks}

        heads = await asyncio.to_thread(fit)
        made: list[TaskInfo] = []
        try:
            for name, (texts, labels) in tasks.items():
                made.append(await asyncio.to_thread(
                    functools.partial(self.store.create, max_tasks=self.limits.max_tasks), name, "multitask",
                    {"method": method, "group": group}, self.backbone, heads[name], texts, labels))
        except BaseException:
            for info in made:
                await asyncio.to_thread(self.store.delete, info.name)
            raise
        return made

    async def add_examples(self, name: str, texts: list[str], labels: list) -> TaskInfo:
        self.check_texts(texts, limit=self.limits.max_examples, what="examples")
        info = await asyncio.to_thread(self.store.get, name)
        if info.head == "multitask" and info.head_params.get("group"):
            raise AnytaskError(f"task {name!r} was trained together with group {info.head_params['group']!r}; adding "
                               "examples to one member would retrain it alone. Delete the group's tasks and create "
                               "the group again (POST /v1/groups) with the new examples")
        old_texts, old_labels = await asyncio.to_thread(self.store.examples, name)
        X = await self._inputs(info.head, info.head_params, old_texts + list(texts))  # old ones come from the cache
        model = await asyncio.to_thread(self._fit, info.head, info.head_params, X, old_labels + list(labels))
        return await asyncio.to_thread(self.store.replace_head, info, model, texts, labels)

    async def delete_task(self, name: str) -> None:
        await asyncio.to_thread(self.store.delete, name)

    # -- prediction -------------------------------------------------------------------------------
    def _head(self, info: TaskInfo):
        # (name, version) repeats after a delete and a re-create; the creation time does not
        key = (info.name, info.version, info.created)
        with self._heads_lock:
            if key in self._heads:
                self._heads.move_to_end(key)
                return self._heads[key]
        model = self.store.load_head(info)
        with self._heads_lock:
            self._heads[key] = model
            while len(self._heads) > self._head_cache_size:
                self._heads.popitem(last=False)
        return model

    async def predict(self, tasks: list[str], texts: list[str], top_k: int | None = None) -> dict[str, list[dict]]:
        """Predictions of every task for the same texts, from one shared encoder pass; ``top_k`` keeps only the
        k most probable classes of each prediction (required when the full answer would exceed the limit)."""
        self.check_texts(texts, limit=self.limits.max_texts)
        if not tasks:
            raise AnytaskError("tasks is empty; name at least one task")
        if len(tasks) > self.limits.max_tasks_per_predict:
            raise AnytaskError(f"{len(tasks)} tasks in one request; the limit is {self.limits.max_tasks_per_predict}")
        if top_k is not None and top_k < 1:
            raise AnytaskError(f"top_k must be at least 1, got {top_k}")
        # one indexed SQLite read (microseconds, never blocked by a writer in WAL mode)
        infos = self.store.get_many(list(dict.fromkeys(tasks)))
        n_probabilities = len(texts) * sum(min(len(i.classes), top_k or len(i.classes)) for i in infos)
        if n_probabilities > self.limits.max_probabilities:
            raise AnytaskError(f"this answer would hold {n_probabilities:,} probabilities; the limit is "
                               f"{self.limits.max_probabilities:,}: ask for top_k (e.g. 5), or send fewer texts or tasks")
        heads = await asyncio.to_thread(lambda: [self._head(info) for info in infos])  # disk reads off the loop
        on_texts = [self._reads_texts(info.head, info.head_params) for info in infos]
        X = await self.batcher.embed(texts) if not all(on_texts) else None  # one pass shared by the feature heads
        inputs = [list(texts) if t else X for t in on_texts]
        return await asyncio.to_thread(self._answer, infos, heads, inputs, top_k)  # large heads take a while

    @staticmethod
    def _answer(infos, heads, inputs, top_k: int | None) -> dict[str, list[dict]]:
        out = {}
        for info, head, X in zip(infos, heads, inputs):
            if not hasattr(head, "predict_proba"):  # a score head: one number per text
                out[info.name] = [{"score": float(v)} for v in head.predict(X)]
                continue
            proba = head.predict_proba(X)
            classes = [str(c) for c in head.classes_]
            keep = np.argsort(-proba, axis=1)[:, :top_k] if top_k else None
            out[info.name] = [{"label": classes[int(p.argmax())],
                               "probabilities": ({classes[j]: float(p[j]) for j in keep[r]} if top_k
                                                 else {c: float(v) for c, v in zip(classes, p)})}
                              for r, p in enumerate(proba)]
        return out
