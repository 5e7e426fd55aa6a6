"""The report: sections only for stages that ran, escaped content, no external requests, renders in Chromium."""
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import report
from pipeline.accounting import FUNNEL
from pipeline.curate import run_curate
from pipeline.documents import SCHEMAS
from pipeline.report import SAMPLE_ROWS, write_report
from tests.pipeline.test_curate import inputs  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def curated(tmp_path, inputs):  # noqa: F811
    cfg, _ = inputs
    out = tmp_path / "run"
    run_curate(cfg, str(out / "curate"))
    return out


def test_sections_follow_the_stages_that_ran(curated):
    page = write_report(curated).read_text(encoding="utf-8")
    for heading in ("Document funnel", "Why documents were removed", "Distributions", "Duplicates", "Licences"):
        assert f"<h2>{heading}" in page
    for absent in ("Tokenizer", "Packing", "Training"):
        assert f"<h2>{absent}" not in page
    (curated / "train").mkdir()
    (curated / "train" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i, "loss": 5.0 / i, "tokens_per_s": 1000.0}) + "\n" for i in range(1, 6)))
    (curated / "train" / "sample.txt").write_text("日本の<script>alert(1)</script>")
    page = write_report(curated).read_text(encoding="utf-8")
    assert "<h2>Training" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_self_contained(curated):
    page = write_report(curated).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # only in-page SVG references
    assert page.count("<svg") >= 3


def test_renders_in_headless_chromium(curated, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium when root)")
    page = write_report(curated)
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1000,3000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "report.html" in line]
    assert not console, console


def test_broken_stage_outputs_are_a_one_line_error(curated, capsys):
    (curated / "train").mkdir()
    (curated / "train" / "metrics.jsonl").write_text("{not json\n")
    code, err = _report(curated, capsys)
    assert code == 2 and f"{curated / 'train' / 'metrics.jsonl'}:1: not a JSON line" in err and "\n" not in err


def test_a_folder_without_stage_outputs_is_an_error_and_writes_nothing(tmp_path, capsys):
    from pipeline.cli import main

    shards = tmp_path / "shards"  # a stage folder itself, not the folder holding it
    shards.mkdir()
    (shards / "manifest.json").write_text("{}")
    for folder in (tmp_path / "empty", shards):
        folder.mkdir(exist_ok=True)
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert "no stage outputs found" in err and "\n" not in err
        assert not (folder / "report.html").exists()


def _report(out, capsys) -> tuple[int, str]:
    """(exit code, stderr) of `jcorpus report OUT`."""
    from pipeline.cli import main

    code = main(["report", str(out)])
    return code, capsys.readouterr().err.strip()


def _stats(kept: int, rejected: int, **extra) -> dict:
    """A consistent stats.json for a hand-built curate output: every rejection is an exact duplicate."""
    funnel = [{"stage": s, "docs": kept + (rejected if s in ("input", "readable", "size", "language", "filters")
                                           else 0)} for s in ("input", *FUNNEL)]
    return {"input_docs": kept + rejected, "kept_docs": kept, "rejected_docs": rejected, "quarantined_docs": 0,
            "funnel": funnel, "kept_chars": kept, "kinds": {"web": {"funnel": funnel, "kept_chars": kept}},
            "reasons": {"dup_exact": {"docs": rejected, "chars": rejected}}, "conservation": {"ok": True},
            "dedup": {"dup_exact": rejected, "exact_cluster_sizes": {str(rejected + 1): 1}}, **extra}


