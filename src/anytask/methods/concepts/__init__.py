"""Concepts: discover them with a sparse autoencoder, name them, classify and explain with them."""

from anytask.methods.concepts.model import ConceptModel, load_concept_model
from anytask.methods.concepts.naming import build_vocabulary, name_concepts, top_activating
from anytask.methods.concepts.sae import SAEConfig, SparseAutoencoder, evaluate_sae, train_sae
from anytask.methods.concepts import bottleneck  # noqa: E402,F401  (registers the concept_bottleneck head)

__all__ = ["ConceptModel", "SAEConfig", "SparseAutoencoder", "build_vocabulary", "evaluate_sae",
           "load_concept_model", "name_concepts", "top_activating", "train_sae"]
