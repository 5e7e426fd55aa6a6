"""End-to-end curate on small inputs made here: accounting, reasons, dedup priority, determinism, runners."""
import glob
import gzip
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import load_config, parse_config
from pipeline.curate import run_curate
from pipeline.errors import ConfigError, UserError
from tests.conftest import SAMPLES

LAW = "第一条　この法律は、国民の健康の保持に寄与することを目的とする。\n第二条　国は、必要な施策を講ずるものとする。"
JA = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "東京都は日本の首都であり、多くの人々が暮らしている大都市である。",
    "言語モデルの事前学習には、大量の日本語テキストが必要となる。",
]
ZH = "中华人民共和国是位于东亚的社会主义国家，首都为北京。"
EN = "This is an English paragraph about corpus curation for language models."


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "laws.jsonl", [{"id": "law-1", "text": LAW}, {"id": "law-2", "text": JA[2]}])
    web_rows = [
        {"id": "w1", "text": LAW.replace("\u3000", " ").replace("第一条", "第一条"), "url": "http://a.example/1"},
        {"id": "w2", "text": JA[0], "url": "http://a.example/2"},
        {"id": "w3", "text": ZH, "url": "http://b.example/zh"},
        {"id": "w4", "text": EN, "url": "http://b.example/en"},
        {"id": "w5", "text": JA[1] * 40, "url": "http://b.example/long"},
        {"id": "w6", "text": "   \n  ", "url": "http://b.example/empty"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in web_rows]
    lines.insert(2, '{"id": "broken", "text": ')  # invalid JSON line
    (d / "web.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    good = gzip.compress("".join(json.dumps({"id": f"g{i}", "text": t}, ensure_ascii=False) + "\n"
                                 for i, t in enumerate(JA)).encode())
    (d / "truncated.jsonl.gz").write_bytes(good[: len(good) - 12])  # corrupt tail: CRC and size missing
    cfg = {
        "sources": [
            {"name": "laws", "kind": "government", "format": "jsonl", "paths": [str(d / "laws.jsonl")],
             "license": "public-domain"},
            {"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "web.jsonl")], "license": "ODC-BY-1.0"},
            {"name": "gz", "kind": "reference", "format": "jsonl", "paths": [str(d / "*.jsonl.gz")],
             "license": "CC-BY-SA-4.0"},
        ],
        "limits": {"max_chars": 1000},
        "filters": {"enabled": False},
        "output": {"shard_bytes": 400},  # several shards even for this tiny input
    }
    return parse_config(cfg), cfg


def _rows(out, dest):
    files = sorted(glob.glob(str(out / dest / "*.parquet")))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def test_every_document_accounted_for(tmp_path, inputs, beam_leftovers):
    cfg, _ = inputs
    stats = run_curate(cfg, str(tmp_path / "out"))
    assert beam_leftovers() == []
    out = tmp_path / "out"
    kept, rejected, quarantined = (_rows(out, d) for d in ("curated", "rejected", "quarantine"))
    # 2 laws + 7 web lines (one broken) + the gzip's readable lines and one quarantine record for its tail
    gz_readable = len([r for r in kept + rejected if r["source"] == "gz"])
    assert stats["input_docs"] == 2 + 7 + gz_readable + 1 == len(kept) + len(rejected) + len(quarantined)
    assert stats["conservation"]["ok"]
    for name, s in stats["sources"].items():
        assert s["input_docs"] == s["kept_docs"] + s["rejected_docs"] + s["quarantined_docs"], name
    reasons = {r["source_id"]: r["reject_reason"] for r in rejected}
    assert reasons["w3"] == reasons["w4"] == "lang_not_ja"
    assert reasons["w5"] == "too_long" and reasons["w6"] == "empty_text"
    assert reasons["w1"] == "dup_exact"  # the web copy of the law loses to the government copy
    law = next(r for r in kept if r["source_id"] == "law-1")
    assert law["dup_cluster"] == law["id"] == next(r for r in rejected if r["source_id"] == "w1")["dup_cluster"]
    errors = {r["source"]: r["error"] for r in quarantined}
    assert set(errors) == {"web", "gz"} and all("\n" not in e for e in errors.values())
    assert (out / "_SUCCESS").exists() and not glob.glob(str(out / "_temporary*"))
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk["funnel"][-1]["docs"] == len(kept)
    assert sum(k["funnel"][-1]["docs"] for k in on_disk["kinds"].values()) == len(kept)
    assert on_disk["kinds"]["government"]["funnel"][-1]["docs"] == 2  # both laws survive
    assert len(glob.glob(str(out / "curated" / "*.parquet"))) > 1
    for dest in ("curated", "rejected"):
        for f in glob.glob(str(out / dest / "*.parquet")):
            ids = pq.read_table(f).column("id").to_pylist()
            assert ids == sorted(ids)
    sample = (out / "samples" / "lang_not_ja.jsonl").read_text().splitlines()
    assert len(sample) == 2 and all(len(json.loads(s)["text"]) <= 300 for s in sample)


def _same_outputs(a, b):
    for dest in ("curated", "rejected", "quarantine"):
        fa = sorted(p.name for p in (a / dest).glob("*.parquet"))
        assert fa == sorted(p.name for p in (b / dest).glob("*.parquet")), dest
        for name in fa:
            assert (a / dest / name).read_bytes() == (b / dest / name).read_bytes(), (dest, name)


def test_byte_identical_for_one_and_two_workers(tmp_path, inputs):
    cfg, _ = inputs
    run_curate(cfg, str(tmp_path / "w1"), workers=1)
    run_curate(cfg, str(tmp_path / "w2"), workers=2)
    _same_outputs(tmp_path / "w1", tmp_path / "w2")


def test_portable_runner_gives_the_same_output(tmp_path, inputs, beam_leftovers):
    cfg, _ = inputs
    run_curate(cfg, str(tmp_path / "direct"))
    run_curate(cfg, str(tmp_path / "portable"), runner="PortableRunner",
               beam_args=("--job_endpoint=embed", "--environment_type=LOOPBACK"))
    assert beam_leftovers() == []
    _same_outputs(tmp_path / "direct", tmp_path / "portable")


def test_cli_refuses_to_overwrite_and_reports_config_errors(tmp_path, inputs, capsys):
    _, raw = inputs
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    out = str(tmp_path / "out")
    assert main(["curate", "--config", str(config), "--out", out]) == 0
    assert "lang_not_ja=2" in capsys.readouterr().out
    assert main(["curate", "--config", str(config), "--out", out]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["curate", "--config", str(config), "--out", out, "--overwrite"]) == 0
    raw["sources"][0]["paths"] = [str(tmp_path / "missing" / "*.jsonl")]
    config.write_text(yaml.safe_dump(raw))
    assert main(["curate", "--config", str(config), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jcorpus curate: error: sources[0].paths: no file matches") and "\n" not in err
    assert main(["curate", "--config", str(config), "--out", "nosuchscheme://bucket/out"]) == 2
    err = capsys.readouterr().err.strip()  # Beam knows no filesystem for the scheme: one line, not a traceback
    assert err.startswith("jcorpus curate: error: Unable to get filesystem") and "\n" not in err


def test_dask_runner_gives_the_same_output(tmp_path, inputs, beam_leftovers):
    pytest.importorskip("dask.distributed")
    cfg, _ = inputs
    run_curate(cfg, str(tmp_path / "direct"))
    stats = run_curate(cfg, str(tmp_path / "dask"), runner="DaskRunner", workers=2)
    assert stats["conservation"]["ok"] and beam_leftovers() == []
    _same_outputs(tmp_path / "direct", tmp_path / "dask")


def test_reads_and_writes_through_a_non_local_filesystem(tmp_path, inputs):
    """An in-memory Beam filesystem stands in for gs:// or s3:// for both the inputs and the outputs."""
    from apache_beam.io.filesystems import FileSystems

    from tests.pipeline.memfs import STORE

    _, raw = inputs
    for src in raw["sources"]:
        for path in glob.glob(src["paths"][0]):
            STORE["memfs://in/" + path.rsplit("/", 1)[1]] = open(path, "rb").read()
        src["paths"] = ["memfs://in/" + src["paths"][0].rsplit("/", 1)[1]]
    local = run_curate(parse_config(raw), str(tmp_path / "local"))
    remote = run_curate(parse_config(raw), "memfs://out")
    assert remote["conservation"]["ok"] and remote["kept_docs"] == local["kept_docs"]
    names = [m.path for m in FileSystems.match(["memfs://out/curated/*"])[0].metadata_list]
    assert names and FileSystems.exists("memfs://out/_SUCCESS")
    assert not [p for p in STORE if "_temporary" in p]
    for name in names:
        assert STORE[name] == (tmp_path / "local" / "curated" / name.rsplit("/", 1)[1]).read_bytes()


def test_records_repeated_in_a_file_get_their_own_ids(tmp_path):
    """A repeated record id used to give two documents one id, so they shared every dedup decision: a verbatim
    repeat rejected both copies `dup_exact`, and a distinct text under a duplicate's id was rejected with it."""
    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "gov.jsonl", [{"id": "g", "text": LAW}])
    _write_jsonl(d / "web.jsonl", [{"id": "1", "text": LAW}, {"id": "1", "text": JA[0]},  # a copy of the law; a new text
                                   {"id": "2", "text": JA[1]}, {"id": "2", "text": JA[1]},  # a verbatim repeat
                                   {"id": "1#2", "text": JA[2]}])  # an id that looks like a renamed one
    cfg = parse_config({"sources": [
        {"name": "gov", "kind": "government", "format": "jsonl", "paths": [str(d / "gov.jsonl")], "license": "x"},
        {"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "web.jsonl")], "license": "x"}],
        "filters": {"enabled": False}})
    run_curate(cfg, str(tmp_path / "out"))
    kept, rejected = _rows(tmp_path / "out", "curated"), _rows(tmp_path / "out", "rejected")
    web = {r["source_id"] for r in kept if r["source"] == "web"}
    assert len(web) == 3 and {"1#2", "1#2#2"} < web and len(web & {"2", "2#2"}) == 1  # one copy kept (by id)
    assert {r["source_id"]: r["reject_reason"] for r in rejected} == {"1": "dup_exact",
                                                                      ({"2", "2#2"} - web).pop(): "dup_exact"}
    assert {r["text"] for r in kept} == {LAW, *JA}
    ids = [r["id"] for r in kept + rejected]
    assert len(ids) == len(set(ids)) == 6


def test_an_id_shared_by_two_files_of_a_source_is_a_config_error(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name, text in (("a", JA[0]), ("b", JA[1])):
        _write_jsonl(d / f"{name}.jsonl", [{"id": "0", "text": text}, {"id": name, "text": JA[2] + name}])
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "*.jsonl")],
                        "license": "x"}], "filters": {"enabled": False}}
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.id_field: 2 documents of source 'web' in different "
                                          r"files share an id \('0'\).*id_field: null"):
        run_curate(parse_config(raw), str(out))
    assert not list(out.glob("*"))  # nothing committed, no temporary folder left
    raw["sources"][0]["id_field"] = None  # records named by file and line
    stats = run_curate(parse_config(raw), str(out))
    assert stats["kept_docs"] == 4 and len({r["id"] for r in _rows(out, "curated")}) == 4


