"""Numeric command-line options: out of range is a one-line usage error naming the option."""
import argparse

import pytest

from trainer_bridge.cliargs import MAX_SEQ_LEN, OneLineParser, integer, number, output_file, output_folder


def _parse(kind, text):
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    parser.add_argument("--x", type=kind)
    return parser.parse_args(["--x", text]).x


@pytest.mark.parametrize(("kind", "text", "value"), [
    (integer(1), "1", 1), (integer(0, 3), "3", 3), (number(0, 0.9), "0.9", 0.9), (number(0), "0", 0.0),
    (number(0, above=True), "1e-9", 1e-9),
])
def test_values_in_range_pass(kind, text, value):
    assert _parse(kind, text) == value


@pytest.mark.parametrize(("kind", "text", "message"), [
    (integer(1), "0", "expected an integer >= 1, got 0"),
    (integer(1), "1.5", "expected an integer, got '1.5'"),
    (integer(0, 3), "4", "expected an integer in [0, 3], got 4"),
    (number(0, 0.9), "2", "expected a number in [0, 0.9], got 2"),
    (number(0, above=True), "0", "expected a number > 0, got 0"),
    (number(0), "nan", "expected a number >= 0, got nan"),
    (number(0), "inf", "expected a number >= 0, got inf"),
    (number(0), "x", "expected a number, got 'x'"),
])
def test_values_out_of_range_name_the_bound(kind, text, message):
    with pytest.raises(argparse.ArgumentError, match=f"argument --x: {message}".replace("[", r"\[").replace("(", r"\(")):
        _parse(kind, text)


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("")
    with pytest.raises(argparse.ArgumentError, match=f"argument --x: {afile} is a file, not a folder"):
        _parse(output_folder, str(afile))
    assert _parse(output_folder, str(tmp_path / "new")) == str(tmp_path / "new")
    assert _parse(output_folder, "gs://bucket/out") == "gs://bucket/out"  # checked by Beam when written


def test_an_output_file_that_is_a_folder_is_refused(tmp_path):
    """`quality train --out DIR` used to run MeCab over every document, then fail in fastText's save."""
    with pytest.raises(argparse.ArgumentError, match=f"argument --x: {tmp_path} is a folder, not a file"):
        _parse(output_file, str(tmp_path))
    assert _parse(output_file, str(tmp_path / "m.ftz")) == str(tmp_path / "m.ftz")


@pytest.mark.parametrize("kind", [output_folder, output_file])
def test_an_empty_output_path_is_refused(kind):
    """`--out ""` wrote into the current folder (pack, tokenizer train, jcorpus-train)."""
    with pytest.raises(argparse.ArgumentError, match="argument --x: expected a path, got ''"):
        _parse(kind, "")


def test_one_line_parser_prints_no_usage_block(capsys):
    """jcorpus-train printed its 12-line usage block before the error; a subcommand's parser is one line too."""
    parser = OneLineParser(prog="tool")
    parser.add_argument("--steps", type=integer(1))
    sub = parser.add_subparsers().add_parser("sample")
    sub.add_argument("--tokens", type=integer(1))
    for argv, message in ((["--steps", "0"], "argument --steps: expected an integer >= 1, got 0"),
                          (["sample", "--tokens", "x"], "argument --tokens: expected an integer, got 'x'")):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        prog = "tool sample" if argv[0] == "sample" else "tool"  # the subcommand, as jcorpus names its own
        assert info.value.code == 2 and capsys.readouterr().err == f"{prog}: error: {message}\n"


def test_pack_seq_len_has_an_upper_bound(tmp_path, capsys):
    """99999999999 was a numpy ArrayMemoryError traceback; 1000000000 wrote a 1.9 GB shard of padding."""
    from pipeline.cli import main

    argv = ["pack", "--input", str(tmp_path), "--tokenizer", str(tmp_path / "t.model"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--seq-len", str(MAX_SEQ_LEN + 1)]) == 2
    assert capsys.readouterr().err == "jcorpus pack: error: --seq-len 1048577 is more than 1,048,576 tokens\n"
