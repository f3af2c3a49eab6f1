"""Import a packing house's file of events (``trace import FILE``): recorded in chunks, each all or nothing.

Two formats, told apart by content, not by the file's name:

* an EPCIS 2.0 ``EPCISDocument`` (JSON-LD, events in ``epcisBody.eventList``), as ``trace export epcis``
  writes it. It is read whole, so it is limited to ``MAX_DOCUMENT_BYTES``; a larger one goes as JSON lines or
  as several documents. An exported event carries its CBV 2.0 Event Hash ID as ``eventID``: the hash is
  recomputed and must match (the file was not changed since it was exported), and the event is recorded under
  a UUID derived from that ID (``uuid5``), so importing the same file again finds it already recorded;
* JSON lines: one domain event per line, the JSON ``services.events.parse_event`` reads, with ``actor``.
  Read line by line, so memory stays flat however long the file is.

Events are recorded ``batch`` at a time through ``services.events.record_events``, each chunk in a
transaction of its own. A chunk with a refused event is not stored and stops the import; the chunks before it
stay stored, and importing the same file again skips them (same ``event_id``, same content: ``created`` is
False) and goes on. ``prev`` in the file is not trusted: the service links every event to its lots' heads in
the ledger, so a file's hash links never decide where an event goes in a chain. Certifications and
revocations are refused: they carry an officer's signature and are recorded by ``services.certify``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from traceability.domain import codec
from traceability.domain.epcis import EPCIS_CONTEXT, from_epcis
from traceability.domain.events import Event
from traceability.domain.hashing import event_hash
from traceability.domain.ids import HASH_PREFIX
from traceability.errors import BatchRejected, InvalidEvent, InvalidInput, TraceabilityError
from traceability.services.events import parse_event, record_events
from traceability.services.identity import ensure_id_base
from traceability.store.database import transaction

DEFAULT_BATCH = 1000
MAX_BATCH = 5000
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""An EPCIS document is parsed whole (about 50,000 events in 64 MiB); JSON lines have no limit."""
MAX_LINE_CHARS = 1024 * 1024
"""One event per line: a line longer than this is not an event (its 500 readings fit in far less)."""
SIGNED_KINDS = ("certification", "revocation")
EXPORTED_ID_NAMESPACE = uuid.UUID("6f1d3c1e-5b0a-5d7e-9a43-2f4e8c7b9d10")
"""The ``uuid5`` namespace of event IDs derived from an exported event's Event Hash ID (fixed forever: a
re-import of the same export must find the events it recorded the first time)."""


class ImportFormat(StrEnum):
    EPCIS = "epcis"
    JSON_LINES = "json-lines"


@dataclass(frozen=True)
class Refusal:
    """A refused event, named where the operator finds it in the file: ``line 12`` or ``eventList[11]``."""

    where: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class _Item:
    """One event of the file, or why it could not be read as one (refused with its chunk, not malformed)."""

    where: str
    event: Event | None = None
    refusal: Refusal | None = None


@dataclass
class ImportReport:
    file: str
    format: ImportFormat
    read: int = 0
    recorded: int = 0
    already_present: int = 0
    seconds: float = 0.0
    refused: list[Refusal] = field(default_factory=list)
    stopped_at: str | None = None  # the refused chunk: "lines 1001-2000" or "eventList[1000]-[1999]"

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def stored(self) -> int:
        return self.recorded + self.already_present

    @property
    def events_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def message(self) -> str:
        """What happened, in the words an operator acts on."""
        done = (
            f"{self.read} events read, {self.recorded} recorded, {self.already_present} already present, "
            f"in {self.seconds:.2f}s ({self.events_per_s:.0f} events/s)"
        )
        if self.ok:
            return f"imported {self.file} ({self.format}): {done}"
        return (
            f"import of {self.file} stopped at {self.stopped_at}: {len(self.refused)} event(s) refused and "
            f"nothing of that chunk stored; the {self.stored} events before it are stored ({done}). "
            "Fix the file and run the same import again: events already stored are skipped."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": str(self.format),
            "ok": self.ok,
            "read": self.read,
            "recorded": self.recorded,
            "already_present": self.already_present,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "stopped_at": self.stopped_at,
            "refused": [r.to_json() for r in self.refused],
            "message": self.message(),
        }


