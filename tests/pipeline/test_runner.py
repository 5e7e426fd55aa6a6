"""The fixes to Beam's local runner and SDK worker: a stage's input reaches the workers whole, however the
timed flush falls, and in bundles of bounded size; idle stages hold no output buffers; a stopped driver cancels
its job, and a cancelled job of the embedded job service ends."""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.runner import PipelineState
from apache_beam.runners.worker import data_plane
from apache_beam.testing.util import assert_that, equal_to

from pipeline import errors, local_runner, worker_pool
from pipeline import runner as runner_module
from pipeline.local_runner import bounded_bundles, lock_stream_writes
from pipeline.runner import WORKER_MALLOC, new_pipeline, pipeline_options, run
from tests.conftest import ROOT, wiki_config
from tests.pipeline.worker_probe import IdleOutputBytes


def test_bytes_written_while_a_flush_waits_are_sent_not_cleared():
    """The race, made deterministic: a write lands while the timed flush waits for the send queue."""
    lock_stream_writes()
    sent: list[bytes] = []
    writers: list[threading.Thread] = []

    def slow_flush(data: bytes) -> None:  # the send queue is full: the runner's thread keeps writing
        sent.append(data)
        writer = threading.Thread(target=stream.write, args=(b"late",))
        writer.start()
        writer.join(0.2)
        writers.append(writer)

    stream = data_plane.TimeBasedBufferingClosableOutputStream(
        close_callback=sent.append, flush_callback=slow_flush, time_flush_threshold_ms=3_600_000)
    stream.write(b"early")
    stream.flush()
    writers[0].join()
    stream.close()
    assert b"".join(sent) == b"earlylate"


def _payload(i: int) -> tuple[int, bytes]:
    return i % 7, hashlib.sha256(str(i).encode()).digest() * 128


def test_materialized_input_reaches_two_workers_whole(monkeypatch):
    """Unlocked, this pipeline lost 25-50% of its elements in 4 of 5 runs (timed flush every 1 ms here
    instead of 1 s, so 80 MB suffice where curate needed 300k documents)."""
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1)
    n = 20_000
    with pipeline_options(None, 2, ()) as (runner, options), beam.Pipeline(runner=runner, options=options) as p:
        big = p | "Big" >> beam.Create(range(n)) | "Payload" >> beam.Map(_payload)
        small = p | "Small" >> beam.Create([(0, b"x")])
        count = (
            (big, small) | beam.Flatten() | beam.GroupByKey() | beam.FlatMap(lambda kv: kv[1])
            | beam.combiners.Count.Globally())
        assert_that(count, equal_to([n + 1]))


def test_bounded_bundles_pack_pieces_up_to_the_limit():
    share = {"main": [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 150], "side": [b"e" * 10]}
    bundles = bounded_bundles(share, 100)
    assert bundles == [{"main": [b"a" * 40, b"b" * 40], "side": []}, {"main": [b"c" * 40], "side": []},
                       {"main": [b"d" * 150], "side": []}, {"main": [], "side": [b"e" * 10]}]
    assert bounded_bundles({"main": []}, 100) == [{"main": []}]  # an empty share still runs (and closes)


class _BundleInput(beam.DoFn):
    """(key, values) → (bundle, (pid, key, bytes)): which bundle of which worker saw which group."""

    def start_bundle(self) -> None:
        self.bundle = uuid.uuid4().hex

    def process(self, kv):
        key, values = kv
        yield self.bundle, (os.getpid(), key, sum(map(len, values)))


def _check_bundles(bundles, keys: int, limit: int) -> None:
    groups = [g for _, gs in bundles for g in gs]
    assert sorted(k for _, k, _ in groups) == list(range(keys)), "every group exactly once"
    assert len({pid for pid, _, _ in groups}) == 2, "both workers ran bundles"
    sizes = [sum(b for _, _, b in gs) for _, gs in bundles]
    assert len(sizes) >= 8, f"{len(sizes)} bundles: the shares were not cut"
    assert max(sizes) <= limit, f"a bundle got {max(sizes)} bytes of values, over {limit}"


def test_grouped_input_runs_in_bounded_bundles_on_each_worker(monkeypatch):
    """Beam ran each worker's whole share of a grouped stage as one bundle (one message), so worker memory
    grew with the corpus; the shares are now cut at group boundaries into bundles of <= BUNDLE_BYTES."""
    limit = 256 << 10
    monkeypatch.setattr(local_runner, "BUNDLE_BYTES", limit)
    keys = 4_000  # 1 KB per group: ~4 MB, ~2 MB per worker -> >= 8 bundles each
    with pipeline_options(None, 2, ()) as (runner, options), beam.Pipeline(runner=runner, options=options) as p:
        bundles = (
            p | beam.Create(range(keys)) | beam.Map(lambda k: (k, bytes(1000)))
            | beam.GroupByKey() | beam.ParDo(_BundleInput()) | "ByBundle" >> beam.GroupByKey())
        assert_that(bundles | beam.combiners.ToList(), lambda got: _check_bundles(got[0], keys, limit))


