"""Labelled data for tasks: local files, a data root of task folders, scikit-learn's bundled
sets, Hugging Face ``datasets`` (online only), a synthetic text task, and k-shot sampling."""

from anytask.data.files import LabeledData, read_table
from anytask.data.sampling import k_shot_indices, task_seed
from anytask.data.sources import (
    LABEL_DESCRIPTIONS, SKLEARN_DATASETS, default_data_root, hf_dataset, list_tasks, load_task,
    sklearn_dataset,
)
from anytask.data.synthetic import make_topic_task

__all__ = [
    "LABEL_DESCRIPTIONS", "LabeledData", "SKLEARN_DATASETS", "default_data_root", "hf_dataset",
    "k_shot_indices", "list_tasks", "load_task", "make_topic_task", "read_table", "sklearn_dataset",
    "task_seed",
]
