"""What ships and what may import what.

The product's wheel holds `hub`, `connectors` and `schemas` only: no simulator, no demo, no
private-broker helper (they live in `sims/`, installed in the checkout's venv only). The
Docker image copies the same three packages. The import contracts in `pyproject.toml`
(`make check` runs `lint-imports`) pass on this tree and fail on a deliberate forbidden import.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "connectors", "schemas", "sims")
SIM_MARKERS = ("sims/", "simulator", "loopback", "demo.py", "rabbitmq_node", "soap_xml")


def _copy_tree(target: Path) -> None:
    """The packages and the project file, without caches, into `target`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)


def test_the_wheel_ships_the_product_and_no_simulator(tmp_path: Path) -> None:
    source = tmp_path / "src"
    _copy_tree(source)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("hub/runtime.py") for n in names)
    assert any(n.startswith("connectors/national_portal/client.py") for n in names)
    assert any(n.startswith("hub/migrations/") for n in names)
    # Each migration ships with its PostgreSQL twin (store.backend: postgresql).
    migrations = [n for n in names if "/migrations/" in n and n.endswith(".sql")]
    sqlite = {n.rsplit("/", 1)[1] for n in migrations if "/postgresql/" not in n}
    assert {n.rsplit("/", 1)[1] for n in migrations if "/postgresql/" in n} == sqlite
    shipped_sims = [n for n in names if any(m in n for m in SIM_MARKERS)]
    assert shipped_sims == []


def test_the_image_copies_the_product_packages_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)", dockerfile, re.M)
    assert set(copied) == {"pyproject.toml", "hub", "connectors", "schemas", "mappings"}


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, before the checkout the venv points at.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _copy_tree(tree)
    for name in ("tests", "bench"):  # named by the contracts: they must exist
        (tree / name).mkdir()
        (tree / name / "__init__.py").write_text("")
    kept = _lint_imports(tree)
    assert kept.returncode == 0, kept.stdout[-3000:]

    cli = tree / "hub" / "cli.py"
    cli.write_text(cli.read_text(encoding="utf-8") + "\nimport sims.demo  # forbidden\n")
    broken = _lint_imports(tree)
    assert broken.returncode != 0
    assert "The product never imports the simulators" in broken.stdout
    assert "BROKEN" in broken.stdout
    assert "hub.cli -> sims.demo" in broken.stdout
