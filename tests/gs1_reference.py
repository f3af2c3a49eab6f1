"""GS1's reference CBV 2.0 hash tool (PyPI ``epcis-event-hash-generator``), run offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from epcis_event_hash_generator import hash_generator, json_to_py
from pyld import jsonld

from traceability.domain.epcis import GS1_EPCIS_CONTEXT

# The reference package ships the EPCIS 2.0.0 context under this name (see its file_document_loader.py, whose
# own loader trips a DeprecationWarning on Python 3.11, and warnings are errors here).
CACHED_CONTEXT = "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"


@contextmanager
def offline() -> Iterator[None]:
    """Serve the EPCIS context from the package; any other fetch fails the test."""
    context = json.loads((resources.files("epcis_event_hash_generator") / CACHED_CONTEXT).read_text("utf-8"))

    def loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        if url != GS1_EPCIS_CONTEXT:
            raise AssertionError(f"the reference tool tried to fetch {url}")
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": context,
        }

    previous = jsonld.get_document_loader()
    jsonld.set_document_loader(loader)
    try:
        yield
    finally:
        jsonld.set_document_loader(previous)


def reference_hashes(document_json: str) -> tuple[list[str], list[str]]:
    """(hashes, pre-hash strings) the reference tool computes for an EPCIS document as written."""
    json_to_py._namespaces.clear()  # module-level state that otherwise leaks between documents
    events = json_to_py.event_list_from_epcis_document_str(document_json)
    prehashes = hash_generator.derive_prehashes_from_events(events)
    return hash_generator.calculate_hashes_from_pre_hashes(prehashes), prehashes
