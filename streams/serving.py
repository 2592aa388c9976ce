"""Which trained model a worker serves, and switching it without a restart.

A worker serves the connection model given by ``connection_detector.model_path`` (fixed),
or else the registry's ``champion`` of ``connection_detector.registered_model``: loaded at
start-up, and loaded again whenever a ``promoted`` or ``rolled_back`` record for that
model arrives on ``model-events``. Every worker follows that topic with a consumer of its
own (no group: each one must see every event, not a share of them), starting at the end.

A model is loaded and checked (sha256 of every file) in a thread, then put in place with
one assignment; the agent reads it once per micro-batch, so the switch falls between
batches: no event is scored by a half-loaded model, none twice, none lost.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from retrain.served import ServedConnectionModel
from streams.settings import Settings

if TYPE_CHECKING:
    from retrain.registry import ModelRegistry
    from streams.app import Pipeline

__all__ = ["SWAP_EVENTS", "follow_model_events", "load_champion", "open_registry"]

log = structlog.get_logger(__name__)

#: ``model-events`` records after which the champion is loaded again.
SWAP_EVENTS = frozenset({"promoted", "rolled_back"})


def open_registry(settings: Settings) -> ModelRegistry:
    """The configured model registry (embedded SQLite store unless a server is set)."""
    from retrain.registry import ModelRegistry, PromotionRule

    reg = settings.registry
    return ModelRegistry.open(
        reg.tracking_uri,
        settings.state_dir,
        experiment=reg.experiment,
        rule=PromotionRule(reg.promotion_metric, reg.higher_is_better, reg.tolerance),
    )


def _registry_exists(settings: Settings) -> bool:
    # Opening an embedded store that does not exist yet creates it (MLflow migrations,
    # several seconds): a worker with nothing registered need not pay that.
    return bool(settings.registry.tracking_uri) or (
        Path(settings.state_dir) / "mlflow" / "mlflow.db"
    ).is_file()


def load_champion(settings: Settings, name: str) -> ServedConnectionModel | None:
    """The registry's champion of ``name`` as a served connection model; None if there is
    none (nothing registered, no champion yet)."""
    from retrain.registry import RegistryError

    if not _registry_exists(settings):
        return None
    registry = open_registry(settings)
    if name not in registry.models() or registry.champion(name) is None:
        return None  # nothing registered under that name (yet), or no champion
    try:
        return registry.load(name, loader=ServedConnectionModel.load)
    except RegistryError as exc:
        log.warning("champion_not_loaded", model=name, error=str(exc))
        return None


async def _swap(pipe: Pipeline, name: str, reason: str) -> None:
    try:
        model = await asyncio.to_thread(load_champion, pipe.settings, name)
    except Exception as exc:
        # The model serving now stays: a broken candidate must not take scoring down.
        log.error("model_swap_failed", model=name, reason=reason, error=repr(exc)[:1000])
        return
    before = pipe.served_connections.version if pipe.served_connections else None
    pipe.served_connections = model
    log.info("model_swapped", model=name, reason=reason, before=before,
             after=model.version if model else None)


async def follow_model_events(pipe: Pipeline) -> None:
    """Serve ``name``'s champion now, then follow ``model-events`` for as long as the
    worker runs (a no-op with a fixed ``model_path`` or no registered model name)."""
    from aiokafka import AIOKafkaConsumer

    settings = pipe.settings
    cd = settings.connection_detector
    name = cd.registered_model
    if cd.model_path is not None or not name:
        pipe.models_ready.set()
        return
    consumer = AIOKafkaConsumer(
        settings.topics.model_events,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        # Subscribed first, loaded second: a promotion in between is seen, not missed.
        await _swap(pipe, name, "start-up")
    finally:
        pipe.models_ready.set()
    try:
        async for message in consumer:
            event = _parse(message.value)
            if event.get("model") == name and event.get("event") in SWAP_EVENTS:
                await _swap(pipe, name, str(event["event"]))
    finally:
        await consumer.stop()


def _parse(value: bytes | None) -> dict[str, Any]:
    """A model event, or {} for anything else on the topic (never raises).

    >>> _parse(b'{"model": "connections", "event": "promoted"}')["event"]
    'promoted'
    >>> _parse(b"not json"), _parse(None), _parse(b"[1]")
    ({}, {}, {})
    """
    try:
        event = json.loads(value or b"")
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}
