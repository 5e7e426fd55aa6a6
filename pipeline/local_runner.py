"""Four changes to Beam 2.77's local portable runner (FnApiRunner with worker processes), applied by every run.

1. `lock_stream_writes`: a data-loss race in the stream that carries a stage's input to a worker.
2. `bound_worker_bundles`: a worker got its whole share of a grouped stage as one bundle whose input was one
   message, so its memory grew with the corpus (and a share over 2 GB would exceed gRPC's message limit).
   Grouped inputs are now cut into pieces at group boundaries and each worker runs its share as a sequence
   of bundles of at most `BUNDLE_BYTES` of input, as distributed runners do. Once a bundle fails, no worker
   starts another bundle of that stage; on Ctrl-C or SIGTERM the workers are killed rather than waited for
   (a stop on 2 workers took 9-19 s at 50 MB, the rest of each worker's share).
3. `stop_workers_together`: the worker processes are told to stop all at once, not one after another.
4. `cancel_embedded_jobs`: cancelling a job of the embedded job service (`--job_endpoint=embed`) ends it, and
   a stop inside `p.run()` finds the job it started (`jobs_started`).
The patches touch classes of the pinned Beam (setup.cfg); drop them when Beam fixes the runner. `patch` also applies
the SDK worker's fix (`pipeline.sdk_worker`) to in-process workers.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline import sdk_worker, worker_pool

BUNDLE_BYTES = 32 << 20  # input per bundle on a worker; a single larger group still goes whole


def lock_stream_writes() -> None:
    """Close a data-loss race in Beam 2.77's portable runner (FnApiRunner with worker processes, PortableRunner).

    The runner sends a stage's input to a worker through a stream that a timer thread flushes every second:
    the flush takes the buffer, waits for room in the gRPC send queue, then clears the buffer, discarding
    whatever the runner wrote into it meanwhile. Nothing fails; the worker just gets less input. Near dedup at
    300k documents on 2 workers lost 24% of its edges this way (docs/dedup.md). Writes now take the flush
    lock, so a flush sends all of them or none.
    """
    from apache_beam.runners.worker import data_plane

    stream = data_plane.TimeBasedBufferingClosableOutputStream
    if getattr(stream.write, "locked", False):
        return
    unlocked = stream.write

    def write(self, b: bytes, nested: bool = False) -> None:
        with self._flush_lock:
            unlocked(self, b, nested)

    write.locked = True
    stream.write = write


class _OnWorker:
    """A stage's bundle context whose bundles all go to one worker (BundleManager picks by a counter)."""

    def __init__(self, context: Any, handler: Any) -> None:
        self._context, self.worker_handlers = context, [handler]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def bounded_bundles(share: Mapping[str, list[bytes]], limit: int) -> list[dict[str, list[bytes]]]:
    """One worker's share of a stage (input name → encoded pieces) → bundles of at most `limit` bytes
    each (a larger piece alone); every bundle names every input, as the worker waits for each."""
    bundles: list[dict[str, list[bytes]]] = [{name: [] for name in share}]
    size = 0
    for name, pieces in share.items():
        for piece in pieces:
            if size and size + len(piece) > limit:
                bundles.append({name: [] for name in share})
                size = 0
            bundles[-1][name].append(piece)
            size += len(piece)
    return bundles


def _end_in_flight(handlers: Iterable[Any], exc: BaseException) -> None:
    """Kill the stage's workers and end the runner's waits on them, instead of waiting for their bundles."""
    worker_pool.kill_workers()
    _abort_waits(handlers, exc)


def _abort_waits(handlers: Iterable[Any], exc: BaseException) -> None:
    """End the runner's waits on these workers: a bundle's output stream (never closed by a worker killed before
    it connected) and its reply (all a bundle with no output waits for). Also how a cancelled embedded job ends
    (`cancel_embedded_jobs`)."""
    for handler in handlers:
        handler.data_conn._closed = True  # its readers give up within a second; Beam has no public way to say so
        abort = getattr(handler.control_conn, "abort", None)  # none in-process: it replies at once
        if abort is not None:
            abort(exc)