def test_a_warc_copied_twice_names_paths_not_id_field(tmp_path):
    """A WARC source has no `id_field`; the error pointed at one."""
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a", "b"):
        shutil.copy(SAMPLES / "web" / "pages.warc.gz", d / f"{name}.warc.gz")
    raw = {"sources": [{"name": "crawl", "kind": "web", "format": "warc", "paths": [str(d / "*.warc.gz")],
                        "license": "x"}], "filters": {"enabled": False}}
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.paths: \d+ documents of source 'crawl' .*a copy of another"):
        run_curate(parse_config(raw), str(tmp_path / "out"))


def test_a_record_field_named_like_a_step_meta_key_is_kept_aside(tmp_path):
    """A JSONL field `normalize: yes` crashed the write step, which sums meta["normalize"] as rule counts;
    `lang` or `filters` fields were overwritten silently. They are kept as `field:<name>`; a field already
    named `field:normalize` beside `normalize` is kept too (one of the two was lost), and so is a field
    `site_lines_removed` when the site-lines step runs (the step overwrote it)."""
    d = tmp_path / "in"
    d.mkdir()
    nav = "ホーム｜会社概要｜お問い合わせ"
    rows = [{"id": str(i), "text": ("ＡＢＣ" if i == 0 else "") + JA[i] + "\n" + nav, "url": f"https://a.example/{i}",
             "normalize": "yes", "field:normalize": "no", "lang": "ja", "title": "t", "site_lines_removed": "mine"}
            for i in range(3)]
    _write_jsonl(d / "a.jsonl", rows)
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}], "filters": {"enabled": True, "preset": "none",
                                                     "site_lines": {"enabled": True, "min_docs": 2}}}
    stats = run_curate(parse_config(raw), str(tmp_path / "out"))
    metas = {row["source_id"]: json.loads(row["meta"]) for row in _rows(tmp_path / "out", "curated")}
    meta = next(m for m in metas.values() if "fullwidth_ascii" in str(m["normalize"]))
    assert meta["field:normalize"] == "yes" and meta["field:field:normalize"] == "no" and meta["field:lang"] == "ja"
    assert meta["title"] == "t" and meta["field:site_lines_removed"] == "mine" and meta["site_lines_removed"] == 1
    assert meta["normalize"] == {"fullwidth_ascii": 3} and stats["normalize"] == {"fullwidth_ascii": 3}
    assert "kana_fraction" in str(meta["lang"]) and len(metas) == 3


