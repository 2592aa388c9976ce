"""Drift monitors, training buffers, background training, model registry, hot swap.

Present so far: :mod:`retrain.registry` (MLflow model registry: candidates, the
``champion`` alias, promotion rule, rollback, verified loading). It is not imported here:
it pulls in MLflow (about 2 s), which importing ``retrain`` alone should not cost.
"""

__all__: list[str] = []
