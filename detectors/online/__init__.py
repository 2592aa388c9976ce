"""Online detectors: learn one sample (or a micro-batch) at a time."""

from detectors.online.robust_zscore import RobustZScore

__all__ = ["RobustZScore"]