@pytest.mark.parametrize(("flags", "message"), [
    (["--runner", "Nope"], "--runner Nope: Unexpected pipeline runner: Nope."),
    (["--dirct_num_workers", "2"], "unknown Beam option --dirct_num_workers (not defined by Beam or by the runner"),
    # a known option's bad value was argparse's whole usage block (128 lines of Beam options) above the error
    (["--direct_num_workers=abc"], "argument --direct_num_workers: invalid int value: 'abc'"),
    (["--direct_running_mode=bogus"], "argument --direct_running_mode: invalid choice: 'bogus'"),
    (["--direct_num_workers", "-1", "--direct_running_mode", "multi_processing"],  # an IndexError inside Beam
     "--direct_num_workers -1: expected an integer in [0, 1024] (0: one per CPU)"),
    (["--runner", "no.such.Runner"], "--runner no.such.Runner: No module named 'no'"),
    (["--runner", "PortableRunner"], "--runner PortableRunner could not start the job: You must specify a --job_endpoint"),
    (["--runner", "PortableRunner", "--job_endpoint", "localhost:1", "--job_server_timeout", "1"],
     "--runner PortableRunner could not start the job: no job service answered within --job_server_timeout"),
    # Beam parses the hints after making its temp folder, and the pipeline that failed there was never returned
    (["--resource_hints=min_ram=abc"], "--runner FnApiRunner: Resource hint min_ram has invalid value abc."),
])
def test_a_runner_that_cannot_start_is_one_line(tmp_path, capsys, beam_leftovers, flags, message):
    """These were Beam tracebacks (ValueError, ImportError, NotImplementedError, grpc's FutureTimeoutError), or, for
    a misspelt Beam option, a run that ignored it. None leaves Beam's temp folder."""
    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [{"id": "1", "text": JA[0]}])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")], "license": "x"}]}))
    assert main(["curate", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert f"jcorpus curate: error: {message}" in err and "Traceback" not in err and beam_leftovers() == []


def test_index_folder_is_checked_first_and_a_failed_run_leaves_nothing(tmp_path, monkeypatch):
    """An index_out that cannot be made failed at the end of the run, leaving its _temporary folder; a relative
    index_out was relative to the working folder, not to the config like every other path."""
    import pipeline.curate as curate

    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [{"id": "1", "text": JA[0]}])
    (d / "blocker").write_text("a file where the index folder's parent should be")
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": ["a.jsonl"], "license": "x"}],
           "dedup": {"near": {"enabled": True, "index_out": "blocker/index"}}}
    (d / "c.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(str(d / "c.yaml"))
    assert cfg.near_dedup["index_out"] == str(d / "blocker" / "index")
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_out: cannot create .*blocker/index: Not a directory"):
        run_curate(cfg, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()

    real_run = curate.run

    def crash(p, runner):  # the run writes its temporary files, then fails
        real_run(p, runner)
        assert len(list((tmp_path / "out").glob("_temporary-*/*"))) > 0
        raise RuntimeError("a worker died")

    monkeypatch.setattr(curate, "run", crash)
    raw["sources"][0]["paths"], raw["dedup"] = [str(d / "a.jsonl")], {}
    with pytest.raises(RuntimeError, match="a worker died"):
        run_curate(parse_config(raw), str(tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_index_folder_inside_an_output_folder_is_refused_first(tmp_path, overwrite):
    """`dedup.near.index_out: OUT/curated` was made before the run; the commit then found OUT/curated and failed
    after the whole run saying another run wrote it, and with --overwrite it deleted the new band index as part
    of the output it replaced."""
    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [{"id": "1", "text": JA[0]}])
    out = tmp_path / "out"
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}],
           "dedup": {"near": {"enabled": True, "index_out": str(out / "curated" / "index")}}}
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_out: .*/curated/index is inside .*/out/curated, "
                                          r"an output folder of --out"):
        run_curate(parse_config(raw), str(out), overwrite=overwrite)
    assert not out.exists()


