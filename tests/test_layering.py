"""The layers of ../shared/DESIGN.md, section 3, checked on every import statement (also the
ones inside functions). Why a test: since train/, export/ and serve/ install as
avsync.train, avsync.export and avsync.serve, an inversion is no longer visible from the
top-level name alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"avsync": "avsync", "train": "avsync.train", "export": "avsync.export",
           "serve": "avsync.serve"}
TORCH = ("torch", "torchaudio", "lightning")
# layer -> module prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "avsync.media": (*TORCH, "avsync.data", "avsync.models", "avsync.runtime", "avsync.train",
                     "avsync.export", "avsync.serve"),
    "avsync.text": (*TORCH, "avsync.data", "avsync.models", "avsync.runtime", "avsync.media",
                    "avsync.train", "avsync.export", "avsync.serve"),
    "avsync.runtime": (*TORCH, "avsync.data", "avsync.models", "avsync.train", "avsync.export",
                       "avsync.serve"),
    # avsync.data may run models through avsync.runtime (`data audit`): runtime is the lower layer
    "avsync.data": ("avsync.train", "avsync.export", "avsync.serve"),
    "avsync.models": ("avsync.data", "avsync.runtime", "avsync.train", "avsync.export",
                      "avsync.serve"),
    "avsync.train": ("avsync.export", "avsync.serve"),
    "avsync.export": ("avsync.serve",),
    "avsync.serve": (*TORCH, "avsync.data", "avsync.models", "avsync.train", "avsync.export"),
}
# torch-free corners of a forbidden layer: the demo renders its sample with the synthetic corpus
ALLOWED: dict[str, tuple[str, ...]] = {"avsync.serve": ("avsync.data.synth",)}


def _module_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [FOLDERS[relative.parts[0]], *relative.parts[1:]]
    return ".".join(p for p in parts if p != "__init__")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> str | None:
    return next((layer for layer in FORBIDDEN
                 if module == layer or module.startswith(layer + ".")), None)


def test_no_layer_imports_what_design_forbids() -> None:
    problems = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            layer = _layer(_module_of(path))
            if layer is None:
                continue
            for line, name in _imports(path):
                if _within(name, FORBIDDEN[layer]) and not _within(name, ALLOWED.get(layer, ())):
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {name}")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import torch.nn as nn\nfrom avsync.serve import server\n"
                      "def f():\n    from avsync.train.cli import main\n")
    assert [name for _, name in _imports(sample)] == ["torch.nn", "avsync.serve",
                                                      "avsync.train.cli"]
