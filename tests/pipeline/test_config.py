import os
import re
import shutil
from pathlib import Path

import pytest

from pipeline.config import expand_files, load_config, parse_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _src(**over):
    src = {"name": "laws", "kind": "government", "format": "jsonl", "paths": ["x/*.jsonl"], "license": "public-domain"}
    src.update(over)
    return src


@pytest.mark.parametrize(("data", "message"), [
    ({"sources": []}, r"^sources: expected a non-empty list"),
    ({"sources": [_src()], "filtres": {}}, r"^config\.filtres: unknown key"),
    ({"sources": [_src(kind="news")]}, r"^sources\[0\]\.kind: 'news' is not one of"),
    ({"sources": [_src(format="csv")]}, r"^sources\[0\]\.format: 'csv' is not one of"),
    ({"sources": [_src(paths=[])]}, r"^sources\[0\]\.paths: expected a non-empty list"),
    ({"sources": [_src(paths=5)]}, r"^sources\[0\]\.paths: expected a non-empty list of path strings, got int$"),
    ({"sources": [_src(paths=True)]}, r"^sources\[0\]\.paths: expected a non-empty list of path strings, got bool$"),
    ({"sources": [_src(paths=None)]}, r"^sources\[0\]\.paths: expected a non-empty list of path strings, got null$"),
    ({"sources": [_src(paths={"a.jsonl": 1})]}, r"^sources\[0\]\.paths: expected a non-empty list .*, got dict$"),
    ({"sources": [_src(paths=["a", ["b"]])]}, r"^sources\[0\]\.paths: expected a non-empty list .*, got list at \[1\]$"),
    # an empty string resolved to the config's own folder, read as one quarantined "document"
    ({"sources": [_src(paths="")]}, r"^sources\[0\]\.paths: expected a non-empty list .*, got an empty string$"),
    ({"sources": [_src(paths=["a", ""])]}, r"^sources\[0\]\.paths: expected .*, got an empty string at \[1\]$"),
    ({"sources": [_src(license=None)]}, r"^sources\[0\]\.license: missing|^sources\[0\]\.license: expected"),
    ({"sources": [{"name": "a", "kind": "web", "format": "warc", "paths": "p"}]}, r"^sources\[0\]\.license: missing"),
    ({"sources": [_src(), _src()]}, r"^sources: name 'laws' is used twice"),
    ({"sources": [_src(textfield="body")]}, r"^sources\[0\]\.textfield: unknown key"),
    ({"sources": [_src(max_record_bytes="abc")]}, r"^sources\[0\]\.max_record_bytes: expected an integer >= 1"),
    ({"sources": [_src(encoding="klingon")]}, r"^sources\[0\]\.encoding: expected an ASCII-compatible Python codec"),
    ({"sources": [_src(encoding="utf-16")]}, r"^sources\[0\]\.encoding: expected an ASCII-compatible .*'utf-16'"),
    ({"sources": [_src(encoding="utf-7")]}, r"^sources\[0\]\.encoding: expected an ASCII-compatible .*'utf-7'"),
    ({"sources": [_src(encoding="undefined")]}, r"^sources\[0\]\.encoding: expected an ASCII-compatible"),
    ({"sources": [_src(max_decompressed_bytes=0)]}, r"^sources\[0\]\.max_decompressed_bytes: expected an int"),
    ({"sources": [_src(text_field=None)]}, r"^sources\[0\]\.text_field: expected a field name, got None"),
    ({"sources": [_src(id_field=[1])]}, r"^sources\[0\]\.id_field: expected a field name or null, got \[1\]"),
    ({"sources": [_src()], "limits": {"max_chars": -1}}, r"^limits\.max_chars: expected a positive integer"),
    ({"sources": [_src()], "normalize": {"nfkc": True}}, r"^normalize\.nfkc: unknown rule"),
    ({"sources": [_src()], "language": {"min_kana": 1}}, r"^language\.min_kana: unknown key"),
    ({"sources": [_src()], "dedup": {"priority": ["web"]}}, r"^dedup\.priority: expected an ordering"),
    ({"sources": [_src()], "dedup": {"priority": None}}, r"^dedup\.priority: expected an ordering"),
    # near dedup is checked while it is off too: a misspelt key left it off without a word
    ({"sources": [_src()], "dedup": {"near": {"treshold": 0.5}}}, r"^dedup\.near\.treshold: unknown key"),
    ({"sources": [_src()], "dedup": {"near": {"enabled": 0}}}, r"^dedup\.near\.enabled: must be true or false"),
    # settings without `enabled` (off by default) ran no near dedup, without a word
    ({"sources": [_src()], "dedup": {"near": {"threshold": 0.5, "unit": "char"}}},
     r"^dedup\.near\.enabled: missing; near dedup is off unless `enabled: true` \(set it, or `enabled: false` to "
     r"keep threshold, unit for later\)$"),
    ({"sources": [_src()], "dedup": {"priority": "government"}}, r"^dedup\.priority: expected an ordering"),
    ({"sources": [_src()], "limits": {"max_chars": True}}, r"^limits\.max_chars: expected a positive integer"),
    ({"sources": [_src()], "output": {"shard_bytes": "big"}}, r"^output\.shard_bytes: expected"),
    ({"sources": [_src()], "output": {"min_shards": -1}}, r"^output\.min_shards: expected"),
    ({"sources": [_src()], "output": {"min_shards": 0}}, r"^output\.min_shards: expected an integer >= 1, got 0"),
    ({"sources": [_src()], "output": {"shard_bytes": 0}}, r"^output\.shard_bytes: expected an integer >= 1"),
    ({"sources": [_src()], "normalize": {"nfc": "maybe"}}, r"^normalize\.nfc: expected true or false, got 'maybe'"),
    ({"sources": [_src()], "language": {"min_kana_fraction": 2}}, r"^language\.min_kana_fraction: expected a fraction"),
    ({"sources": [_src()], "language": {"min_letters": 1.5}}, r"^language\.min_letters: expected a non-negative int"),
    ({"sources": [_src()], "dedup": {"enabled": "no"}}, r"^dedup\.enabled: expected true or false, got 'no'"),
    ({"sources": [_src()], "dedup": {"exact": {"enabled": 0}}}, r"^dedup\.exact\.enabled: expected true or false"),
    ({"sources": [_src()], "filters": {"preset": "strict"}}, r"^filters\.preset: unknown preset 'strict'"),
    # an empty path was joined to the config's folder first, which was then read as a model, a UT1 folder...
    ({"sources": [_src()], "filters": {"quality": {"model": ""}}}, r"^filters\.quality\.model: expected a non-empty"),
    ({"sources": [_src()], "filters": {"hosts": {"blocklists": [""]}}},
     r"^filters\.hosts\.blocklists\[0\]: expected a non-empty path, got ''$"),
    ({"sources": [_src()], "filters": {"ng_words": {"extra_lists": {"x": ""}}}},
     r"^filters\.ng_words\.extra_lists\.x: expected a non-empty path"),
    ({"sources": [_src()], "filters": {"line_cleaning": {"footer": {"keywords": ""}}}},
     r"^filters\.line_cleaning\.footer\.keywords: expected a non-empty path"),
    ({"sources": [_src()], "filters": {"rules": {"min_chars": {"threshold": "x"}}}},
     r"^filters\.rules\.min_chars\.threshold: expected a number"),
])
def test_config_errors_are_one_line_naming_the_key(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(data)
    assert "\n" not in str(info.value)


def test_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text("{}\n")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("sources:\n  - {name: s, kind: web, format: jsonl, paths: [data/*.jsonl], license: x}\n")
    cfg = load_config(str(cfg_path))
    assert expand_files(cfg) == [(0, str(tmp_path / "data" / "a.jsonl"), 3)]


def test_glob_matching_nothing_names_the_source(tmp_path):
    cfg = parse_config({"sources": [_src(paths=[str(tmp_path / "none" / "*.jsonl")])]})
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.paths: no file matches .*\(source 'laws'\)"):
        expand_files(cfg)


@pytest.mark.parametrize(("text", "said"), [
    ("sources: [\n", "expected the node content, but found '<stream end>', line 2, column 1 (while parsing a flow node)"),
    # PyYAML's first line was all that was said: the context, without the cause or the place
    ("sources:\n\t- name: x\n", "found character '\\t' that cannot start any token, line 2, column 1 "
                                "(while scanning for the next token)"),
    ("a: b: c\n", "mapping values are not allowed here, line 1, column 5"),
])
def test_invalid_yaml_is_one_line_with_its_cause_and_place(tmp_path, text, said):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(bad))
    assert str(info.value) == f"config: {bad} is not valid YAML: {said}"


