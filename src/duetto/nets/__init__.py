"""Networks and heads shared by the algorithms."""

from duetto.nets.critics import CriticEnsemble, GaussianCriticEnsemble
from duetto.nets.heads import (
    CategoricalActor,
    DeterministicActor,
    GaussianActor,
    SquashedGaussianActor,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
    sample_squashed,
    squashed_gaussian_log_prob,
)
from duetto.nets.mlp import MLP

__all__ = [
    "MLP",
    "CategoricalActor",
    "CriticEnsemble",
    "DeterministicActor",
    "GaussianCriticEnsemble",
    "GaussianActor",
    "SquashedGaussianActor",
    "categorical_entropy",
    "categorical_log_prob",
    "gaussian_entropy",
    "gaussian_log_prob",
    "sample_squashed",
    "squashed_gaussian_log_prob",
]
