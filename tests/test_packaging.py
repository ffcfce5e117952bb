"""The wheel installs one top-level package, `avsync` (issue 13): train/, export/ and serve/
of the layout become avsync.train, avsync.export and avsync.serve, so nothing the wheel
installs can shadow or be shadowed by a user's own `train`, `export` or `serve`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_holds_only_avsync_at_the_top(tmp_path: Path) -> None:
    leftover = ROOT / "build"  # setuptools builds in the source tree; leave no trace
    existed = leftover.exists()
    try:
        _check_wheel(tmp_path)
    finally:
        if not existed:
            shutil.rmtree(leftover, ignore_errors=True)


def _check_wheel(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("avsync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"avsync"}, sorted(top)
    for module in ("avsync/train/cli.py", "avsync/export/cli.py", "avsync/serve/server.py",
                   "avsync/serve/static/index.html", "avsync/train/configs/small.yaml",
                   "avsync/train/recipes/synth-open.sh", "avsync/media/models/LICENSE.mediapipe"):
        assert module in names, module
    packages = {str(Path(n).parent) for n in names if n.endswith(".py")}
    on_disk = {str(p.parent.relative_to(ROOT)) for d in ("avsync", "train", "export", "serve")
               for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts}
    installed = {p if p.startswith("avsync") else f"avsync/{p}" for p in on_disk}
    assert installed <= packages, f"folders with modules the wheel leaves out: {installed - packages}"