def _handbuilt(out, kept: int, members: int) -> str:
    """A curate output written directly (no Beam): `kept` curated rows, the last of them the representative of
    one exact cluster whose `members` other copies are rejected. Returns the representative's id."""
    rep = f"{kept - 1:032x}"

    def columns(n: int, ids: list[str], text: str) -> dict:
        return {"id": ids, "source_id": ids, "source": ["s"] * n, "kind": ["web"] * n, "url": [None] * n,
                "license": ["x"] * n, "text": [text] * n, "meta": ['{"lang": {"hiragana_fraction": 0.5}}'] * n,
                "quality": [0.5] * n, "dup_cluster": [None] * n}

    for folder in ("curated", "rejected", "samples"):
        (out / folder).mkdir(parents=True)
    cur = columns(kept, [f"{i:032x}" for i in range(kept)], "本文です。")
    cur["text"][-1], cur["dup_cluster"][-1] = "代表の文書です。", rep
    pq.write_table(pa.table(cur, schema=SCHEMAS["curated"]), out / "curated" / "part-00000.parquet")
    rej = columns(members, [f"f{i:031x}" for i in range(members)], "代表の文書です。")
    rej.update(dup_cluster=[rep] * members, reject_reason=["dup_exact"] * members)
    pq.write_table(pa.table(rej, schema=SCHEMAS["rejected"]), out / "rejected" / "part-00000.parquet")
    (out / "stats.json").write_text(json.dumps(_stats(kept, members)), encoding="utf-8")
    return rep


def test_duplicates_count_all_rows_and_sampled_plots_say_so(tmp_path):
    kept, members = SAMPLE_ROWS + 10, SAMPLE_ROWS + 5  # more than the plots' sample on both sides
    rep = _handbuilt(tmp_path, kept, members)
    page = write_report(tmp_path).read_text(encoding="utf-8")
    row = f"<tr><td>{rep[:12]}</td><td class=n>{members + 1:,}</td><td>代表の文書です。</td></tr>"
    assert row in page  # the representative is past the first 20,000 kept rows, the members past 20,000 rejected
    assert f"the first {SAMPLE_ROWS:,} of {kept:,} kept and the first {SAMPLE_ROWS:,} of {members:,} rejected" in page
    assert f"<!-- kept ({kept:,}) -->" in page  # the quality plot: a numeric column, read for every row


def test_reads_utf8_whatever_the_locale(curated):
    (curated / "tokenizer").mkdir()
    (curated / "tokenizer" / "eval.json").write_text('{"models": {"本番": {"vocab_size": 8000}}}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENC"))}
    done = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from pipeline.report import write_report; write_report(Path(sys.argv[1]))", str(curated)],
                          cwd=ROOT, env={**env, "LC_ALL": "C", "PYTHONUTF8": "0"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<th>本番</th>" in (curated / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s.update(funnel=s["funnel"][:3]), "funnel has the stages"),  # would shift values under columns
    (lambda s: s.update(conservation={"ok": "false"}), "conservation.ok is 'false'"),  # a truthy string
    (lambda s: s["reasons"][next(iter(s["reasons"]))].update(docs=math.nan), "].docs is nan"),
    (lambda s: s["reasons"][next(iter(s["reasons"]))].update(docs=math.inf), "].docs is inf"),
    (lambda s: s["reasons"][next(iter(s["reasons"]))].update(docs=-5), "].docs is -5"),
    (lambda s: s["reasons"][next(iter(s["reasons"]))].update(docs=10**30), "].docs is 1000000000000000000000"),
    (lambda s: s.update(kept_chars=math.nan), "kept_chars is nan"),
    (lambda s: s.update(dedup={"exact_cluster_sizes": {"two": 3}}), "dedup.exact_cluster_sizes key is 'two'"),
])
def test_corrupt_stats_are_a_one_line_error_naming_the_field(curated, capsys, edit, field):
    path = curated / "curate" / "stats.json"
    stats = json.loads(path.read_text(encoding="utf-8"))
    edit(stats)
    path.write_text(json.dumps(stats), encoding="utf-8")
    code, err = _report(curated, capsys)
    assert code == 2 and f"{path}: " in err and field in err and "\n" not in err
    assert not (curated / "report.html").exists()