def bound_worker_bundles() -> None:
    """Run each worker's share of a stage as bundles of at most `BUNDLE_BYTES` of input (see module doc).

    A grouped input is partitioned into `workers x k` pieces by Beam's own round robin over keys (so piece
    `i + workers*j` goes to worker `i`, the worker it went to before), with `k` from the bytes appended to
    the group. Worker `i` then runs its pieces one bundle after another, while the other workers run theirs.
    """
    from apache_beam.metrics import monitoring_infos
    from apache_beam.portability.api import beam_fn_api_pb2
    from apache_beam.runners.portability.fn_api_runner import execution, fn_runner

    grouping = execution.GroupingBuffer
    if getattr(grouping.partition, "bounded", False):
        return
    append, extend, partition = grouping.append, grouping.extend, grouping.partition

    def counted_append(self, elements_data: bytes) -> None:
        append(self, elements_data)
        self.encoded_bytes = getattr(self, "encoded_bytes", 0) + len(elements_data)

    def counted_extend(self, other: Any) -> None:
        extend(self, other)
        self.encoded_bytes = getattr(self, "encoded_bytes", 0) + getattr(other, "encoded_bytes", 0)

    def pieces(self, n: int) -> list[list[bytes]]:
        k = max(1, math.ceil(getattr(self, "encoded_bytes", 0) / (n * BUNDLE_BYTES)))
        parts = partition(self, n * k)  # cached by Beam on the first call, whatever n is later
        return [list(itertools.chain.from_iterable(parts[i::n])) for i in range(n)]

    def process_bundle(self, inputs, expected_outputs, fired_timers, expected_output_timers, dry_run=False):
        n = self._num_workers
        shares: list[dict[str, list[bytes]]] = [{} for _ in range(n)]
        for name, buffer in inputs.items():
            for i, part in enumerate(buffer.partition(n)):
                shares[i][name] = part
        handlers = self.bundle_context_manager.worker_handlers
        failed = threading.Event()

        def run_share(i: int) -> list[Any]:
            context = _OnWorker(self.bundle_context_manager, handlers[i % len(handlers)])
            done = []
            for j, bundle in enumerate(bounded_bundles(shares[i], BUNDLE_BYTES)):
                if failed.is_set():  # the stage fails anyway: start no more of it
                    break
                manager = fn_runner.BundleManager(context, self._progress_frequency,
                                                  cache_token_generator=self._cache_token_generator)
                timers = fired_timers if i == 0 and j == 0 else {}  # Beam fires timers on one worker too
                try:
                    done.append(manager.process_bundle(bundle, expected_outputs, timers, expected_output_timers,
                                                       dry_run))
                except BaseException:
                    failed.set()
                    raise
            return done

        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(run_share, i) for i in range(n)]
            try:
                results = [r for future in futures for r in future.result()]
            except BaseException as exc:
                failed.set()
                if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM
                    _end_in_flight(handlers, exc)
                raise
        merged = beam_fn_api_pb2.InstructionResponse(
            process_bundle=beam_fn_api_pb2.ProcessBundleResponse(monitoring_infos=monitoring_infos.consolidate(
                itertools.chain.from_iterable(r.process_bundle.monitoring_infos for r, _ in results))),
            error=next((r.error for r, _ in results if r.error), ""))
        return merged, [s for _, splits in results for s in splits]

    pieces.bounded = True
    grouping.append, grouping.extend, grouping.partition = counted_append, counted_extend, pieces
    fn_runner.ParallelBundleManager.process_bundle = process_bundle


