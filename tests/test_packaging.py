"""The wheel is self-contained: installed into an empty venv, with no checkout in
reach, ``evidence --help``, ``init`` and ``demo`` work and find their data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    wheels = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("evidence-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    install = subprocess.run(
        [str(env_dir / "bin" / "pip"), "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return env_dir / "bin" / "evidence"


def _run(exe: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "EVIDENCE_CONFIG"}}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_help_init_and_demo_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    helped = _run(installed, tmp_path, "--help")
    assert helped.returncode == 0
    assert "verify" in helped.stdout

    inited = _run(installed, tmp_path, "init", "--dir", "site")
    assert inited.returncode == 0, inited.stderr
    assert (tmp_path / "site" / "config.toml").is_file()
    assert (tmp_path / "site" / "var" / "signing-key.pem").stat().st_mode & 0o777 == 0o600

    demo = _run(installed, tmp_path, "demo", "--workdir", "demo", "--json")
    assert demo.returncode == 0, demo.stderr
    assert '"sample_data": true' in demo.stdout

    doctor = _run(installed, tmp_path, "--config", "demo/config.toml", "doctor")
    assert "ok   native: C modules for Merkle leaf hashing and canonical walk" in doctor.stdout


def test_a_machine_without_a_compiler_still_gets_a_wheel(tmp_path: Path) -> None:
    """The native modules are optional: when they cannot be compiled, the wheel is
    built without them (their Python twins then run: test_linetree, test_canonical)."""
    source = tmp_path / "source"  # a copy with no compiled module or build folder in it
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "var", "node_modules", "*.so", "*.egg-info", "__pycache__"
        ),
    )
    env = {**os.environ, "CC": "false"}
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("evidence-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "evidence/domain/merkle.py" in names
    assert not [name for name in names if name.endswith(".so")]
