"""Counter-based random numbers: every value is a pure function of (seed, stream, record index).

The generator never carries random state from one record to the next, so any chunk of any
object can be produced on its own, in any order, with any chunk size, and a child record can
recompute an attribute of its parent (owner, creation time, price) without the parent being
in memory. That is what keeps generation streaming and byte-identical for a seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_53 = float(2**53)


def stream_key(seed: int, *names: str) -> np.uint64:
    """A 64-bit key for one named stream of one seed."""
    digest = hashlib.blake2b(f"{seed}|{'|'.join(names)}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def mix(key: np.uint64, index: np.ndarray) -> np.ndarray:
    """SplitMix64 of (key, index): 64 well-mixed bits per index."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * _GOLDEN + key
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


class Streams:
    """Named random streams of one seed and one object."""

    def __init__(self, seed: int, scope: str) -> None:
        self.seed = seed
        self.scope = scope
        self._keys: dict[str, np.uint64] = {}

    def key(self, name: str) -> np.uint64:
        """The key of a named stream (cached)."""
        found = self._keys.get(name)
        if found is None:
            found = self._keys[name] = stream_key(self.seed, self.scope, name)
        return found

    def bits(self, name: str, index: np.ndarray) -> np.ndarray:
        """Raw 64-bit values."""
        return mix(self.key(name), index)

    def uniform(self, name: str, index: np.ndarray) -> np.ndarray:
        """Floats in [0, 1)."""
        return (self.bits(name, index) >> np.uint64(11)).astype(np.float64) / _TWO_POW_53

    def integers(self, name: str, index: np.ndarray, low: int | np.ndarray, high: int | np.ndarray) -> np.ndarray:
        """Integers in [low, high) (bounds may be arrays)."""
        span = np.maximum(np.asarray(high, dtype=np.int64) - low, 1).astype(np.uint64)
        return (self.bits(name, index) % span).astype(np.int64) + low

    def chance(self, name: str, index: np.ndarray, probability: float) -> np.ndarray:
        """Booleans that are true with the given probability."""
        return self.uniform(name, index) < probability

    def normal(self, name: str, index: np.ndarray) -> np.ndarray:
        """Standard normal values (Box–Muller over two sub-streams)."""
        u1 = np.maximum(self.uniform(name + "#1", index), 1e-12)
        u2 = self.uniform(name + "#2", index)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def lognormal(self, name: str, index: np.ndarray, mu: float, sigma: float) -> np.ndarray:
        """Lognormal values, e.g. deal sizes."""
        return np.exp(mu + sigma * self.normal(name, index))

    def choice(self, name: str, index: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """Indices into ``weights``, drawn with those relative weights."""
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
        cumulative /= cumulative[-1]
        picked = np.searchsorted(cumulative, self.uniform(name, index), side="right")
        return np.minimum(picked, len(weights) - 1)
