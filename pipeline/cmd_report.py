"""`jcorpus report OUT`: a self-contained HTML report of whatever stages ran under OUT."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write OUT/report.html from the stage outputs under OUT")
    p.add_argument("out", help="a curate output, or a demo folder holding curate/ tokenizer/ shards/ train/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.report import write_report

    out = Path(args.out)
    if not out.is_dir():
        raise UserError(f"{out} is not a folder")
    try:
        print(write_report(out))
    except OSError as exc:  # a stage file that is a folder, unreadable, or vanished while read
        raise UserError(f"{exc.filename or out}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # the report names the file where it can
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"{out}: cannot build the report from its stage outputs ({type(exc).__name__}: {first}); "
                        "are they jcorpus outputs of this version?") from None
    return 0
