"""The per-entity state a worker keeps in memory, bounded.

Anyone who can send new sensor ids can make a worker build new state, so the number of
live states is capped: past ``capacity`` the least recently used ones are dropped from
memory. Nothing is lost by that: every state is checkpointed to the agent's table after
each batch, and a dropped entity is restored from there when its next record arrives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator, MutableMapping
from typing import Generic, TypeVar

__all__ = ["LiveStates"]

K = TypeVar("K")
V = TypeVar("V")


class LiveStates(MutableMapping[K, V], Generic[K, V]):
    """A mapping that remembers use order and can be cut back to ``capacity`` entries.

    Reading or writing an entry makes it the most recently used; :meth:`evict` removes the
    least recently used entries beyond ``capacity`` (never one of ``keep``). Eviction is
    explicit so that the agent can do it after the batch's states are checkpointed.

    >>> live = LiveStates(capacity=2)
    >>> live["a"], live["b"], live["c"] = 1, 2, 3
    >>> _ = live["a"]            # "a" is now more recent than "b"
    >>> live.evict()
    ['b']
    >>> sorted(live)
    ['a', 'c']
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def peek_values(self) -> list[V]:
        """Every state, without making any of them more recently used (for metrics)."""
        return list(self._data.values())

    def evict(self, keep: Collection[K] = ()) -> list[K]:
        """Drop least recently used entries until at most ``capacity`` remain; their keys."""
        evicted: list[K] = []
        for key in list(self._data):
            if len(self._data) <= self.capacity:
                break
            if key not in keep:
                del self._data[key]
                evicted.append(key)
        return evicted
