"""Drift monitors, training buffers, background training, model registry, hot swap.

Arrives with its own issue; the package exists so the layout matches DESIGN.md.
"""

__all__: list[str] = []
