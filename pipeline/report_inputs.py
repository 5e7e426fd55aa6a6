"""Reading a stage's outputs for the report: UTF-8 whatever the locale, and a file that is not what a jcorpus stage
writes (corrupt, hand-edited, of another version) is one line naming it and the field, never a traceback, a
shifted table or a NaN shown as a count. stats.json is checked once here (`load_stats`); the report only formats.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.accounting import FUNNEL, OUTCOMES
from pipeline.documents import SCHEMAS
from pipeline.errors import UserError
from pipeline.fsutil import regular_file
from trainer_bridge.userpaths import open_regular

BATCH_ROWS = 8192  # rows per Parquet read, so memory stays bounded whatever the output's size
COUNT_MAX = 2**63 - 1  # Beam counters and Parquet row counts are int64: a larger "count" cannot come from a run

PARTS = {"curated": "kept_docs", "rejected": "rejected_docs", "quarantine": "quarantined_docs"}  # folder: its total
MISSING = object()  # `d.get(key, MISSING)`: an error says "missing", not "None"


def bad(where: str, value: Any, want: str) -> UserError:
    text = "missing" if value is MISSING else repr(value)  # repr: a newline in a value stays on one line
    return UserError(f"{where} is {text if len(text) <= 60 else text[:57] + '...'}, not {want}")


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(where, value, "an object")
    return value


def count(value: Any, where: str) -> int:
    """A count of documents, characters or clusters: NaN, inf, negatives, strings and 10**30 are corrupt stats."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
        raise bad(where, value, "a count (a whole number from 0 to 2**63-1)")
    return value


def read_text(path: Path) -> str:
    """UTF-8 whatever the locale: every stage writes UTF-8, and `LC_ALL=C` must not make valid output unreadable."""
    try:
        with open_regular(path) as fh:  # a FIFO blocked the open forever
            return fh.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); is it a jcorpus output?") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def loads(text: str, where: str) -> Any:
    """`json.loads`, but JSON nested past Python's recursion limit (no stage writes it: a corrupt or hand-made
    file) is one line naming `where`, not a RecursionError traceback."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply (corrupt, or not a jcorpus output)") from None


def read_json(path: Path) -> Any:
    try:
        return loads(read_text(path), str(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()


def unreadable_parquet(name: str | Path, exc: BaseException, where: str = "") -> UserError:
    """One line naming the file (and `where` in it): Arrow's own errors run to a dozen lines and may not name it."""
    return UserError(f"{name}: not a readable Parquet file ({where}{first_line(exc)})")


def parquet_file(path: Path, columns: list[str]) -> pq.ParquetFile:
    """The file, checked to hold `columns`."""
    try:
        pf = pq.ParquetFile(regular_file(str(path)))
    except (pa.ArrowException, OSError) as exc:
        raise unreadable_parquet(path, exc) from None
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r}, which the report reads; is it a curate output?")
    return pf


def cast(path: Path, name: str, column: pa.Array) -> pa.Array:
    """The column as curate writes it (a hand-built file may use large_string or int), or a one-line error."""
    want = SCHEMAS["rejected"].field(name).type
    try:
        return column.cast(want)
    except pa.ArrowException:
        raise UserError(f"{path}: column {name!r} holds {column.type}, not {want}") from None


def scan(folder: Path, columns: list[str]) -> Iterator[tuple[Path, list[pa.Array]]]:
    """`columns` of every Parquet file of `folder` (in name order), a batch at a time: a 1M-row output is read
    in bounded memory, and only the columns asked for are decompressed."""
    for path in sorted(folder.glob("*.parquet")):
        pf = parquet_file(path, columns)
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield path, [cast(path, name, batch.column(name)) for name in columns]
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path}: cannot read it ({first_line(exc)})") from None


# --- stats.json, checked once ---------------------------------------------------------------------------------

def funnel(value: Any, where: str) -> list[int]:
    """Documents left after each stage, in FUNNEL order: a shorter or reordered list would put counts under the
    wrong column."""
    stages = ["input", *FUNNEL]
    if not isinstance(value, list):
        raise bad(where, value, f"a list of the stages {', '.join(stages)}")
    found = [r.get("stage") if isinstance(r, dict) else r for r in value]
    if found != stages:
        raise UserError(f"{where} has the stages {found!r:.200}, not {', '.join(stages)}")
    return [count(r.get("docs", MISSING), f"{where}[{i}].docs") for i, r in enumerate(value)]


def docs_chars(value: Any, where: str) -> tuple[int, int]:
    v = obj(value, where)
    return count(v.get("docs", MISSING), f"{where}.docs"), count(v.get("chars", MISSING), f"{where}.chars")


