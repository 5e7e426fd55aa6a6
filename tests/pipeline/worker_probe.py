"""A DoFn that reports, from inside a worker, how many bytes the output streams of the worker's idle bundle
processors still hold. It imports nothing from `pipeline`, so a worker process that unpickles it gets the SDK
worker fix only the way Beam loads plugins."""
from __future__ import annotations

import gc

import apache_beam as beam
from apache_beam.runners.worker import sdk_worker


def idle_output_bytes() -> int:
    held = 0
    for cache in (o for o in gc.get_objects() if isinstance(o, sdk_worker.BundleProcessorCache)):
        for processors in list(cache.cached_bundle_processors.values()):
            for processor in list(processors):
                for op in processor.ops.values():
                    if (stream := getattr(op, "output_stream", None)) is not None:
                        held += stream.size()
    return held


class IdleOutputBytes(beam.DoFn):
    """One reading per bundle."""

    def start_bundle(self) -> None:
        self.read = False

    def process(self, _):
        if not self.read:
            self.read = True
            yield idle_output_bytes()