def stop_workers_together() -> None:
    """At the end of a run Beam stops the worker processes one after another, each stop waiting for its
    process to exit (~0.17 s each here). Every worker is now told to stop first, so they exit together."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    manager = worker_handlers.WorkerHandlerManager
    if getattr(manager.close_all, "together", False):
        return
    close_all = manager.close_all

    def close_all_together(self) -> None:
        for handlers in self._cached_handlers.values():
            for handler in set(handlers):
                if isinstance(handler, worker_handlers.GrpcWorkerHandler):
                    handler.control_conn.close()  # sends the worker its stop; Beam's close repeats it as a no-op
        close_all(self)

    close_all_together.together = True
    manager.close_all = close_all_together


# a thread running a pipeline on an FnApiRunner → that run's WorkerHandlerManager (`cancel_embedded_jobs`)
_RUNS: weakref.WeakValueDictionary[threading.Thread, Any] = weakref.WeakValueDictionary()
_STARTING = threading.local()  # .results: the embedded jobs this thread starts in a `jobs_started` block
CANCEL_POLL_SECONDS = 0.2
# how long a cancel waits for an embedded job's runner thread to end: an aborted wait ends within a second or
# two; under runner.CANCEL_SECONDS, so that the stopped driver says why
CANCEL_END_SECONDS = 5


class JobNotEnded(RuntimeError):
    """A cancelled embedded job whose runner thread runs on: a step running in that thread (as an
    `embedded_python` environment runs them) cannot be interrupted."""


@contextlib.contextmanager
def jobs_started() -> Iterator[list[Any]]:
    """The results of the embedded jobs this thread starts in the block, each from before it starts: `p.run()`
    returns a job's result only after starting it, so a stop in between left the job running with nothing to
    cancel it by (`runner.run`)."""
    _STARTING.results = started = []
    try:
        yield started
    finally:
        _STARTING.results = None


def cancel_embedded_jobs() -> None:
    """Make a cancel end a job of Beam's embedded job service (`--job_endpoint=embed`, the PortableRunner's
    in-process job service). Beam's `BeamJob.cancel` only marks the job cancelled (a TODO in Beam 2.77): its
    runner thread, which the interpreter waited for at exit, ran the job to its end, so a stopped driver said
    "interrupted" at once and lived on for the rest of the job, whose steps wrote on into the staging folder
    it had removed and whose failure at exit printed tracebacks. The cancel now ends the runner's waits on its
    workers as a stop does on the local runner (`_abort_waits`), again until the runner thread has ended (a
    bundle may start between two of them), and the job stays cancelled. Beam's job read CANCELLED at once, so a
    caller polling it took it for ended while its steps still ran: it reads CANCELLING until its runner has
    ended, and a runner ended by the cancel is cancelled, not failed (Beam relayed that "failure" to the driver
    as an error with a traceback). It kills no worker process: the ones `worker_pool.kill_workers` knows are a
    local run's (an embedded job starts none of them), maybe another run in this process. A step already
    running in a LOOPBACK worker's thread cannot be ended; that thread ends with the process. Nor can one running
    in the runner thread itself: the cancel gives up after CANCEL_END_SECONDS (`JobNotEnded`, the job still
    CANCELLING), and that thread, a daemon now, ends with the process too. Beam 2.77's is not one (the process
    waited at exit for the step), though Beam means the job to be: `BeamJob.__init__` still sets `self.daemon =
    True`, left from when it was a `threading.Thread`."""
    from apache_beam.portability.api import beam_job_api_pb2
    from apache_beam.runners.portability import local_job_service, portable_runner
    from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
    from apache_beam.runners.runner import PipelineState

    job, manager = local_job_service.BeamJob, worker_handlers.WorkerHandlerManager
    if getattr(job.cancel, "ends_the_job", False):
        return
    init, invoke, run_job = manager.__init__, job._invoke_runner, local_job_service.LocalJobServicer.Run

    def registered_init(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _RUNS[threading.current_thread()] = self

    def cancellable_invoke(self) -> Any:
        try:
            return invoke(self)
        except Exception:
            if not getattr(self, "cancel_requested", False):
                raise
            return fn_runner.RunnerResult(PipelineState.CANCELLED, {})  # the job's end is read from it

    def recorded_run(self, request: Any, context: Any = None, timeout: Any = None) -> Any:
        started = getattr(_STARTING, "results", None)
        if started is not None:  # Beam's job id is the preparation id
            started.append(portable_runner.PipelineResult(self, request.preparation_id, None, None))
        return run_job(self, request, context, timeout)

    def daemon_run(self) -> None:  # Beam's `run`, its thread a daemon
        self.set_state(beam_job_api_pb2.JobState.STARTING)
        self._run_thread = threading.Thread(target=self._run_job, daemon=True)
        self._run_thread.start()

    def ending_cancel(self) -> None:
        if self.is_terminal_state(self.state):  # a finished job stays as it ended
            return
        self.cancel_requested = True
        self.set_state(beam_job_api_pb2.JobState.CANCELLING)
        runner = getattr(self, "_run_thread", None)  # none when the job never started
        stop = RuntimeError(f"job {self._job_id} cancelled")
        deadline = time.monotonic() + CANCEL_END_SECONDS
        while runner is not None and runner.is_alive():
            if time.monotonic() > deadline:
                raise JobNotEnded(f"a step in its runner thread did not return within {CANCEL_END_SECONDS:g} s")
            run = _RUNS.get(runner)
            if run is not None:
                _abort_waits({h for hs in list(run._cached_handlers.values()) for h in hs}, stop)
            runner.join(CANCEL_POLL_SECONDS)
        self.set_state(beam_job_api_pb2.JobState.CANCELLED)  # also one never started or ended on its own meanwhile

    ending_cancel.ends_the_job = True
    manager.__init__, job._invoke_runner, job.cancel = registered_init, cancellable_invoke, ending_cancel
    job.run, local_job_service.LocalJobServicer.Run = daemon_run, recorded_run


def patch() -> None:
    lock_stream_writes()
    bound_worker_bundles()
    stop_workers_together()
    cancel_embedded_jobs()
    sdk_worker.release_output_buffers()  # for in-process workers; worker processes load it as a plugin
