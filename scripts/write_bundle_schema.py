"""Write docs/proof-bundle.schema.json from the ProofBundle model (tests prove the file is up to date)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from traceability.domain.bundle import bundle_json_schema  # noqa: E402

SCHEMA_FILE = ROOT / "docs" / "proof-bundle.schema.json"


def main() -> int:
    SCHEMA_FILE.write_text(json.dumps(bundle_json_schema(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {SCHEMA_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