def test_samples_are_only_read_inside_the_samples_folder(curated):
    secret = curated.parent / "secret.jsonl"  # outside OUT
    secret.write_text(json.dumps({"id": "s", "text": "SECRET-BY-NAME"}) + "\n", encoding="utf-8")
    linked = curated.parent / "linked.jsonl"
    linked.write_text(json.dumps({"id": "s", "text": "SECRET-BY-LINK"}) + "\n", encoding="utf-8")
    (curated / "curate" / "samples" / "by_link.jsonl").symlink_to(linked)
    path = curated / "curate" / "stats.json"
    stats = json.loads(path.read_text(encoding="utf-8"))
    stats["reasons"].update({"../../../secret": {"docs": 1, "chars": 1}, "by_link": {"docs": 1, "chars": 1}})
    path.write_text(json.dumps(stats), encoding="utf-8")
    page = write_report(curated).read_text(encoding="utf-8")
    assert "SECRET" not in page and "../../../secret" in page  # still counted in the table, just no examples


def test_cluster_sizes_add_exact_and_near_clusters(curated, monkeypatch):
    drawn = []
    monkeypatch.setattr(report.plots, "size_histogram", lambda sizes, label: drawn.append(dict(sizes)) or "<svg/>")
    path = curated / "curate" / "stats.json"
    stats = json.loads(path.read_text(encoding="utf-8"))
    stats["dedup"] = {"exact_cluster_sizes": {"2": 2}, "near_cluster_sizes": {"2": 7, "3": 1}}
    path.write_text(json.dumps(stats), encoding="utf-8")
    write_report(curated)
    assert [{int(k): v for k, v in d.items()} for d in drawn] == [{2: 9, 3: 1}]


@pytest.mark.parametrize("where", ["samples", "tokenizer", "report"])
def test_a_folder_where_a_file_belongs_is_a_one_line_error(curated, capsys, where):
    sample = next((curated / "curate" / "samples").glob("*.jsonl"))
    path = {"samples": sample, "tokenizer": curated / "tokenizer" / "eval.json",
            "report": curated / "report.html"}[where]
    if path.exists():
        path.unlink()
    path.mkdir(parents=True)
    code, err = _report(curated, capsys)
    assert code == 2 and str(path) in err and "\n" not in err


@pytest.mark.parametrize("where", ["stats", "tokenizer", "shards", "train", "samples", "meta"])
def test_json_nested_too_deeply_is_a_one_line_error(curated, capsys, where):
    """JSON nested past Python's recursion limit (no stage writes it) was a RecursionError traceback."""
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    sample = next((curated / "curate" / "samples").glob("*.jsonl"))
    path = {"stats": curated / "curate" / "stats.json", "tokenizer": curated / "tokenizer" / "eval.json",
            "shards": curated / "shards" / "manifest.json", "train": curated / "train" / "metrics.jsonl",
            "samples": sample, "meta": next((curated / "curate" / "curated").glob("*.parquet"))}[where]
    path.parent.mkdir(exist_ok=True)
    if where == "meta":
        table = pq.read_table(path)
        pq.write_table(table.set_column(table.schema.get_field_index("meta"), "meta",
                                        pa.array([deep] * len(table), pa.string())), path)
    else:
        path.write_text(deep + "\n", encoding="utf-8")
    code, err = _report(curated, capsys)
    assert code == 2 and f"{path}" in err and "nested too deeply" in err and "\n" not in err.strip(), err


def test_an_unfinished_last_metrics_line_is_left_out_and_said(curated):
    (curated / "train").mkdir()
    rows = "".join(json.dumps({"step": i, "loss": 5.0 / i}) + "\n" for i in range(1, 4))
    (curated / "train" / "metrics.jsonl").write_text(rows + '{"step": 4, "lo', encoding="utf-8")  # still writing
    page = write_report(curated).read_text(encoding="utf-8")
    assert "<h2>Training" in page and "The last line of metrics.jsonl is incomplete" in page


def test_a_diverged_step_with_a_null_loss_is_a_gap_in_the_loss_curve(curated):
    """jcorpus-train writes a loss that is not finite as null (strict JSON); the report refused such a file."""
    (curated / "train").mkdir()
    losses = [5.0, 4.0, None, None]
    (curated / "train" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i, "loss": loss}) + "\n" for i, loss in enumerate(losses, 1)), encoding="utf-8")
    page = write_report(curated).read_text(encoding="utf-8")
    assert "<h2>Training" in page


