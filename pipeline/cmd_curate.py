"""`jcorpus curate`: raw sources → curated / rejected / quarantine Parquet and stats.json."""
from __future__ import annotations

import argparse
import logging
from typing import Any

from trainer_bridge.cliargs import MAX_WORKERS, integer, output_folder

BEAM_OPTIONS = "Unknown options (--project, --region, --temp_location, ...) go to Beam."  # curate's and pack's


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="curate raw sources into Parquet (Apache Beam)",
                       description=BEAM_OPTIONS)
    p.add_argument("--config", required=True, help="YAML config (see README: Config reference)")
    p.add_argument("--out", required=True, type=output_folder, help="output folder or URL (gs://, s3://, ...)")
    p.add_argument("--runner", default=None,
                   help="FnApiRunner (default, in-process), DirectRunner, DaskRunner, PortableRunner, "
                        "DataflowRunner, FlinkRunner, SparkRunner")
    p.add_argument("--workers", type=integer(1, MAX_WORKERS), default=1, help="worker processes for the local runners (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run, accepts_extra=True)


def format_table(stats: dict[str, Any]) -> str:
    """The per-stage funnel and per-source outcome, as printed at the end of a run."""
    lines = [f"{'stage':<14}{'docs left':>10}{'removed':>10}"]
    lines += [f"{row['stage']:<14}{row['docs']:>10}{row['removed']:>10}" for row in stats["funnel"]]
    lines.append("")
    lines.append(f"{'source':<22}{'input':>8}{'kept':>8}{'rejected':>10}{'quarant.':>10}")
    for name, s in stats["sources"].items():
        lines.append(f"{name:<22}{s['input_docs']:>8}{s['kept_docs']:>8}{s['rejected_docs']:>10}"
                     f"{s['quarantined_docs']:>10}")
    if stats["reasons"]:
        lines.append("")
        lines.append("reject reasons: " + ", ".join(f"{r}={v['docs']}" for r, v in stats["reasons"].items()))
    if stats.get("beam_counters"):
        lines.append("beam counters: " + ", ".join(f"{k}={v:,}" for k, v in sorted(stats["beam_counters"].items())))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.curate import run_curate

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    cfg = load_config(args.config)
    stats = run_curate(cfg, args.out, runner=args.runner, workers=args.workers,
                       beam_args=tuple(args.extra), overwrite=args.overwrite)
    print(format_table(stats))
    print(f"\nwrote {args.out}/curated, rejected, quarantine and stats.json")
    return 0
