"""The worker process around the Faust app: quiet on any output, and a bounded shutdown."""

from __future__ import annotations

import gc
import os
import signal
import threading
from typing import Any

import faust
import structlog
from faust.worker import Worker

__all__ = ["FORCED_EXIT_CODE", "StreamWorker"]

log = structlog.get_logger(__name__)

#: Exit status of a worker that had to be stopped by its shutdown deadline.
FORCED_EXIT_CODE = 3


class StreamWorker(Worker):
    """Faust's worker, without its spinner and with a deadline on shutdown.

    Faust's progress spinner writes terminal escape codes even into log files, and it sets
    the root logger to DEBUG so that every ``log.debug`` in Faust, aiokafka and asyncio
    builds a record; it is switched off. After SIGTERM/SIGINT the worker stops cleanly if
    it can, and exits anyway after ``shutdown_timeout_s`` (status
    :data:`FORCED_EXIT_CODE`) if an agent is stuck: nothing it had not acknowledged is
    lost, the next owner of its partitions processes it again.
    """

    def __init__(self, app: faust.App, *, shutdown_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.spinner = None
        self.shutdown_timeout_s = shutdown_timeout_s
        self._deadline: threading.Timer | None = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        # Everything alive now (modules, the app, recovered tables) lives as long as the
        # process: frozen, full collections stop re-scanning it, which blocked the event
        # loop for ~160 ms each under load.
        gc.collect()
        gc.freeze()
        log.info("gc_frozen", objects=gc.get_freeze_count())

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self._deadline is None:
            self._deadline = threading.Timer(self.shutdown_timeout_s, self._force_exit)
            # A daemon thread: it fires even while the event loop is blocked, and does not
            # keep a cleanly stopped process alive.
            self._deadline.daemon = True
            self._deadline.start()
            log.warning("shutdown_started", signal=signal.name, deadline_s=self.shutdown_timeout_s)
        super()._schedule_shutdown(signal)

    def _force_exit(self) -> None:
        log.error("shutdown_forced", after_s=self.shutdown_timeout_s)
        os._exit(FORCED_EXIT_CODE)
