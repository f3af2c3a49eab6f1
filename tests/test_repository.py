"""The repository stands alone and says one thing about its licence.

A plain clone, with nothing beside it, must pass `make test`: so no file may point outside the checkout. The
licence is stated in four places (LICENSE, pyproject.toml, package.json, the contract's SPDX line) and they
must agree. The conformance data carries its sources and its upstream licence notices.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LICENCE = "Apache-2.0"
# Built, not written out, so that this file does not hold the string it looks for.
OUTSIDE = "/".join(["..", "shared"])
FOLDERS = ("epcis", "event-hash")


def repository_files() -> list[Path]:
    """Tracked files, plus new ones not yet added (but not ignored ones): what the next commit can hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    paths = {ROOT / name for name in listed.decode().split("\0") if name}
    return sorted(p for p in paths if p.is_file() and not p.is_symlink())


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:8000]  # git's own test


def test_no_file_refers_to_a_folder_beside_the_checkout() -> None:
    files = repository_files()
    assert ROOT / "pyproject.toml" in files and Path(__file__) in files
    offenders = []
    for path in files:
        data = path.read_bytes()
        if is_binary(data):
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if OUTSIDE in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "files refer to a folder outside the repository:\n" + "\n".join(offenders)


def test_every_statement_of_the_licence_agrees() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    first_line = (ROOT / "contracts" / "TraceRegistry.sol").read_text(encoding="utf-8").splitlines()[0]
    spdx = re.fullmatch(r"//\s*SPDX-License-Identifier:\s*(\S+)\s*", first_line)
    assert spdx is not None, f"TraceRegistry.sol must start with an SPDX line, not {first_line!r}"

    assert {
        "pyproject.toml": project["license"],
        "package.json": package["license"],
        "contracts/TraceRegistry.sol": spdx.group(1),
    } == dict.fromkeys(["pyproject.toml", "package.json", "contracts/TraceRegistry.sol"], LICENCE)
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a one-line notice


def test_the_conformance_data_names_its_sources_and_keeps_their_notices() -> None:
    conformance = ROOT / "tests" / "conformance"
    readme = (conformance / "README.md").read_text(encoding="utf-8")
    for source, commit in [("github.com/gs1/EPCIS", "2b888be"), ("epcis-event-hash-generator", "5d2f1c3")]:
        assert source in readme and commit in readme
    notices = {folder: (conformance / folder / "LICENSE").read_text(encoding="utf-8") for folder in FOLDERS}
    assert "MIT License" in notices["event-hash"] and "Permission is hereby granted" in notices["event-hash"]
    assert "GS1 IP Policy" in notices["epcis"]
