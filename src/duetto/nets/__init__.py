"""Networks and heads shared by the algorithms."""

from duetto.nets.critics import CriticEnsemble
from duetto.nets.heads import (
    SquashedGaussianActor,
    sample_squashed,
    squashed_gaussian_log_prob,
)
from duetto.nets.mlp import MLP

__all__ = [
    "MLP",
    "CriticEnsemble",
    "SquashedGaussianActor",
    "sample_squashed",
    "squashed_gaussian_log_prob",
]