def test_workers_run_with_the_malloc_settings_and_the_environment_is_restored(monkeypatch):
    for key in WORKER_MALLOC:
        monkeypatch.delenv(key, raising=False)
    with pipeline_options(None, 2, ()) as (runner, options), beam.Pipeline(runner=runner, options=options) as p:
        seen = p | beam.Create([0, 1]) | beam.Map(lambda _: {k: os.environ.get(k) for k in WORKER_MALLOC})
        assert_that(seen, equal_to([WORKER_MALLOC, WORKER_MALLOC]))
    assert not set(WORKER_MALLOC) & set(os.environ)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's setting wins
    with pipeline_options(None, 1, ()):
        assert os.environ["MALLOC_ARENA_MAX"] == "4"
        assert os.environ["MALLOC_MMAP_THRESHOLD_"] == WORKER_MALLOC["MALLOC_MMAP_THRESHOLD_"]
    assert os.environ["MALLOC_ARENA_MAX"] == "4" and "MALLOC_MMAP_THRESHOLD_" not in os.environ


@pytest.mark.parametrize("runner_name, workers", [(None, 1), (None, 2), ("DirectRunner", 2)])
def test_idle_stages_hold_no_output_buffers_on_a_worker(runner_name, workers):
    """A worker keeps every stage's bundle processor for reuse; its output streams kept their native buffers
    after closing, so memory crept up stage by stage (docs/dedup.md). The earlier stage here writes ~2 MB.
    Beam's DirectRunner builds its own local runner, which passes the workers the `--beam_plugin` flag."""
    with (pipeline_options(runner_name, workers, ()) as (runner, options),
          beam.Pipeline(runner=runner, options=options) as p):
        held = (p | beam.Create(range(2_000)) | beam.Map(lambda k: (k % 64, bytes(1000))) | beam.GroupByKey()
                | beam.ParDo(IdleOutputBytes()) | beam.CombineGlobally(max))
        assert_that(held, equal_to([0]))


def test_every_worker_is_told_to_stop_before_any_stop_waits(monkeypatch):
    """Beam stopped the workers one by one, each stop waiting for its process to exit; now they exit together."""
    handlers, states = [], []
    cls = worker_handlers.SubprocessSdkWorkerHandler
    start, stop = cls.start_worker, cls.stop_worker

    def recording_start(self):
        handlers.append(self)
        start(self)

    def recording_stop(self):
        states.append([h.control_conn._state for h in handlers])
        stop(self)

    monkeypatch.setattr(cls, "start_worker", recording_start)
    monkeypatch.setattr(cls, "stop_worker", recording_stop)
    with pipeline_options(None, 2, ()) as (runner, options), beam.Pipeline(runner=runner, options=options) as p:
        assert_that(p | beam.Create(range(10)) | beam.Map(lambda x: x + 1), equal_to(list(range(1, 11))))
    done = worker_handlers.BeamFnControlServicer.DONE_STATE
    assert len(handlers) == 2 and states == [[done, done], [done, done]]


class _SubmittedJob:
    """A PipelineResult whose wait is stopped (Ctrl-C), as Dataflow's polling wait is."""

    def __init__(self, cancel_error: Exception | None = None, state: str = "RUNNING", stop: bool = True,
                 hang: threading.Event | None = None) -> None:
        self.cancel_error, self.state, self.stop, self.hang, self.cancelled = cancel_error, state, stop, hang, False

    def run(self) -> _SubmittedJob:  # the pipeline: submits itself
        return self

    def wait_until_finish(self) -> None:
        if self.stop:
            raise KeyboardInterrupt

    def cancel(self) -> None:
        self.cancelled = True
        if self.hang:
            self.hang.wait()
        if self.cancel_error:
            raise self.cancel_error


@pytest.mark.parametrize("runner", ["DataflowRunner", "PortableRunner", "DaskRunner"])
def test_a_driver_stopped_while_it_waits_cancels_the_job_it_submitted(runner, capsys):
    """Beam leaves a submitted job running when its driver is stopped; it wrote on into the staging folder the
    driver removed. If the cancel fails, the user is told in one line and the stop goes on."""
    job = _SubmittedJob()
    with pytest.raises(KeyboardInterrupt):
        run(job, runner)
    assert job.cancelled and capsys.readouterr().err == ""
    job = _SubmittedJob(OSError("Failed to get the Dataflow job id."))
    with pytest.raises(KeyboardInterrupt):
        run(job, runner)
    assert capsys.readouterr().err == (f"jcorpus: the {runner} job could not be cancelled (Failed to get the "
                                       "Dataflow job id.): cancel it there\n")