def load_stats(path: Path) -> dict[str, Any]:
    """The parts of stats.json the report shows, checked: a hand-edited or corrupt file fails here, naming itself
    and the field, instead of being shown as it is."""
    s = obj(read_json(path), str(path))
    at = f"{path}: "
    ok = obj(s.get("conservation", MISSING), at + "conservation").get("ok", MISSING)
    if not isinstance(ok, bool):  # "false" is truthy: the report would say the run balances
        raise bad(at + "conservation.ok", ok, "true or false")
    kinds = {k: (funnel(obj(v, f"{at}kinds[{k!r}]").get("funnel", MISSING), f"{at}kinds[{k!r}].funnel"),
                 count(v.get("kept_chars", MISSING), f"{at}kinds[{k!r}].kept_chars"))
             for k, v in obj(s.get("kinds", MISSING), at + "kinds").items()}
    reasons = {r: docs_chars(v, f"{at}reasons[{r!r}]")
               for r, v in obj(s.get("reasons", MISSING), at + "reasons").items()}
    dedup = obj(s.get("dedup") or {}, at + "dedup")
    sizes: Counter[int] = Counter()
    for key in ("exact_cluster_sizes", "near_cluster_sizes"):
        for size, n in obj(dedup.get(key) or {}, f"{at}dedup.{key}").items():
            if not (size.isascii() and size.isdigit()):
                raise bad(f"{at}dedup.{key} key", size, "a cluster size")
            sizes[int(size)] += count(n, f"{at}dedup.{key}[{size!r}]")  # exact and near clusters together
    return {
        "balanced": ok, "funnel": funnel(s.get("funnel", MISSING), at + "funnel"),
        "totals": {k: count(s.get(k, MISSING), at + k) for k in ("input_docs", *OUTCOMES)},
        "kept_chars": count(s.get("kept_chars", MISSING), at + "kept_chars"), "kinds": kinds,
        "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1][0], kv[0]))),
        "dedup": None if not s.get("dedup") else {
            "sizes": dict(sorted(sizes.items())),
            "counters": {k: count(v, f"{at}dedup.{k}") for k, v in sorted(dedup.items()) if not isinstance(v, dict)}},
        "licenses": {k: docs_chars(v, f"{at}licenses[{k!r}]")
                     for k, v in sorted(obj(s.get("licenses") or {}, at + "licenses").items())},
    }


def parquet_rows(folder: Path) -> int:
    """Rows of every Parquet file of `folder`, from the footers alone (no page is read)."""
    return sum(parquet_file(path, []).metadata.num_rows for path in sorted(folder.glob("*.parquet")))


def imbalance(curate: Path, stats: dict[str, Any]) -> list[str]:
    """What does not add up, as far as is cheap to check: stats.json's own totals, and the rows of the Parquet
    parts against them. A hand-edited count or a lost part must not be reported as a run that balances."""
    t = stats["totals"]
    problems = [] if stats["balanced"] else ["stats.json says so (conservation.ok is false)"]
    for folder, key in PARTS.items():
        rows = parquet_rows(curate / folder)
        if rows != t[key]:
            problems.append(f"{folder}/ holds {rows:,} rows, stats.json {key} is {t[key]:,}")
    outputs = sum(t[k] for k in OUTCOMES)
    if t["input_docs"] != outputs:
        problems.append(f"stats.json input_docs {t['input_docs']:,} != kept_docs + rejected_docs + quarantined_docs "
                        f"({outputs:,})")
    # the figures the report shows beside the totals: a hand-edited funnel or reason count was shown as fact
    shown = stats["funnel"]
    if (shown[0], shown[-1]) != (t["input_docs"], t["kept_docs"]):
        problems.append(f"stats.json funnel goes from {shown[0]:,} to {shown[-1]:,} documents, input_docs and "
                        f"kept_docs are {t['input_docs']:,} and {t['kept_docs']:,}")
    if stats["kinds"] and [sum(col) for col in zip(*(f for f, _ in stats["kinds"].values()), strict=True)] != shown:
        problems.append("stats.json funnels per kind do not add up to its funnel")
    if (rejected := sum(d for d, _ in stats["reasons"].values())) != t["rejected_docs"]:
        problems.append(f"stats.json reasons count {rejected:,} documents, rejected_docs is {t['rejected_docs']:,}")
    if not (curate / "_SUCCESS").exists():
        problems.append("no _SUCCESS file: the run did not finish, or this folder is not its output")
    return problems


def number(row: dict[str, Any], key: str, where: str, required: bool = True) -> None:
    v = row.get(key, MISSING if required else None)
    if (required or v is not None) and (isinstance(v, bool) or not isinstance(v, int | float)):
        raise bad(f"{where}: {key!r}", v, "a number")


def metrics(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """(rows, whether an incomplete last line was left out). Training appends a line per step, so a report made
    while it runs (or after a crash mid-write) can see a last line without its newline: that one is skipped and
    said so; any other bad line is an error naming its line."""
    lines = read_text(path).split("\n")
    rows, partial = [], False
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = obj(loads(line, f"{path}:{n}"), f"{path}:{n}")
        except json.JSONDecodeError as exc:
            if n == len(lines):  # the text does not end with a newline: an unfinished write
                partial = True
                break
            raise UserError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        if row.get("loss", 0) is None:  # a step whose loss was not finite (training diverging)
            row["loss"] = math.nan
        for key in ("step", "loss", "tokens_per_s"):
            number(row, key, f"{path}:{n}", required=key != "tokens_per_s")
        rows.append(row)
    return rows, partial