def test_a_key_given_twice_or_bytes_not_utf8_are_one_line(tmp_path):
    """PyYAML keeps the last of two equal keys, so `kind: web` then `kind: academic` lost the first silently;
    a non-UTF-8 file raised UnicodeDecodeError. A YAML merge (`<<: *base`) is not a repeat."""
    twice = tmp_path / "twice.yaml"
    twice.write_text("sources:\n  - name: a\n    kind: web\n    kind: academic\n")
    with pytest.raises(ConfigError, match=r"^config: key 'kind' given twice \(line 4\)$"):
        load_config(str(twice))
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("sources: [{name: caf\u00e9}]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^config: .*latin1.yaml is not UTF-8 text \(byte 20\)$"):
        load_config(str(latin1))
    (tmp_path / "laws.jsonl").write_text('{"id": "1", "text": "x"}\n')
    merged = tmp_path / "merged.yaml"
    merged.write_text("sources:\n  - &base {name: a, kind: government, format: jsonl, license: CC0, paths: [laws.jsonl]}\n"
                      "  - <<: *base\n    name: b\n")
    assert [src.name for src in load_config(str(merged)).sources] == ["a", "b"]


def test_filter_files_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "data" / "models" / "quality.ftz", tmp_path / "models" / "q.ftz")  # checked while off too
    cfg = parse_config({"sources": [_src()], "filters": {"quality": {"model": "models/q.ftz"}, "enabled": False}},
                       base_dir=str(tmp_path))
    assert cfg.filters["quality"]["model"] == str(tmp_path / "models" / "q.ftz")


