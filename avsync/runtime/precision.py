"""fp32 or int8 graphs: which a model runs, chosen by what is accurate and fast on this CPU.

int8 graphs are written by `avsync export --int8` in one of these schemes (model.json records
it per graph as `int8_scheme`; graphs exported before it was recorded are `u8s8`):

- `u8s7`: uint8 activations x int8 weights limited to [-64, 64] (7 bits). No pair of products
  can leave the 16-bit range of AVX2's `vpmaddubsw` (2 x 255 x 64 < 32767), so every x86-64
  kernel computes it exactly; the export default.
- `u8u8`: uint8 activations x uint8 weights; exact everywhere, slower on VNNI CPUs.
- `u8s8`: full-range int8 weights; exact only where int8 products accumulate in 32 bits
  (VNNI, AMX); on AVX2-only CPUs the sums saturate silently (log-probs 0.65 off on the
  debug model).

`auto` runs int8 only where it is both exact and measured faster than fp32: x86-64 CPUs with
AVX2 or better (bench/runtime.py: int8 1.18-1.25x fp32 on one stream), on the CPU execution
provider. Everything else runs fp32.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from avsync.errors import ConfigError
from avsync.runtime.cpu import CpuInfo, cpu_info

log = logging.getLogger(__name__)


class Precision(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"
    AUTO = "auto"

    @classmethod
    def parse(cls, value: str | Precision) -> Precision:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"precision {value!r}: choose one of "
                              f"{', '.join(p.value for p in cls)}") from None


class Int8Scheme(StrEnum):
    U8S7 = "u8s7"
    U8U8 = "u8u8"
    U8S8 = "u8s8"

    def exact_on(self, cpu: CpuInfo) -> bool:
        """Whether onnxruntime's kernels on `cpu` compute this scheme without saturation."""
        return self is not Int8Scheme.U8S8 or cpu.vnni or not cpu.x86_64


DEFAULT_INT8_SCHEME = Int8Scheme.U8S7
LEGACY_INT8_SCHEME = Int8Scheme.U8S8  # int8 graphs whose card does not name a scheme


@dataclass(frozen=True)
class PrecisionChoice:
    """The graphs a model runs (`fp32` or `int8`) and why, for logs and `ready` messages."""

    precision: Precision
    reason: str

    @property
    def int8(self) -> bool:
        return self.precision is Precision.INT8


def choose_precision(requested: str | Precision, int8_scheme: Int8Scheme | None,
                     providers: Sequence[str] = ("CPUExecutionProvider",),
                     cpu: CpuInfo | None = None) -> PrecisionChoice:
    """Resolve `requested` for a model whose int8 graphs use `int8_scheme` (None: it has
    none). An explicit `int8` is obeyed (with a warning where it is not exact); ModelLoadError
    for a missing int8 variant is the loader's."""
    wanted, cpu = Precision.parse(requested), cpu or cpu_info()
    if wanted is Precision.FP32:
        return PrecisionChoice(Precision.FP32, "fp32 requested")
    if wanted is Precision.INT8:
        if int8_scheme is not None and not int8_scheme.exact_on(cpu):
            log.warning("int8 graphs of scheme %s saturate on this CPU (%s, no VNNI): expect "
                        "lower accuracy; re-export with `avsync export --int8` (scheme %s) or "
                        "run --precision fp32", int8_scheme.value, cpu.kind,
                        DEFAULT_INT8_SCHEME.value)
        return PrecisionChoice(Precision.INT8, "int8 requested")
    return _auto(int8_scheme, providers, cpu)


def _auto(scheme: Int8Scheme | None, providers: Sequence[str], cpu: CpuInfo) -> PrecisionChoice:
    if scheme is None:
        return PrecisionChoice(Precision.FP32, "auto: the model has no int8 graphs")
    if providers and providers[0] != "CPUExecutionProvider":
        return PrecisionChoice(Precision.FP32, f"auto: int8 graphs are CPU kernels, running "
                                               f"on {providers[0]}")
    if not scheme.exact_on(cpu):
        return PrecisionChoice(Precision.FP32, f"auto: int8 scheme {scheme.value} saturates "
                                               f"on {cpu.kind}")
    if not (cpu.x86_64 and "avx2" in cpu.flags):
        return PrecisionChoice(Precision.FP32, f"auto: int8 is not measured faster on "
                                               f"{cpu.kind}")
    return PrecisionChoice(Precision.INT8, f"auto: int8 ({scheme.value}) is exact and faster "
                                           f"on {cpu.kind}")


def add_precision_argument(parser: argparse.ArgumentParser, default: Precision = Precision.AUTO
                           ) -> None:
    """`--precision {fp32,int8,auto}` (and `--int8`, its older spelling) on a command."""
    parser.add_argument("--precision", choices=[p.value for p in Precision], default=default.value,
                        help="graphs to run: fp32, int8 (`avsync export --int8`), or auto: int8 "
                             "where it is exact and faster on this CPU (x86-64 with AVX2 or "
                             f"better), else fp32 (default {default.value})")
    parser.add_argument("--int8", dest="precision", action="store_const", const="int8",
                        help="same as --precision int8")