def test_a_samples_folder_or_a_concurrent_run_is_not_replaced_without_overwrite(tmp_path):
    """`commit` replaces OUT/samples/* too, but only curated/rejected/quarantine/stats.json/_SUCCESS counted as
    an existing output: a user's notes in OUT/samples were deleted. And the check ran once, at the start: a
    second run on the same --out committed over the first, both saying they wrote it."""
    from pipeline.curate import commit

    d = tmp_path / "in"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [{"id": "1", "text": JA[0]}])
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}], "filters": {"enabled": False}}
    out = tmp_path / "out"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"already holds a curate output \(samples\); pass --overwrite"):
        run_curate(parse_config(raw), str(out))
    assert (out / "samples" / "notes.txt").read_text() == "mine"
    other = tmp_path / "other"
    (tmp_path / "tmp" / "curated").mkdir(parents=True)
    (tmp_path / "tmp" / "curated" / "part-00000.parquet").write_text("this run's")
    other.mkdir()
    (other / "_SUCCESS").write_text("")  # what a run that finished first leaves
    with pytest.raises(UserError, match=r"already holds a curate output \(_SUCCESS\).*another run wrote it"):
        commit(str(other), str(tmp_path / "tmp"), {}, overwrite=False)
    assert sorted(os.listdir(other)) == ["_SUCCESS"] and not (tmp_path / "tmp").exists()