def test_a_cancel_that_does_not_answer_does_not_hold_the_stop(monkeypatch, capsys):
    monkeypatch.setattr(runner_module, "CANCEL_SECONDS", 0.2)
    release = threading.Event()
    job = _SubmittedJob(hang=release)
    with pytest.raises(KeyboardInterrupt):
        run(job, "PortableRunner")
    release.set()
    assert job.cancelled and "could not be cancelled (no answer within 0.2 s)" in capsys.readouterr().err


def test_a_stop_beam_swallowed_still_cancels_and_a_finished_job_is_left_alone(monkeypatch):
    monkeypatch.setattr(errors, "STOPS", [KeyboardInterrupt])
    job = _SubmittedJob(stop=False)  # the wait returned; only the signal handler saw the stop
    with pytest.raises(KeyboardInterrupt):
        run(job, "DataflowRunner")
    assert job.cancelled
    job = _SubmittedJob(state="DONE")
    with pytest.raises(KeyboardInterrupt):
        run(job, "DataflowRunner")
    assert not job.cancelled


def test_an_in_process_run_has_no_job_to_cancel():
    job = _SubmittedJob()
    with pytest.raises(KeyboardInterrupt):
        run(job, "FnApiRunner")
    assert not job.cancelled


EMBEDDED = ["--job_endpoint=embed", "--environment_type=LOOPBACK"]  # the job runs in this process
IN_RUNNER = ["--job_endpoint=embed", "--environment_type=beam:env:embedded_python:v1"]  # steps in the runner thread
_IN_STEP, _RELEASE = threading.Event(), threading.Event()


def _held(x: int) -> int:
    _IN_STEP.set()
    _RELEASE.wait(120)
    return x


@contextlib.contextmanager
def _held_pipeline(flags: list[str] = EMBEDDED) -> Iterator[beam.Pipeline]:
    """A pipeline for the embedded job service whose one step, once started, is held there until the block ends."""
    _IN_STEP.clear()
    _RELEASE.clear()
    try:
        with pipeline_options("PortableRunner", 1, flags) as (runner, options), \
                new_pipeline(runner, options, "PortableRunner") as p:
            _ = p | beam.Create([1]) | beam.Map(_held)
            yield p
    finally:
        _RELEASE.set()


@contextlib.contextmanager
def _held_embedded_job(flags: list[str] = EMBEDDED) -> Iterator[Any]:
    """The result of a job of the embedded job service whose one step has started and is held there."""
    with _held_pipeline(flags) as p:
        result = p.run()
        assert _IN_STEP.wait(120), "the job never reached its step"
        yield result


def test_a_cancelled_embedded_job_ends_and_stays_cancelled() -> None:
    """Beam's embedded job service only marked a cancelled job so: its runner thread ran on (for as long as the
    step here is held). The cancel now ends that thread, though the step itself still runs, and the runner's end
    is the cancel's: the job never reads FAILED (Beam relayed that to the driver as an error)."""
    with _held_embedded_job() as result:
        result.cancel()
        job = result._job_service._jobs[result._job_id]
        assert not job._run_thread.is_alive() and result.state == PipelineState.CANCELLED
        assert [beam_job_api_pb2.JobState.Enum.Name(state) for state, _ in job._state_history] == [
            "STOPPED", "STARTING", "RUNNING", "CANCELLING", "CANCELLED"]


def test_a_cancelled_embedded_job_reads_cancelling_until_its_runner_has_ended() -> None:
    """Beam's cancel marked the job CANCELLED at once, so a caller polling it saw an ended job whose steps still
    ran. Here the held step runs in the job's runner thread, which the cancel cannot end until it returns."""
    with _held_embedded_job(IN_RUNNER) as result:
        job = result._job_service._jobs[result._job_id]
        cancel = threading.Thread(target=result.cancel)
        cancel.start()
        while result.state == PipelineState.RUNNING:
            time.sleep(0.01)
        time.sleep(0.3)
        assert job._run_thread.is_alive() and result.state == PipelineState.CANCELLING
        _RELEASE.set()
        cancel.join(60)
        assert not job._run_thread.is_alive() and result.state == PipelineState.CANCELLED