def import_file(
    sessions: sessionmaker[Session], path: Path, *, id_base: str | None, batch: int = DEFAULT_BATCH
) -> ImportReport:
    """Record the file's events ``batch`` at a time, each chunk in its own transaction; stop at the first
    chunk with a refused event (``report.refused``). A file that cannot be read, is neither format or holds
    malformed JSON raises InvalidInput, naming the line, after the chunks before it were stored."""
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidInput(f"--batch must be 1 to {MAX_BATCH}, not {batch}")
    started = time.perf_counter()
    try:
        with path.open(encoding="utf-8-sig", newline=None) as f:
            fmt = _detect(f, path)
            report = ImportReport(str(path), fmt)
            items = _json_lines(f) if fmt is ImportFormat.JSON_LINES else _epcis_events(f, path)
            try:
                _record_chunks(sessions, items, report, id_base=id_base, batch=batch)
            except TraceabilityError as exc:
                if report.stored:
                    exc.message += (
                        f" ({report.stored} events before it are stored; run the same import again once "
                        "the file is fixed: they are skipped)"
                    )
                raise
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"cannot read {path}: not UTF-8 text ({exc.reason})", code="unreadable_file"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", code="unreadable_file") from None
    report.seconds = time.perf_counter() - started
    return report


def _record_chunks(
    sessions: sessionmaker[Session],
    items: Iterator[_Item],
    report: ImportReport,
    *,
    id_base: str | None,
    batch: int,
) -> None:
    chunk: list[_Item] = []
    for item in items:
        report.read += 1
        chunk.append(item)
        if len(chunk) == batch:
            if not _record_chunk(sessions, chunk, report, id_base=id_base):
                return
            chunk = []
    if chunk:
        _record_chunk(sessions, chunk, report, id_base=id_base)


def _record_chunk(
    sessions: sessionmaker[Session], chunk: list[_Item], report: ImportReport, *, id_base: str | None
) -> bool:
    """Record one chunk, all or nothing. False (and ``report.refused`` filled) if any event was refused."""
    report.refused = [item.refusal for item in chunk if item.refusal is not None]
    if not report.refused:
        events = [item.event for item in chunk if item.event is not None]
        try:
            with transaction(sessions) as session:
                results = record_events(session, events, id_base=ensure_id_base(session, id_base))
        except BatchRejected as exc:
            report.refused = [
                Refusal(chunk[item["index"]].where, str(item["code"]), str(item["message"]))
                for item in exc.items
            ]
        else:
            created = sum(r.created for r in results)
            report.recorded += created
            report.already_present += len(results) - created
            return True
    report.stopped_at = f"{chunk[0].where} to {chunk[-1].where}" if len(chunk) > 1 else chunk[0].where
    return False


# --- reading the file ---------------------------------------------------------------------------------------


def _detect(f: IO[str], path: Path) -> ImportFormat:
    """JSON lines if the first line is a JSON object by itself that is not an EPCIS document; an EPCIS
    document if the file starts with ``{`` otherwise (a document written over many lines)."""
    first = ""
    while not first.strip():
        first = f.readline(MAX_LINE_CHARS)
        if not first:
            raise InvalidInput(f"{path} is empty: no events to import", code="unknown_format")
    f.seek(0)
    if not first.lstrip().startswith("{"):
        raise InvalidInput(
            f"{path} is neither an EPCIS 2.0 document nor JSON lines (one event object per line): it does "
            f"not start with '{{'",
            code="unknown_format",
        )
    try:
        head = codec.loads_input(first)
    except ValueError:
        return ImportFormat.EPCIS  # an object spread over lines; a malformed one is refused when read
    if isinstance(head, Mapping) and head.get("type") == "EPCISDocument":
        return ImportFormat.EPCIS
    return ImportFormat.JSON_LINES


