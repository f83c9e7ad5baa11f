"""Concepts: discover them with a sparse autoencoder, name them, classify and explain with them."""

from anytask.concepts.model import ConceptModel, load_concept_model
from anytask.concepts.naming import build_vocabulary, name_concepts, top_activating
from anytask.concepts.sae import SAEConfig, SparseAutoencoder, evaluate_sae, train_sae

__all__ = ["ConceptModel", "SAEConfig", "SparseAutoencoder", "build_vocabulary", "evaluate_sae",
           "load_concept_model", "name_concepts", "top_activating", "train_sae"]
