"""Per-document steps before any grouping: decode and extract HTML, size cap, normalize, language gate.

Each step is timed into the document's `_timings`, summed by the sinks (see pipeline/beamutil.py for
why nothing is emitted from `finish_bundle`).
"""
from __future__ import annotations

import time
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.lang import LanguageGate
from filters.mojibake import halfwidth_signature_chars
from filters.normalize import Normalizer
from pipeline.beamutil import decided
from pipeline.config import CurateConfig
from pipeline.documents import TIMINGS_KEY, copy_doc, from_reader
from pipeline.progress import Progress
from pipeline.sources import SourceConfig, Unreadable, read_file


class ReadFiles(beam.DoFn):
    """(source index, path, size) → ("doc", document) and one ("stats", ...) per file; bad input becomes quarantine documents, never an exception."""

    def __init__(self, sources: tuple[SourceConfig, ...], total_bytes: int = 0) -> None:
        self.sources, self.total_bytes = sources, total_bytes

    def setup(self) -> None:
        self.progress = Progress("read", self.total_bytes)
        self.docs_counter = Metrics.counter("curate", "input_docs")
        self.bytes_counter = Metrics.counter("curate", "input_bytes")

    def teardown(self) -> None:
        self.progress.close()

    def process(self, item: tuple[int, str, int]):
        index, path, size = item
        src = self.sources[index]
        records, count, seconds = read_file(path, src), 0, 0.0
        while True:  # time the reader alone: downstream steps run inside `yield` when Beam fuses them
            start = time.perf_counter()
            try:
                record = next(records, None)
            except Exception as exc:  # a reader bug must still not lose the file: quarantine the rest
                record = Unreadable(f"{path}@reader", f"reader failed: {type(exc).__name__}: {exc}")
                records = iter(())
            seconds += time.perf_counter() - start
            if record is None:
                break
            count += 1
            if count % 1000 == 0:
                self.progress.update(docs=1000)
            yield "doc", from_reader(src, record)
        self.progress.update(docs=count % 1000, nbytes=size)
        self.docs_counter.inc(count)
        self.bytes_counter.inc(size)
        yield "stats", {
            "sources": {src.name: {"files": 1, "input_bytes": size, "input_docs": count}},
            "stages": {"read": {"seconds": seconds, "docs": count, "bytes": size}},
        }


class Prepare(beam.DoFn):
    """Decode/extract → size cap → normalize → language gate. Rejections set `reject_reason`, failures `error`."""

    def __init__(self, cfg: CurateConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.normalizer = Normalizer(self.cfg.normalize)
        self.gate = LanguageGate.from_config(self.cfg.language)

    @staticmethod
    def _timed(doc: dict[str, Any], stage: str, start: float) -> float:
        now = time.perf_counter()
        doc.setdefault(TIMINGS_KEY, {})[stage] = now - start
        return now

    def process(self, doc: dict[str, Any]):
        if not decided(doc):
            doc = copy_doc(doc)
            self._prepare(doc)
        yield doc

    def _prepare(self, doc: dict[str, Any]) -> None:
        cap = self.cfg.max_chars
        t = time.perf_counter()
        html = doc.pop("_html", None)
        if html is not None:
            if len(html) > 4 * cap:  # at most 4 bytes a character: surely over the cap once decoded
                doc["meta"]["html_bytes"] = len(html)
                doc["reject_reason"] = "too_long"
                return
            if not self._extract(doc, html):
                return
            t = self._timed(doc, "extract", t)
        if len(doc["text"]) > cap:
            doc["reject_reason"] = "too_long"
            return
        raw = doc["text"]
        text, fired = self.normalizer(raw)
        if fired.get("halfwidth_katakana") and (folded := halfwidth_signature_chars(raw)):
            doc["meta"]["mojibake_folded"] = folded  # the signature the fold erased, for the mojibake rule
        doc["text"] = text
        if fired:
            doc["meta"]["normalize"] = fired
        t = self._timed(doc, "normalize", t)
        if not text.strip():
            doc["reject_reason"] = "empty_text"
            return
        reason, stats = self.gate(text)
        doc["meta"]["lang"] = {k: round(v, 4) for k, v in stats.items()}
        self._timed(doc, "language", t)
        doc["reject_reason"] = reason

    def _extract(self, doc: dict[str, Any], html: bytes) -> bool:
        from pipeline.charset import CharsetError
        from pipeline.extract import page_to_text

        try:
            doc["text"], extracted = page_to_text(html, doc["meta"].get("http_content_type"), doc.get("url"))
        except CharsetError as exc:
            doc["error"] = f"charset: {exc}"
            return False
        except Exception as exc:  # an extractor crash on one page quarantines that page only
            doc["error"] = f"extract: {type(exc).__name__}: {exc}"
            return False
        doc["meta"].update(extracted)
        return True