def test_a_stop_before_run_returns_cancels_the_embedded_job_it_started(monkeypatch, capsys) -> None:
    """p.run() starts the job, then makes and returns its result: a stop in between (here, as the result is
    returned) cancelled nothing, as there was no result to cancel, and the job ran on."""
    from apache_beam.runners.portability.portable_runner import PortableRunner

    submit, results = PortableRunner.run_portable_pipeline, []

    def stopped_as_it_returns(self: PortableRunner, pipeline: Any, options: Any) -> Any:
        results.append(submit(self, pipeline, options))
        raise KeyboardInterrupt

    monkeypatch.setattr(PortableRunner, "run_portable_pipeline", stopped_as_it_returns)
    with _held_pipeline() as p:
        with pytest.raises(KeyboardInterrupt):
            run(p, "PortableRunner")
        job = results[0]._job_service._jobs[results[0]._job_id]
        assert not job._run_thread.is_alive() and results[0].state == PipelineState.CANCELLED
    assert capsys.readouterr().err == ""


def test_a_cancelled_embedded_job_kills_no_worker_process_of_another_run(monkeypatch) -> None:
    """The worker processes `worker_pool.kill_workers` ends are those of a local run with --workers N (an embedded
    job starts none of them): the cancel killed those of a run beside the job in the same process."""
    other_runs_worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    monkeypatch.setattr(worker_pool._SUBPROCESS, "started", [other_runs_worker])
    try:
        with _held_embedded_job() as result:
            result.cancel()
            assert result.state == PipelineState.CANCELLED
        with pytest.raises(subprocess.TimeoutExpired):  # a SIGKILL ends it at once
            other_runs_worker.wait(1)
    finally:
        other_runs_worker.kill()
        other_runs_worker.wait()


# `jcorpus` whose read step, run by the embedded job's in-process (LOOPBACK) worker, says it started and sleeps
EMBEDDED_STOP = """
import pathlib, sys, time
from pipeline import cli
cli._quiet_beam_noise()  # before Beam's import warns, as `jcorpus` does
from pipeline import prepare

STARTED = pathlib.Path(sys.argv.pop(1))

def read_slowly(path, source):
    STARTED.touch()
    time.sleep(600)
    yield from ()

prepare.read_file = read_slowly
sys.exit(cli.console())
"""


STUCK_IN_RUNNER = ("jcorpus: the PortableRunner job could not be cancelled (a step in its runner thread did not "
                   f"return within {local_runner.CANCEL_END_SECONDS:g} s): it ends with this process")


@pytest.mark.parametrize(("sig", "code", "said", "flags"), [(signal.SIGINT, 130, "interrupted", EMBEDDED),
                                                            (signal.SIGTERM, 143, "terminated", EMBEDDED),
                                                            (signal.SIGINT, 130, "interrupted", IN_RUNNER)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-step-in-runner"])
def test_a_stop_cancels_a_job_of_the_embedded_job_service(sig, code, said, flags, tmp_path: Path) -> None:
    """Beam's embedded job service only marked a cancelled job so and ran it on, and the interpreter waits for
    its runner thread at exit: a stop said its line at once but the process lived until the job ended (here
    a 10-minute step), with the job's tracebacks, and the job wrote on into the removed staging folder. The
    job now ends with the stop: one line, the usual exit code, within seconds, nothing left in OUT. A step
    running in the runner thread (IN_RUNNER) cannot be interrupted: the driver gave up after 30 s saying "cancel
    it there" (there is none) and the process then waited for the step; now it says so and exits."""
    started, out = tmp_path / "in-step", tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-c", EMBEDDED_STOP, str(started), "curate", "--config",
                            str(wiki_config(tmp_path)), "--out", str(out), "--runner", "PortableRunner",
                            *flags], cwd=ROOT, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the job never reached its step"
        stopped = time.monotonic()
        run.send_signal(sig)
        _, err = run.communicate(timeout=20)  # about a second (the runner's reads of its worker poll each second)
    finally:
        if run.poll() is None:  # the old code: alive until the step's 10 minutes are over
            run.kill()
            run.communicate()
    assert time.monotonic() - stopped < 10
    said = [*([STUCK_IN_RUNNER] if flags is IN_RUNNER else []), f"jcorpus curate: {said}"]
    assert run.returncode == code and err.strip().splitlines() == said, err[-3000:]
    assert not list(out.glob("_temporary-*")) and not (out / "_SUCCESS").exists()


@pytest.mark.parametrize("flag", ["--dask_scheduler_file=/nowhere/scheduler.json", "--dask_client_address=tcp://x:1"])
def test_a_named_dask_scheduler_starts_no_local_cluster(flag, monkeypatch):
    """Dask's client takes a scheduler file over any address: a local cluster started beside one sat unused."""
    import dask.distributed
    from apache_beam.runners.dask.dask_runner import DaskOptions

    def refuse(*args, **kwargs):
        raise AssertionError("a local cluster was started")

    monkeypatch.setattr(dask.distributed, "LocalCluster", refuse)
    with pipeline_options("DaskRunner", 2, [flag]) as (_, options):
        address = options.view_as(DaskOptions).address
    assert address == (flag.split("=")[1] if "address" in flag else None)
