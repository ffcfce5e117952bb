"""Precision: int8 only where it is exact and faster, whatever CPU the tests run on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avsync.errors import ConfigError, ModelLoadError
from avsync.runtime import load_model
from avsync.runtime.cpu import CpuInfo, cpu_info, parse_cpuinfo
from avsync.runtime.model_card import read_card
from avsync.runtime.precision import Int8Scheme, Precision, choose_precision

AVX2 = CpuInfo("Intel Xeon (Haswell)", "x86_64", frozenset({"avx2"}))
VNNI = CpuInfo("AMD EPYC", "x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}))
ARM = CpuInfo("Neoverse-N1", "aarch64", frozenset({"asimddp"}))
OLD = CpuInfo("Core 2", "x86_64", frozenset())
CPU = ("CPUExecutionProvider",)


def test_cpuinfo_is_parsed_for_the_flags_that_matter() -> None:
    text = ("processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu sse2 avx2 avx512f "
            "avx512_vnni amx_tile\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    model, flags = parse_cpuinfo(text)
    assert model == "AMD EPYC 9B14" and flags == {"avx2", "avx512f", "avx512_vnni", "amx_tile"}
    info = CpuInfo(model, "x86_64", flags, "1.0")
    assert info.kind == "x86-64 AVX-512 VNNI" and info.vnni
    assert CpuInfo.from_json(info.to_json()) == info
    assert AVX2.kind == "x86-64 AVX2 (no VNNI)" and not AVX2.vnni
    assert cpu_info().kind  # this machine, whichever kind it is


@pytest.mark.parametrize(("cpu", "scheme", "expected"), [
    (AVX2, Int8Scheme.U8S7, "int8"),   # 7-bit weights: exact, and faster with AVX2
    (VNNI, Int8Scheme.U8S7, "int8"),
    (AVX2, Int8Scheme.U8S8, "fp32"),   # 8-bit weights saturate without VNNI
    (VNNI, Int8Scheme.U8S8, "int8"),
    (AVX2, Int8Scheme.U8U8, "int8"),
    (ARM, Int8Scheme.U8S7, "fp32"),    # not measured faster there
    (OLD, Int8Scheme.U8S7, "fp32"),
    (VNNI, None, "fp32"),              # no int8 graphs
])
def test_auto_uses_int8_only_where_exact_and_faster(cpu: CpuInfo, scheme: Int8Scheme | None,
                                                    expected: str) -> None:
    choice = choose_precision("auto", scheme, CPU, cpu)
    assert choice.precision == expected and choice.reason.startswith("auto")


def test_explicit_precision_is_obeyed_and_a_bad_one_refused(caplog) -> None:
    assert choose_precision("fp32", Int8Scheme.U8S7, CPU, VNNI).precision is Precision.FP32
    assert choose_precision("int8", Int8Scheme.U8S8, CPU, AVX2).int8
    assert "saturate" in caplog.text  # obeyed, with a warning
    assert not choose_precision("auto", Int8Scheme.U8S7, ("CUDAExecutionProvider",), VNNI).int8
    with pytest.raises(ConfigError, match="fp32, int8, auto"):
        choose_precision("int4", Int8Scheme.U8S7, CPU, VNNI)


@pytest.fixture(scope="module")
def fp32_only_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The debug model without its int8 graphs (as `avsync export` without --int8 writes it)."""
    from avsync.export.exporter import write_card_everywhere

    out = tmp_path_factory.mktemp("fp32-only") / "model"
    shutil.copytree(model_dir, out)
    card = read_card(out)
    for path in out.glob("*.int8.onnx"):
        path.unlink()
    write_card_everywhere(out, card.replace(graphs={
        k: {f: v for f, v in g.items() if not f.startswith("int8_")}
        for k, g in card.graphs.items()}))
    return out


def test_loader_resolves_auto_for_this_cpu(model_dir: Path) -> None:
    model = load_model(model_dir, precision="auto")
    card = model.card
    expected = choose_precision("auto", Int8Scheme(min(card.int8_schemes)), CPU)
    assert model.precision == expected and model.int8 == expected.int8
    assert not load_model(model_dir).int8  # the API's default stays fp32


def test_int8_of_a_model_without_int8_graphs_says_what_to_do(fp32_only_dir: Path) -> None:
    assert not load_model(fp32_only_dir, precision="auto").int8
    with pytest.raises(ModelLoadError, match="--int8"):
        load_model(fp32_only_dir, precision="int8")
