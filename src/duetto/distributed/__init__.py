"""duetto past one process, on Ray: sweeps and seeds as Ray Tune trials (sweep.py, trial.py)
over search spaces from the typed configs (space.py), on a local Ray or a cluster
(cluster.py)."""

from duetto.distributed.space import LogUniform, RandInt, Uniform

__all__ = ["LogUniform", "RandInt", "Uniform"]