def _json_lines(f: IO[str]) -> Iterator[_Item]:
    for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_CHARS), ""), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        if not line.endswith("\n") and len(line) == MAX_LINE_CHARS:
            raise InvalidInput(f"{where} is longer than {MAX_LINE_CHARS} characters", code="malformed_file")
        try:
            data = codec.loads_input(line)
        except ValueError as exc:
            raise InvalidInput(f"{where} is not valid JSON: {exc}", code="malformed_file") from None
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where} is not a JSON object (one event per line)", code="malformed_file")
        yield _event_item(where, data, parse_event)


def _epcis_events(f: IO[str], path: Path) -> Iterator[_Item]:
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"{path}: an EPCIS document is read whole and may be at most {MAX_DOCUMENT_BYTES // 2**20} MiB; "
            "split it into several documents, or write the events as JSON lines",
            code="document_too_large",
        )
    try:
        document = codec.loads_input(f.read())
    except ValueError as exc:
        raise InvalidInput(
            f"{path} is not valid JSON (read as an EPCIS document, as its first line is not an event by "
            f"itself): {exc}",
            code="malformed_file",
        ) from None
    body = document.get("epcisBody") if isinstance(document, Mapping) else None
    events = body.get("eventList") if isinstance(body, Mapping) else None
    if (
        not isinstance(document, Mapping)
        or document.get("type") != "EPCISDocument"
        or not isinstance(events, list)
    ):
        raise InvalidInput(
            f"{path} is not an EPCIS 2.0 document with epcisBody.eventList, nor JSON lines",
            code="unknown_format",
        )
    context = document.get("@context", EPCIS_CONTEXT)
    del document, body  # the events alone are kept while they are recorded
    for index, raw in enumerate(events):
        where = f"eventList[{index}]"
        if not isinstance(raw, Mapping):
            yield _Item(where, refusal=Refusal(where, "invalid_event", "an event is a JSON object"))
            continue
        yield _epcis_item(where, raw, context)


def _epcis_item(where: str, raw: Mapping[str, Any], context: object) -> _Item:
    """An exported event (``eventID`` = its Event Hash ID) gets a UUID derived from that ID, after its hash is
    checked; one with its ``urn:uuid`` keeps it."""
    event_id = raw.get("eventID")
    if isinstance(event_id, str) and event_id.startswith(HASH_PREFIX):
        try:
            recomputed = event_hash(raw, context)
        except (ValueError, KeyError, TypeError) as exc:
            return _Item(where, refusal=Refusal(where, "invalid_event", f"cannot hash the event: {exc}"))
        if recomputed != event_id:
            return _Item(
                where,
                refusal=Refusal(
                    where,
                    "hash_mismatch",
                    f"the event hashes to {recomputed}, not its eventID {event_id}: it was changed after "
                    "export",
                ),
            )
        raw = {**raw, "eventID": f"urn:uuid:{uuid.uuid5(EXPORTED_ID_NAMESPACE, event_id)}"}
    return _event_item(where, raw, from_epcis)


def _event_item(where: str, data: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], Event]) -> _Item:
    """The event ``parse`` reads from ``data``, or its refusal (a signed kind, or an invalid event)."""
    kind = data.get("kind") if "kind" in data else str(data.get("tt:kind", "")).rpartition("#")[2]
    if kind in SIGNED_KINDS:
        return _Item(
            where,
            refusal=Refusal(
                where,
                "signed_event",
                f"a {kind} carries an officer's signature: it is recorded through certification, not "
                "imported",
            ),
        )
    try:
        return _Item(where, event=parse(data))
    except InvalidEvent as exc:
        return _Item(where, refusal=Refusal(where, exc.code, exc.message))
    except ValueError as exc:  # from_epcis: not a body this service builds (pydantic's errors included)
        return _Item(where, refusal=Refusal(where, "invalid_event", str(exc).splitlines()[0]))
