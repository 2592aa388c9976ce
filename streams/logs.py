"""Structured logging: key=value lines on a terminal, JSON lines otherwise (or when asked)."""

from __future__ import annotations

import logging
import os
import sys

import structlog

__all__ = ["configure_logging"]


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "INFO", json_logs: bool | None = None) -> None:
    """Route stdlib and structlog records through one renderer at ``level``."""
    if json_logs is None:
        json_logs = (
            os.environ.get("ANOMSTREAM_LOG_JSON", "") not in ("", "0") or not sys.stderr.isatty()
        )
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # Looked up at each use: whoever replaced sys.stderr since (a test runner, a
        # daemoniser) gets the records, and a closed stream is never written to.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=max(lvl, logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # kafka-python warns about Faust's group-assignment metadata, which it cannot decode,
    # whenever we describe a group: expected, and not the operator's business.
    logging.getLogger("kafka").setLevel(logging.ERROR)
