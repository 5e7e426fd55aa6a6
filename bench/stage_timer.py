"""Wall time of every stage the local runner executes, for one `jcorpus` command.

Wraps `FnApiRunner._execute_bundle` and prints, per fused stage, when it started (seconds since this
script began) and how long it ran, then the end of the run. It shows what a second worker does not
share (runner start-up, worker start, regroups in the driver, commit) next to the stages it does.

    .venv/bin/python bench/stage_timer.py curate --config CFG --out OUT --workers 2 --overwrite
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apache_beam.runners.portability.fn_api_runner import fn_runner  # noqa: E402

START = time.perf_counter()
_execute_bundle = fn_runner.FnApiRunner._execute_bundle


def _timed(self, runner_execution_context, bundle_context_manager, bundle_input):
    began = time.perf_counter()
    result = _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input)
    name = bundle_context_manager.stage.name
    print(f"{began - START:7.2f} {time.perf_counter() - began:6.2f}  {name[:120]}", file=sys.stderr)
    return result


def main() -> int:
    fn_runner.FnApiRunner._execute_bundle = _timed
    from pipeline.cli import main as jcorpus

    try:
        code = jcorpus(sys.argv[1:])
    finally:
        print(f"{time.perf_counter() - START:7.2f} end", file=sys.stderr)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