def test_bad_documents_name_their_file(curated, capsys):
    sample = next((curated / "curate" / "samples").glob("*.jsonl"))
    sample.write_text('{"id": "a"}\n', encoding="utf-8")  # no text
    code, err = _report(curated, capsys)
    assert code == 2 and f"{sample}:1" in err and "\n" not in err
    sample.unlink()
    part = next((curated / "curate" / "curated").glob("*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns(["quality"]), part)
    code, err = _report(curated, capsys)
    assert code == 2 and str(part) in err and "'quality'" in err and "\n" not in err


def test_report_html_is_replaced_not_followed(curated):
    victim = curated.parent / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (curated / "report.html").symlink_to(victim)
    write_report(curated)
    assert victim.read_text(encoding="utf-8") == "keep me" and not (curated / "report.html").is_symlink()
    (curated / "report.html").unlink()
    os.mkfifo(curated / "report.html")  # writing through it would wait forever for a reader
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from pipeline.report import write_report; write_report(Path(sys.argv[1]))", str(curated)],
                   cwd=ROOT, check=True, timeout=120)
    assert (curated / "report.html").is_file()
    assert [p.name for p in curated.iterdir() if p.name.startswith(".report")] == []  # no temporary file left


def test_report_dot_is_named_after_the_folder(curated, capsys, monkeypatch):
    monkeypatch.chdir(curated)
    code, _ = _report(".", capsys)
    assert code == 0 and f"<h1>jcorpus report: {curated.name}</h1>" in (curated / "report.html").read_text("utf-8")


def test_an_os_error_anywhere_is_a_one_line_error_naming_the_path(curated, capsys, monkeypatch):
    """Errors the report does not foresee (root cannot provoke a permission error in a test) still name the path."""
    def denied(out):
        raise PermissionError(13, "Permission denied", str(out / "curate" / "stats.json"))

    monkeypatch.setattr(report, "write_report", denied)
    code, err = _report(curated, capsys)
    assert code == 2 and f"{curated / 'curate' / 'stats.json'}: cannot read it (Permission denied)" in err
    assert "\n" not in err


def test_a_balanced_run_says_so_and_warns_nothing(curated, capsys):
    code, err = _report(curated, capsys)
    assert code == 0 and err == ""
    assert "this run balances" in (curated / "report.html").read_text(encoding="utf-8")


def _edit_stats(out, **changes) -> None:
    path = out / "curate" / "stats.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **changes}), encoding="utf-8")


def _edit_funnel_end(out, docs: int) -> None:
    funnel = json.loads((out / "curate" / "stats.json").read_text(encoding="utf-8"))["funnel"]
    _edit_stats(out, funnel=[*funnel[:-1], {**funnel[-1], "docs": docs}])


def _delete_a_curated_part(out) -> None:
    max((out / "curate" / "curated").glob("*.parquet"), key=lambda p: pq.read_metadata(p).num_rows).unlink()


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda out: _edit_stats(out, kept_docs=999),
     r"curated/ holds [\d,]+ rows, stats.json kept_docs is 999; stats.json input_docs [\d,]+ != kept_docs \+ "
     r"rejected_docs \+ quarantined_docs \([\d,]+\)"),
    (_delete_a_curated_part, r"curated/ holds [\d,]+ rows, stats.json kept_docs is [\d,]+$"),
    (lambda out: _edit_stats(out, conservation={"ok": False}), r"stats.json says so \(conservation.ok is false\)$"),
    # the funnel and the reasons, shown beside the totals, were not checked at all
    (lambda out: _edit_funnel_end(out, 999), r"stats.json funnel goes from [\d,]+ to 999 documents, input_docs and "
     r"kept_docs are [\d,]+ and [\d,]+; stats.json funnels per kind do not add up to its funnel$"),
    (lambda out: _edit_stats(out, reasons={"lang_not_ja": {"docs": 5000, "chars": 1}}),
     r"stats.json reasons count 5,000 documents, rejected_docs is [\d,]+$"),
    (lambda out: (out / "curate" / "_SUCCESS").unlink(), r"no _SUCCESS file: the run did not finish"),
])
def test_outputs_that_do_not_add_up_are_said_not_to_balance(curated, capsys, damage, expected):
    """stats.json was shown as it was: kept_docs edited to 999, or a curated part lost, and "this run balances"."""
    damage(curated)
    code, err = _report(curated, capsys)
    assert code == 0 and "\n" not in err
    assert re.match(rf"jcorpus report: warning: {re.escape(str(curated / 'curate'))}: this run does NOT balance: "
                    rf"{expected}", err), err
    page = (curated / "report.html").read_text(encoding="utf-8")
    assert "this run balances" not in page and "<b>does not balance</b>" in page
    assert err.split("does NOT balance: ")[1] in html.unescape(page)


