"""Detectors by name, so configuration can say ``detector = "robust_zscore"``."""

from __future__ import annotations

from typing import Any

from detectors.base import Detector

__all__ = ["available", "create", "get", "register"]

_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator / function: add ``cls`` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} already taken by {_REGISTRY[cls.name]}")
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Detector]:
    """The detector class registered as ``name``.

    >>> get("robust_zscore").__name__
    'RobustZScore'
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(available())}") from None


def create(name: str, **params: Any) -> Detector:
    """A new detector of the class registered as ``name``."""
    return get(name)(**params)


def available() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)