def test_a_text_encoding_is_stored_by_its_canonical_codec_name():
    """Readers compare the name per line or block (`decode_text`), so the config looks it up once."""
    cfg = parse_config({"sources": [_src(format="text", encoding="Shift-JIS"), _src(name="u", encoding="UTF8")]})
    assert [s.encoding for s in cfg.sources] == ["shift_jis", "utf-8"]


def test_paths_match_like_a_shell_would(tmp_path, monkeypatch):
    """Beam's matching found nothing for a bare `*.jsonl` (config in the current folder) and read `[1]` in an
    existing folder name as a character class; a file name that is not UTF-8 crashed the graph's construction."""
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "cur [1]").mkdir()
    (tmp_path / "cur [1]" / "b.jsonl").write_text('{"text": "y"}\n')
    monkeypatch.chdir(tmp_path)
    cfg = parse_config({"sources": [_src(paths=["*.jsonl", "cur [1]/b.jsonl"])]}, base_dir="")
    assert [path for _, path, _ in expand_files(cfg)] == [f"{tmp_path}/a.jsonl", f"{tmp_path}/cur [1]/b.jsonl"]
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "nowhere")  # Beam left it out silently: its reader reports it
    assert [(path, size) for _, path, size in expand_files(cfg)] == [
        (f"{tmp_path}/a.jsonl", 14), (f"{tmp_path}/cur [1]/b.jsonl", 14), (f"{tmp_path}/gone.jsonl", 0)]
    with open(os.fsencode(tmp_path / "c") + b"\xff.jsonl", "wb") as fh:
        fh.write(b'{"text": "z"}\n')
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.paths: the file name '.*/c\\udcff.jsonl' is not UTF-8; rename"):
        expand_files(cfg)


@pytest.mark.parametrize(("text", "message"), [
    ("? [a, b]\n: 1\n", r"^config: key \['a', 'b'\] is not a string \(line 1, list\)$"),
    ("? {a: 1}\n: 1\n", r"^config: key \{'a': 1\} is not a string \(line 1, dict\)$"),
    ("sources:\n  - name: a\n    5: x\n", r"^config: key 5 is not a string \(line 3, int\)$"),
])
def test_a_mapping_key_that_is_not_a_string_is_one_line(tmp_path, text, message):
    """A list or mapping as a key (YAML's `? ` complex key) crashed the duplicate-key check with TypeError."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


@pytest.mark.parametrize(("pattern", "name", "what"), [
    ("d", "d", "a directory"), ("fifo.jsonl", "fifo.jsonl", "a FIFO"), ("*.jsonl", "fifo.jsonl", "a FIFO"),
    ("zero.txt", "zero.txt", "a character device"),
])
def test_only_regular_files_are_inputs(tmp_path, pattern, name, what):
    """A folder became a quarantined "document"; a FIFO, or a symlink to /dev/zero, hung the run forever."""
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    cfg = parse_config({"sources": [_src(paths=[pattern])]}, base_dir=str(tmp_path))
    path = re.escape(str(tmp_path / name))
    with pytest.raises(ConfigError, match=rf"^sources\[0\]\.paths: {path} is not a regular file \({what}; source 'laws'\)$"):
        expand_files(cfg)


def test_config_relative_paths_do_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    """A path-based source_id (XML records, `id_field: null`) carried the folder `jcorpus` ran in, so the same
    config gave other ids, and dedup kept other copies, from another folder. Paths are now absolute."""
    (tmp_path / "cfg").mkdir()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "cfg" / "c.yaml").write_text(
        "sources: [{name: a, kind: web, format: jsonl, license: x, paths: [../in/x.jsonl]}]\n")
    seen = []
    for folder, config in ((tmp_path, "cfg/c.yaml"), (tmp_path / "cfg", "c.yaml"), (Path("/"), tmp_path / "cfg/c.yaml")):
        monkeypatch.chdir(folder)
        seen.append(load_config(str(config)).sources[0].paths)
    assert seen == [(str(tmp_path / "in" / "x.jsonl"),)] * 3


def test_one_file_named_twice_in_a_source_is_read_once(tmp_path):
    """Another spelling of the same file (`in/x` beside `/abs/in/x`, or a symlink) read it twice: 10 lines
    became 20 inputs, 10 of them dup_exact."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_text('{"text": "x"}\n')
    os.symlink(tmp_path / "in" / "x.jsonl", tmp_path / "in" / "link.jsonl")
    raw = {"sources": [{"name": "a", "kind": "web", "format": "jsonl", "license": "x",
                        "paths": ["in/x.jsonl", str(tmp_path / "in" / "x.jsonl"), "in/./x.jsonl", "in/link.jsonl"]},
                       {"name": "b", "kind": "web", "format": "jsonl", "license": "x", "paths": ["in/x.jsonl"]}]}
    files = expand_files(parse_config(raw, str(tmp_path)))
    assert [(i, path) for i, path, _ in files] == [(0, str(tmp_path / "in" / "x.jsonl")),
                                                   (1, str(tmp_path / "in" / "x.jsonl"))]