def test_quarantined_documents_are_an_outcome_with_example_errors(curated):
    stats = json.loads((curated / "curate" / "stats.json").read_text(encoding="utf-8"))
    n = stats["quarantined_docs"]
    assert n, "the fixture has unreadable input (a broken JSON line, a truncated gzip file)"
    first = json.loads((curated / "curate" / "samples" / "quarantine.jsonl").read_text(encoding="utf-8")
                       .splitlines()[0])
    page = write_report(curated).read_text(encoding="utf-8")
    assert f"<tr><td>quarantined (unreadable)</td><td class=n>{n:,}</td>" in page  # beside the rejection reasons
    assert "<summary>quarantined (unreadable): example errors</summary>" in page
    assert html.escape(report._oneline(first["text"])[:200]) in page


def test_only_quarantined_documents_still_get_the_removed_section(tmp_path):
    _handbuilt(tmp_path, 3, 0)
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    stats.update(input_docs=4, quarantined_docs=1, reasons={}, dedup={})
    stats["funnel"][0]["docs"] = stats["kinds"]["web"]["funnel"][0]["docs"] = 4
    (tmp_path / "samples" / "quarantine.jsonl").write_text(
        json.dumps({"id": "q1", "url": None, "text": "gzip: CRC check failed <b>"}) + "\n", encoding="utf-8")
    (tmp_path / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    page = report.build_report(tmp_path)
    assert "<h2>Why documents were removed" in page and "gzip: CRC check failed &lt;b&gt;" in page


def test_empty_documents_are_drawn_in_the_length_histogram(monkeypatch):
    from matplotlib.axes import Axes

    from pipeline import report_plots

    drawn = []
    hist = Axes.hist

    def spy(self, x, *args, **kwargs):
        counts, bins, patches = hist(self, x, *args, **kwargs)
        drawn.append((len(x), int(sum(counts)), bins[0]))
        return counts, bins, patches

    monkeypatch.setattr(Axes, "hist", spy)
    kept, rejected = [0, 1, 12, 300, 5000], [0, 0, 0, 7]
    report_plots.histograms(kept, rejected, "characters", log=True)
    assert [(n, d) for n, d, _ in drawn] == [(5, 5), (4, 4)]  # the legend's counts are the bars' counts
    assert drawn[0][2] == 0  # the empty documents' own bin
    drawn.clear()
    report_plots.histograms([3, 40], [2], "characters", log=True)  # no empty document: no 0 bin
    assert [(n, d) for n, d, _ in drawn] == [(2, 2), (1, 1)] and drawn[0][2] == 2


def test_the_length_caption_says_where_empty_documents_are(tmp_path):
    _handbuilt(tmp_path, 3, 2)
    assert "empty documents" not in report.build_report(tmp_path)
    table = pq.read_table(tmp_path / "rejected" / "part-00000.parquet")
    pq.write_table(table.set_column(table.schema.get_field_index("text"), "text", pa.array(["", ""])),
                   tmp_path / "rejected" / "part-00000.parquet")
    assert "empty documents (0 characters) are the bar from 0 to 1" in report.build_report(tmp_path)
