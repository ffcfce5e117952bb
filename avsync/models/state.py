"""Packing many streaming caches into one float32 tensor per encoder.

sherpa-onnx's lesson (BACKGROUND.md): per-layer caches make dozens of ONNX inputs. Each encoder
here keeps one `(B, size)` float32 state, batch on axis 0, whose named slices are described by
a `StateLayout`; export writes the layout into the model card, and a runtime that only carries
the tensor from one step to the next never needs to know it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

COUNTER: str = "counter"


@dataclass(frozen=True)
class StateSlice:
    """One named cache inside the packed state: columns [offset, offset + size) of each row."""

    name: str
    shape: tuple[int, ...]  # per stream, without the batch axis
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "offset": self.offset}


class StateLayout:
    """Ordered named slices of a packed `(B, size)` float32 state tensor.

    All-zero is the state of a fresh stream for every slice: caches start as the zero padding
    that `forward` uses before a sequence, and the `counter` slice (valid past steps, clamped
    to the left context) starts at 0.
    """

    def __init__(self, specs: Iterable[tuple[str, tuple[int, ...]]]) -> None:
        slices, offset = [], 0
        for name, shape in specs:
            slices.append(StateSlice(name, tuple(int(s) for s in shape), offset))
            offset += slices[-1].size
        names = [s.name for s in slices]
        assert len(set(names)) == len(names), f"duplicate state names in {names}"
        self.slices: tuple[StateSlice, ...] = tuple(slices)
        self.size: int = offset

    def initial(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """The state of `batch` fresh streams: (batch, size) float32 zeros."""
        return torch.zeros(batch, self.size, dtype=torch.float32, device=device)

    def unpack(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, size) -> {name: (B, *shape)}; plain slicing and reshapes, so it exports to ONNX."""
        return {s.name: state[:, s.offset:s.offset + s.size].reshape((-1, *s.shape))
                for s in self.slices}

    def pack(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: (B, *shape)} -> (B, size) float32, in layout order."""
        missing = [s.name for s in self.slices if s.name not in parts]
        assert not missing, f"state parts missing: {missing}"
        return torch.cat([parts[s.name].reshape(parts[s.name].shape[0], s.size).float()
                          for s in self.slices], dim=1)

    def to_list(self) -> list[dict[str, object]]:
        """JSON-ready description for the model card: name, per-stream shape, offset."""
        return [s.to_dict() for s in self.slices]


def prefixed(prefix: str, specs: Iterable[tuple[str, tuple[int, ...]]]
             ) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.{name}", shape) for name, shape in specs]


def take(parts: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The parts under `prefix.`, with the prefix removed."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in parts.items() if k.startswith(prefix + ".")}


def put(parts: dict[str, torch.Tensor], prefix: str, new: dict[str, torch.Tensor]) -> None:
    parts.update({f"{prefix}.{k}": v for k, v in new.items()})


def tail(x: torch.Tensor, n: int, dim: int = 1) -> torch.Tensor:
    """The last `n` entries of `x` along `dim` (n >= 1); export-friendly (no negative -0)."""
    assert n >= 1
    return x.narrow(dim, x.shape[dim] - n, n)