def test_euc_jp_read_as_cp932_is_rejected_as_mojibake_after_normalization(tmp_path):
    """The pipeline counts the half-width EUC-JP-as-CP932 signature before normalization folds it (the page
    was kept: the filters only saw 、マ), and the filters add it (`meta.mojibake_folded`)."""
    d = tmp_path / "in"
    d.mkdir()
    bad = (JA[0] + JA[1]).encode("euc-jp").decode("cp932", "ignore")
    _write_jsonl(d / "a.jsonl", [{"id": "bad", "text": bad}, {"id": "good", "text": "ｶﾀｶﾅ｡" + JA[0] + JA[1]}])
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}],
           "language": {"min_kana_fraction": 0.0}, "filters": {"enabled": True, "preset": "none", "rules": {"mojibake": {}}}}
    run_curate(parse_config(raw), str(tmp_path / "out"))
    rejected = {r["source_id"]: r for r in _rows(tmp_path / "out", "rejected")}
    assert rejected["bad"]["reject_reason"] == "mojibake" and json.loads(rejected["bad"]["meta"])["mojibake_folded"] > 10
    assert [r["source_id"] for r in _rows(tmp_path / "out", "curated")] == ["good"]


def test_a_stop_during_the_commit_waits_for_it(tmp_path, inputs, monkeypatch):
    """Ctrl-C or SIGTERM while the files were renamed into place left part of an output (with --overwrite,
    neither the old one nor the new): the commit now finishes, and the stop that came during it is dropped."""
    import signal

    import pipeline.curate as curate

    cfg, _ = inputs
    run_curate(cfg, str(tmp_path / "out"))
    rename = curate.FileSystems.rename

    def stopped_midway(sources, targets):
        if not any("_temporary-" in t for t in targets):  # the commit's renames, not the pipeline's
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
        return rename(sources, targets)

    monkeypatch.setattr(curate.FileSystems, "rename", stopped_midway)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stats = run_curate(cfg, str(tmp_path / "out"), overwrite=True)
    assert (tmp_path / "out" / "_SUCCESS").exists() and stats["conservation"]["ok"]
    assert len(_rows(tmp_path / "out", "curated")) == stats["kept_docs"]
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


