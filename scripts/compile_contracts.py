"""Compile contracts/TraceRegistry.sol and write the committed artifact the application loads.

.venv/bin/python scripts/compile_contracts.py          # (re)write the artifact
.venv/bin/python scripts/compile_contracts.py --check  # exit 1 if the artifact is stale
"""

from __future__ import annotations

import argparse
import sys

from traceability.chain.artifacts import artifact_path
from traceability.chain.compile import compile_registry, dump_artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed artifact is fresh")
    args = parser.parse_args(argv)

    text = dump_artifact(compile_registry())
    path = artifact_path("TraceRegistry")
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if args.check:
        if current != text:
            print(f"{path} is stale: run `make compile-contracts`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if current == text:
        print(f"{path} unchanged")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
