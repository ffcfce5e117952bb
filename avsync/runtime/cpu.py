"""What CPU this is, in the terms that decide int8 accuracy and speed.

Why it matters: onnxruntime's int8 matrix products multiply unsigned 8-bit activations by
signed 8-bit weights (U8S8). CPUs with VNNI (AVX-512 VNNI, AVX-VNNI) or AMX sum those products
in 32 bits; AVX2 without VNNI sums pairs in saturating 16-bit registers (`vpmaddubsw`), so
full-range 8-bit weights silently clip there. The same model directory is then accurate on one
machine and degraded on another. `avsync.runtime.precision` chooses graphs from this, and every
benchmark result records it (`CpuInfo.to_json`), so a figure always says which CPU made it.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

# the instruction sets that decide int8's accuracy and speed here (names as /proc/cpuinfo spells
# them): amx_int8 and the VNNI flags add 32-bit accumulating int8 dot products
FLAGS_OF_INTEREST: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni",
                                      "amx_tile", "amx_int8", "asimddp")
VNNI_FLAGS: frozenset[str] = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@dataclass(frozen=True)
class CpuInfo:
    """model: the vendor's name for the CPU; machine: `uname -m`; flags: those of
    FLAGS_OF_INTEREST the CPU has; onnxruntime: its version (None when not installed)."""

    model: str
    machine: str
    flags: frozenset[str]
    onnxruntime: str | None = None

    @property
    def x86_64(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64")

    @property
    def vnni(self) -> bool:
        """int8 products accumulate in 32 bits (no U8S8 saturation)."""
        return bool(self.flags & VNNI_FLAGS)

    @property
    def kind(self) -> str:
        """The CPU class benchmark ratios may be compared within."""
        if not self.x86_64:
            return self.machine.lower() or "unknown"
        if "amx_int8" in self.flags:
            return "x86-64 AMX"
        if "avx512_vnni" in self.flags:
            return "x86-64 AVX-512 VNNI"
        if "avx_vnni" in self.flags:
            return "x86-64 AVX-VNNI"
        if "avx512f" in self.flags:
            return "x86-64 AVX-512 (no VNNI)"
        if "avx2" in self.flags:
            return "x86-64 AVX2 (no VNNI)"
        return "x86-64 (no AVX2)"

    def to_json(self) -> dict:
        return {"model": self.model, "machine": self.machine, "kind": self.kind,
                "flags": {f: f in self.flags for f in FLAGS_OF_INTEREST},
                "onnxruntime": self.onnxruntime}

    @classmethod
    def from_json(cls, data: dict) -> CpuInfo:
        flags = frozenset(f for f, present in data.get("flags", {}).items() if present)
        return cls(data.get("model", "unknown"), data.get("machine", "unknown"), flags,
                   data.get("onnxruntime"))


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU (Linux: /proc/cpuinfo; elsewhere the platform module's name and no
    flags, which makes `auto` precision choose fp32)."""
    model, flags = platform.processor() or "unknown", frozenset[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model, flags = parse_cpuinfo(cpuinfo.read_text(errors="replace"), model)
    try:
        import onnxruntime

        version: str | None = onnxruntime.__version__
    except ImportError:
        version = None
    return CpuInfo(model, platform.machine(), flags, version)


def parse_cpuinfo(text: str, default_model: str = "unknown") -> tuple[str, frozenset[str]]:
    """(model name, flags of interest) from the first processor of a /proc/cpuinfo text."""
    model, flags = default_model, frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and model == default_model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split()) & frozenset(FLAGS_OF_INTEREST)
    return model, flags