def test_a_config_error_found_while_the_graph_is_built_leaves_no_beam_folder(tmp_path, inputs, beam_leftovers):
    """dedup.near.index_in is checked as the graph is built: the refused run left Beam's folder in /tmp."""
    _, raw = inputs
    cfg = parse_config({**raw, "dedup": {"near": {"enabled": True, "index_in": [str(tmp_path / "missing")]}}})
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_in: no index file matches"):
        run_curate(cfg, str(tmp_path / "out"))
    assert beam_leftovers() == []


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_while_the_graph_is_built_leaves_no_beam_folder(tmp_path, inputs, monkeypatch, beam_leftovers, sig,
                                                               code):
    """Ctrl-C or SIGTERM before the run starts (building the demo's graph takes half a second) left Beam's
    folder in /tmp: Beam removes it only at the end of run()."""
    import signal

    import pipeline.curate as curate
    from pipeline import cli, errors

    built = curate.build

    def stopped(p, *args):
        built(p, *args)
        os.kill(os.getpid(), getattr(signal, sig))

    monkeypatch.setattr(curate, "build", stopped)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(inputs[1], allow_unicode=True))
    handlers = {s: signal.signal(s, h) for s, h in ((signal.SIGINT, cli._interrupt), (signal.SIGTERM, cli._terminate))}
    try:  # the handlers `jcorpus` installs
        assert main(["curate", "--config", str(config), "--out", str(tmp_path / "out")]) == code
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        errors.STOPS.clear()
    assert beam_leftovers() == [] and not list((tmp_path / "out").glob("_temporary-*"))


def test_overwrite_replaces_a_file_where_an_output_folder_goes(tmp_path, inputs):
    """A file named `curated` (or `rejected`) under --out failed the run at its very end with a FileExistsError
    traceback, leaving the temporary folder."""
    cfg, _ = inputs
    out = tmp_path / "out"
    out.mkdir()
    (out / "rejected").write_text("not a folder")
    stats = run_curate(cfg, str(out), overwrite=True)
    assert (out / "rejected").is_dir() and len(_rows(out, "rejected")) == stats["rejected_docs"]
    assert not [p for p in os.listdir(out) if p.startswith("_temporary")]


def test_overwrite_removes_the_report_of_the_output_it_replaces(tmp_path):
    """`jcorpus report OUT` writes OUT/report.html; `curate --overwrite` replaced every file it describes and
    left it, so OUT/report.html showed the old run's funnel and reasons beside the new stats.json."""
    from pipeline.curate import commit

    out, stage = tmp_path / "out", tmp_path / "out" / "_temporary-new"
    for folder in ("curated", "rejected", "quarantine"):
        (out / folder).mkdir(parents=True)
    (out / "_SUCCESS").write_text("")
    (out / "stats.json").write_text("{}")
    (out / "report.html").write_text("<p>the old run</p>")
    (stage / "curated").mkdir(parents=True)
    (stage / "curated" / "part-00000.parquet").write_text("the new run's")
    commit(str(out), str(stage), {"input_docs": 1}, overwrite=True)
    assert sorted(os.listdir(out)) == ["_SUCCESS", "curated", "quarantine", "rejected", "stats.json"]
    assert (out / "curated" / "part-00000.parquet").read_text() == "the new run's"


def test_rejections_by_a_rule_named_max_are_summed_across_shards(tmp_path):
    """stats.json merged every key starting with `max_` as a maximum: the per-source and per-kind counts of rules
    such as max_katakana_fraction kept the largest output shard's count (4 of 12), and the report said the
    funnels did not add up."""
    from pipeline.stats import merge_all

    d = tmp_path / "in"
    d.mkdir()
    katakana = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ"
    rows = [{"id": f"k{i}", "text": "。".join(katakana[i % 7:] + katakana[:i % 7] for _ in range(6)) + "。"}
            for i in range(12)]
    _write_jsonl(d / "a.jsonl", rows)
    raw = {"sources": [{"name": "kata", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}],
           "language": {"min_japanese_fraction": 0.0},
           "filters": {"enabled": True, "preset": "none", "rules": {"max_katakana_fraction": {}}},
           "output": {"shard_bytes": 400}}
    stats = run_curate(parse_config(raw), str(tmp_path / "out"))
    assert len(_rows(tmp_path / "out", "rejected")) == stats["rejected_docs"] == 12
    assert stats["sources"]["kata"]["rejected_by_reason"] == {"max_katakana_fraction": 12}
    assert merge_all([{"max_exact_cluster_size": 3}, {"max_exact_cluster_size": 2}]) == {"max_exact_cluster_size": 3}


