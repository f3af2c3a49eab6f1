"""Installed from its wheel, not from this checkout, the package finds its migrations and migrates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "src" / "traceability" / "migrations"
# What the wheel needs to build: pyproject.toml names README.md (readme) and LICENSE (license-files).
BUILD_INPUTS = ("src/", "pyproject.toml", "README.md", "LICENSE")

MIGRATE = """
import json, sys
from sqlalchemy import inspect
import traceability
from traceability.store.database import MIGRATIONS, make_engine, migrate
from traceability.store.models import Base

url = "sqlite:///" + sys.argv[1]
migrate(url)
engine = make_engine(url)
print(json.dumps({
    "package": traceability.__file__,
    "migrations": str(MIGRATIONS),
    "tables": sorted(inspect(engine).get_table_names()),
    "models": sorted(Base.metadata.tables),
}))
"""


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def copy_build_inputs(target: Path) -> None:
    """Copy what a clone holds (tracked, or new and not ignored), not build/ or egg-info left in the checkout.

    Building in the checkout itself would leave build/ behind, and setuptools reuses build/lib: a module
    deleted since would still be shipped.
    """
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in listed.split("\0"):
        source = ROOT / name
        if name.startswith(BUILD_INPUTS) and source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_the_installed_wheel_migrates_a_fresh_database_from_its_own_migrations(tmp_path: Path) -> None:
    tree, dist, site = tmp_path / "tree", tmp_path / "dist", tmp_path / "site"
    copy_build_inputs(tree)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    # No build isolation and no index: the build uses this venv's setuptools (a dev dependency), offline.
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(tree)]
    run(*pip, *build, cwd=tmp_path)
    (wheel,) = dist.glob("traceability-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "traceability/" + p.relative_to(MIGRATIONS.parent).as_posix()
        for p in MIGRATIONS.rglob("*")
        if p.is_file() and p.suffix in {".py", ".mako"} and "__pycache__" not in p.parts
    }
    assert "traceability/migrations/env.py" in shipped
    assert "traceability/migrations/script.py.mako" in shipped
    assert any(n.startswith("traceability/migrations/versions/") for n in shipped)
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    run(*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=tmp_path)
    # PYTHONPATH comes before site-packages, where this venv's editable install points at src/.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env |= {"PYTHONPATH": str(site), "TRACE_VAR_DIR": str(tmp_path / "var")}
    database = tmp_path / "fresh.db"
    result = json.loads(run(sys.executable, "-c", MIGRATE, str(database), cwd=tmp_path, env=env))

    assert Path(result["package"]).is_relative_to(site), f"imported {result['package']}, not the wheel's copy"
    assert Path(result["migrations"]) == site / "traceability" / "migrations"
    assert set(result["models"]) <= set(result["tables"])
    assert "alembic_version" in result["tables"]
