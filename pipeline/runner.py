"""Choosing and starting a Beam runner: in-process by default, anything else passed through to Beam.

`--workers N` asks Beam's portable in-process runner for N worker processes; `--runner DaskRunner` starts a
local `dask.distributed` cluster of N processes unless `--dask_client_address` or `--dask_scheduler_file` names a
running scheduler.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.resources import resource_hints_from_options

from pipeline import beam_startup, local_runner, sdk_worker, worker_pool
from pipeline.errors import UserError, raise_if_stopped
from trainer_bridge.cliargs import MAX_WORKERS

DEFAULT_RUNNER = "FnApiRunner"
DASK_ALIASES = {"DaskRunner", "dask"}
DIRECT = {DEFAULT_RUNNER, "DirectRunner"}  # the local runners --workers N starts worker processes for
# runners whose run() executes the whole pipeline here; the others' run() submits the job elsewhere
IN_PROCESS = DIRECT | {"SwitchingDirectRunner", "BundleBasedDirectRunner"}
CANCEL_SECONDS = 30  # how long a stopped driver waits for its submitted job to accept a cancel


def _runner_object(name: str):
    if name == DEFAULT_RUNNER:
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo

        # the local runner gives its worker processes no pipeline options: pass them the plugin
        info = beam_provision_api_pb2.ProvisionInfo(retrieval_token="unused-retrieval-token")
        info.pipeline_options.update({"beam_plugins": [sdk_worker.PLUGIN]})
        return FnApiRunner(provision_info=ExtendedProvisionInfo(info))
    if name in DASK_ALIASES:
        from apache_beam.runners.dask.dask_runner import DaskRunner

        return DaskRunner()
    from apache_beam.runners.runner import create_runner

    try:  # DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, PortableRunner, a class's dotted path...
        return create_runner(name)
    except (ValueError, ImportError) as exc:
        raise UserError(f"--runner {name}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


@contextlib.contextmanager
def new_pipeline(beam_runner: Any, options: PipelineOptions, runner: str | None) -> Iterator[beam.Pipeline]:
    """A pipeline for the block; the options a runner validates up front (Dataflow: project, region,
    temp_location) are one line naming what is missing. Beam makes a `beam-pipeline-temp*` folder for every
    Pipeline and removes it only at the end of run(): a graph that failed to build (a config error), a stop
    before the run or a graph never run left it in the user's temp folder for good. It goes as the block
    ends, so after the run and any cancel of its job in the block."""
    try:
        resource_hints_from_options(options)  # Beam parses them after making the folder: a bad one left it
        p = beam.Pipeline(runner=beam_runner, options=options)
    except ValueError as exc:
        raise UserError(f"--runner {runner or DEFAULT_RUNNER}: {_one_line(exc)}") from None
    try:
        yield p
    finally:
        shutil.rmtree(p.local_tempdir, ignore_errors=True)


def run(p: beam.Pipeline, runner: str | None) -> PipelineResult:
    """Run `p` and wait for it. With a runner that submits the job elsewhere, run() only starts it: a failure
    there (no --job_endpoint, a job-server jar that cannot be fetched, missing Dataflow options) is the set-up,
    one line; the job's own failures keep their traceback. A stop inside `p.run()` after it started the job
    cancels an embedded job (`local_runner.jobs_started`); a job submitted elsewhere (Dataflow, a job service)
    is known to the driver only by the result `p.run()` had not returned yet, so that one runs on."""
    name = runner or DEFAULT_RUNNER
    with local_runner.jobs_started() as started:
        try:
            result = p.run()
        except BaseException as exc:
            for job in started:  # an embedded job p.run() started but did not return
                _cancel(job, name)
            if name in IN_PROCESS or not isinstance(exc, Exception):  # the job itself failed here, or a stop
                raise
            detail = ("no job service answered within --job_server_timeout seconds (Beam's default: 300)"
                      if type(exc).__name__ == "FutureTimeoutError" else _one_line(exc))  # grpc's, message-less
            raise UserError(f"--runner {name} could not start the job: {detail}") from None
    try:
        result.wait_until_finish()
        raise_if_stopped()  # a stop Beam swallowed in its wait: the job may still run
    except BaseException:  # Ctrl-C, SIGTERM, or the wait itself failing
        if name not in IN_PROCESS:
            _cancel(result, name)
        raise
    return result


def _cancel(result: PipelineResult, name: str) -> None:
    """A driver stopped while it waits cancels its job: Dataflow or a job service would run it on for hours, writing
    into a staging folder the driver is about to remove, and Beam leaves that to the user. One line if it cannot
    (nor within CANCEL_SECONDS: a job service that does not answer must not hold the stop). A job of the embedded
    job service runs in this process: one it cannot end ends with it (`local_runner.JobNotEnded`)."""
    failed: list[Exception] = []

    def cancel() -> None:
        try:
            if not PipelineState.is_terminal(result.state):
                result.cancel()
        except Exception as exc:
            failed.append(exc)

    worker = threading.Thread(target=cancel, name="jcorpus-cancel", daemon=True)
    worker.start()
    worker.join(CANCEL_SECONDS)
    why = f"no answer within {CANCEL_SECONDS:g} s" if worker.is_alive() else _one_line(failed[0]) if failed else None
    if why:
        where = "it ends with this process" if failed and isinstance(failed[0], local_runner.JobNotEnded) \
            else "cancel it there"
        print(f"jcorpus: the {name} job could not be cancelled ({why}): {where}", file=sys.stderr)


def _joins_running_dask(flags: Sequence[str]) -> bool:
    """A scheduler address or scheduler file names a running Dask cluster (the file wins over an address)."""
    return any(f.startswith(("--dask_client_address", "--dask_scheduler_file")) for f in flags)


def workers_local(runner: str | None, beam_runner: object, extra: Sequence[str]) -> bool:
    """Whether the run's workers end with this process: its own threads or worker processes (they stop once its
    gRPC ends), a Dask cluster it started (distributed's workers exit when their parent does), or a portable
    job run by an embedded job service. Any other runner (Dataflow, Flink, Spark, Prism, a running Dask
    scheduler, a job endpoint) runs the job elsewhere, which writes on when this process is killed; the
    stale staging clean-up must not take its pid's end for the job's (staging.py)."""
    name = runner or DEFAULT_RUNNER
    if name in IN_PROCESS:
        return True
    if name in DASK_ALIASES:  # a cluster curate started, unless the flags name a running one
        return not _joins_running_dask(extra)
    from apache_beam.runners.portability.portable_runner import PortableRunner

    return isinstance(beam_runner, PortableRunner) and \
        PipelineOptions(list(extra)).view_as(PortableOptions).job_endpoint == "embed"


# glibc settings for the worker processes: 2 arenas instead of one per thread (gRPC, bundle processing), and
# buffers over 1 MB (data-plane messages, spill reads) in their own mappings, returned when freed
WORKER_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


@contextlib.contextmanager
def _worker_malloc() -> Iterator[None]:
    """Worker processes (Beam's and Dask's) inherit this environment. With glibc's defaults, memory a worker
    freed stayed resident: at 100k documents on 2 workers the largest worker peaked at 866 MB, 657 MB with
    2 arenas, 620 MB with both settings, and the run was 6% faster (docs/dedup.md). A user's own setting
    wins; the environment is restored after the run."""
    added = [k for k in WORKER_MALLOC if k not in os.environ]
    os.environ.update({k: WORKER_MALLOC[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextlib.contextmanager
def pipeline_options(runner: str | None, workers: int, extra: Sequence[str]) -> Iterator[tuple[object, PipelineOptions]]:
    """(runner, options) for one run; a local Dask cluster lives as long as the context."""
    name = runner or DEFAULT_RUNNER
    flags = [*extra, f"--beam_plugin={sdk_worker.PLUGIN}"]
    kwargs = {}
    if name in DIRECT and workers > 1:  # the user's own direct-runner flags win
        kwargs = {k: v for k, v in (("direct_num_workers", workers), ("direct_running_mode", "multi_processing"))
                  if not any(f.startswith(f"--{k}") for f in flags)}
    local_runner.patch()
    beam_startup.patch()  # before the graph is built: every step asks
    beam_runner = _runner_object(name)  # first: importing a runner registers its options (Dask's, Flink's...)
    options = PipelineOptions(flags=flags, **kwargs)
    _refuse_unknown_options(options)
    direct = options.view_as(DirectOptions)
    if not 0 <= direct.direct_num_workers <= MAX_WORKERS:  # -1 was an IndexError deep in Beam
        raise UserError(f"--direct_num_workers {direct.direct_num_workers}: expected an integer in [0, {MAX_WORKERS}] "
                        "(0: one per CPU)")
    with _worker_malloc(), contextlib.ExitStack() as stack:
        if name in DIRECT and direct.direct_running_mode == "multi_processing":
            stack.enter_context(worker_pool.forked_workers(direct.direct_num_workers))
        cluster = None
        if name in DASK_ALIASES and not _joins_running_dask(flags):
            from dask.distributed import LocalCluster

            logging.getLogger("distributed").setLevel(logging.WARNING)  # 30-40 INFO lines a run: start, stop
            import dask

            # the workers' profiler holds task frames from another thread, and resiliparse objects freed there
            # print "unsendable" tracebacks (extract.py); its dashboard is on an unprinted port anyway
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
            flags.append(f"--dask_client_address={cluster.scheduler_address}")
            options = PipelineOptions(flags=flags, **kwargs)
        try:
            yield beam_runner, options
        finally:
            if cluster is not None:
                _close_client()
                _close_cluster(cluster)


def _refuse_unknown_options(options: PipelineOptions) -> None:
    """Beam drops an option no runner defines with a log line nobody sees, so `--dirct_num_workers 2` ran on one
    worker; nothing in jcorpus reads options of its own, so an unknown one is a mistake."""
    quiet = logging.getLogger("apache_beam.options.pipeline_options")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "Discarding unparseable args" warning
    try:
        with contextlib.redirect_stderr(io.StringIO()) as said:  # argparse's usage block: 128 lines of options
            unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
    except SystemExit:  # a known option with a bad value (--direct_num_workers=abc)
        lines = said.getvalue().strip().splitlines() or ["a Beam option was refused"]
        raise UserError(lines[-1].split(" error: ", 1)[-1]) from None
    finally:
        quiet.setLevel(level)
    if unknown:
        names = ", ".join(f"--{name}" for name in sorted(unknown))
        raise UserError(f"unknown Beam option{'s' if len(unknown) > 1 else ''} {names} (not defined by Beam or "
                        "by the runner; a typo?)")


def _close_cluster(cluster) -> None:
    """A worker retiring while the scheduler still writes to it is expected at shutdown, but Dask logs that
    closed stream at INFO with a full traceback (`distributed.batched`); seen in 2 of 6 test-suite runs."""
    batched = logging.getLogger("distributed.batched")
    level = batched.level
    batched.setLevel(logging.WARNING)
    try:
        cluster.close()
    finally:
        batched.setLevel(level)


def _close_client() -> None:
    """Beam's DaskRunner leaves its client open; closed after the cluster, it logs reconnect tracebacks."""
    from distributed import default_client

    with contextlib.suppress(ValueError):  # no client: the run failed before Beam made one
        default_client().close()