def test_the_band_index_is_replaced_whole_at_the_commit(tmp_path, monkeypatch):
    """index_out was written in place during the run: a run keeping fewer documents rewrote some of the 16 shards
    and left the rest (a later index_in rejected 99 of 120 documents against ids nobody kept), a stopped run
    left part of an index, and an existing index was replaced without --overwrite."""
    import pipeline.curate as curate

    d = tmp_path / "in"
    d.mkdir()
    many = [{"id": str(i), "text": f"{i}番目の文書です。" + JA[i % 3] + "ここに固有の内容が続く。" * (1 + i % 5)}
            for i in range(40)]
    _write_jsonl(d / "many.jsonl", many)
    _write_jsonl(d / "one.jsonl", many[:1])
    index = tmp_path / "index"

    def cfg(name):
        return parse_config({"sources": [{"name": "web", "kind": "web", "format": "jsonl",
                                          "paths": [str(d / name)], "license": "x"}],
                             "dedup": {"near": {"enabled": True, "index_out": str(index)}}})

    run_curate(cfg("many.jsonl"), str(tmp_path / "a"))
    assert len(list(index.glob("band-index-*.parquet"))) > 2
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_out: .*index already holds a band index; pass "
                                          r"--overwrite to replace it$"):
        run_curate(cfg("one.jsonl"), str(tmp_path / "b"))
    run_curate(cfg("one.jsonl"), str(tmp_path / "b"), overwrite=True)
    ids = {i for f in index.glob("band-index-*.parquet") for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}
    assert len(ids) == 1 and sorted(p.name for p in index.iterdir() if not p.name.startswith("band-index-")) == []

    real_run = curate.run

    def crash(p, runner):  # the run writes its index shards, then fails
        real_run(p, runner)
        raise RuntimeError("a worker died")

    monkeypatch.setattr(curate, "run", crash)
    before = sorted(p.name for p in index.iterdir())
    with pytest.raises(RuntimeError, match="a worker died"):
        run_curate(cfg("many.jsonl"), str(tmp_path / "c"), overwrite=True)
    assert sorted(p.name for p in index.iterdir()) == before
    monkeypatch.undo()
    finalize = curate.finalize_stats  # a failure after the pipeline (accounting) left the stage for good
    monkeypatch.setattr(curate, "finalize_stats", lambda *a: {**finalize(*a), "conservation": {"ok": False,
                                                                                               "unbalanced": {}}})
    with pytest.raises(RuntimeError, match="does not balance"):
        run_curate(cfg("many.jsonl"), str(tmp_path / "d"), overwrite=True)
    assert sorted(p.name for p in index.iterdir()) == before
    monkeypatch.undo()
    _write_jsonl(d / "en.jsonl", [{"id": "en", "text": "Nothing here is Japanese, so nothing is kept."}])
    run_curate(cfg("en.jsonl"), str(tmp_path / "e"), overwrite=True)  # an index of nothing kept: empty, and usable
    assert list(index.iterdir()) == []
    again = parse_config({"sources": [{"name": "web", "kind": "web", "format": "jsonl",
                                       "paths": [str(d / "one.jsonl")], "license": "x"}],
                          "dedup": {"near": {"enabled": True, "index_in": [str(index)]}}})
    assert run_curate(again, str(tmp_path / "f"))["kept_docs"] == 1


def test_the_band_index_and_the_temporary_folder_on_an_object_store(tmp_path, inputs):
    """Object stores have no folders: the index commit tested its stage folder with `exists` (False for a
    prefix), deleted the old index and never moved the new one in; and deleting a temporary folder by name
    deleted nothing there."""
    from tests.pipeline.memfs import STORE

    cfg, raw = inputs
    raw = {**raw, "dedup": {"near": {"enabled": True, "index_out": "memfs://idx"}}}
    for run in range(2):
        run_curate(parse_config(raw), f"memfs://out{run}", overwrite=run > 0)
        index = sorted(p for p in STORE if p.startswith("memfs://idx/"))
        assert index and all(p.rsplit("/", 1)[1].startswith("band-index-") for p in index), index
    assert not [p for p in STORE if "_temporary" in p]


def test_a_half_output_on_an_object_store_is_not_replaced_without_overwrite(tmp_path, inputs):
    """On an object store a folder is never an object, so an output whose _SUCCESS and stats.json were gone
    (a commit cut short) was taken for no output at all and replaced without --overwrite."""
    from tests.pipeline.memfs import STORE

    cfg, _ = inputs
    run_curate(cfg, "memfs://half")
    for name in ("memfs://half/_SUCCESS", "memfs://half/stats.json"):
        del STORE[name]
    with pytest.raises(UserError, match=r"^memfs://half already holds a curate output \(curated, rejected"):
        run_curate(cfg, "memfs://half")
