"""Labelled data for tasks: local files, a data root of task folders, scikit-learn's bundled
sets, Hugging Face ``datasets`` (online only), a synthetic text task, and k-shot sampling.

Two registries: ``DATASETS`` (where a task comes from: ``load_dataset("sklearn:digits")``) and
``STREAMS`` (ordered task streams for continual learning: ``make_stream("split-mnist", ...)``)."""

from anytask.data.files import LabeledData, read_table
from anytask.data.sampling import eval_indices, k_shot_indices, task_seed
from anytask.data.sources import (
    DATASETS, LABEL_DESCRIPTIONS, SKLEARN_DATASETS, default_data_root, hf_dataset, list_tasks, load_dataset,
    load_task, sklearn_dataset,
)
from anytask.data.streams import STREAMS, StreamTask, make_stream
from anytask.data.synthetic import make_topic_task

__all__ = [
    "DATASETS", "LABEL_DESCRIPTIONS", "LabeledData", "SKLEARN_DATASETS", "STREAMS", "StreamTask",
    "default_data_root", "eval_indices", "hf_dataset", "k_shot_indices", "list_tasks", "load_dataset",
    "load_task", "make_stream", "make_topic_task", "read_table", "sklearn_dataset", "task_seed",
]
