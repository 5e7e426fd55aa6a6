"""A fix to Beam 2.77's SDK worker, applied in every worker process: Beam imports this module at worker
start-up (a Beam plugin, `--beam_plugin=pipeline.sdk_worker`, which `pipeline.runner` adds to every run),
and `local_runner.patch` applies it in the runner's own process for in-process workers.

A worker keeps the bundle processor of every stage it has run, for reuse, until it has been idle for a
minute. Each processor's output operations kept the stream of their last bundle after closing it, and with
it the stream's native buffer, as large as the bundle's largest flush (up to ~16 MB). Near dedup runs ~40
stages in a few minutes, so worker memory crept up stage by stage, more with a larger corpus: on 2 workers,
~5 MB per stage at 300k documents (docs/dedup.md). Drop it when Beam releases the stream itself.
"""
from __future__ import annotations

PLUGIN = __name__


def release_output_buffers() -> None:
    """Let an output operation drop its stream once the bundle has closed it; the next bundle sets a new one."""
    from apache_beam.runners.worker import bundle_processor

    operation = bundle_processor.DataOutputOperation
    if getattr(operation.finish, "releases", False):
        return
    finish = operation.finish

    def releasing_finish(self) -> None:
        finish(self)
        self.output_stream = None

    releasing_finish.releases = True
    operation.finish = releasing_finish


release_output_buffers()
