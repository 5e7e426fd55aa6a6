"""The start-up shortcuts give Beam's own answers: the state/timer lookup for every step jcorpus builds, for
stateful steps and for a method that names a parameter twice (and it stands aside if a base method changes);
the kept options views for every option of every options class, through writes from any view."""
from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TypeOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import core, userstate
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from pipeline import beam_startup
from pipeline.config import expand_files, load_config
from pipeline.curate import build
from pipeline.runner import new_pipeline

BEAM_GET_DOFN_SPECS = getattr(beam_startup.get_dofn_specs, "replaces", userstate.get_dofn_specs)
BEAM_VIEW_AS = getattr(PipelineOptions.view_as, "__wrapped__", PipelineOptions.view_as)
ROOT = Path(__file__).resolve().parents[2]


COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())
FLUSH = TimerSpec("flush", beam.TimeDomain.WATERMARK)
COUNT_PARAM, FLUSH_PARAM = beam.DoFn.StateParam(COUNT), beam.DoFn.TimerParam(FLUSH)


class CountPerKey(beam.DoFn):
    def process(self, kv, count=COUNT_PARAM, flush=FLUSH_PARAM):
        count.write((count.read() or 0) + 1)
        flush.set(0)

    @on_timer(FLUSH)
    def flushed(self, key=beam.DoFn.KeyParam, count=COUNT_PARAM):
        yield key, count.read()


class TwoStates(beam.DoFn):
    def process(self, kv, a=COUNT_PARAM, b=COUNT_PARAM):
        yield kv


class HookedStartBundle(beam.DoFn):
    """Beam reads `_inspect_start_bundle` instead of the (inherited, unchanged) start_bundle's signature."""

    def _inspect_start_bundle(self):
        return ["count"], [COUNT_PARAM]

    def process(self, kv):
        yield kv


def _curate_steps() -> list[beam.DoFn]:
    """Every DoFn of the demo curate's graph (filters and near dedup on), built but not run."""
    cfg = load_config(str(ROOT / "examples" / "demo.yaml"))
    fns: list[beam.DoFn] = []

    class Steps(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node) -> None:
            if isinstance(node.transform, beam.ParDo):
                fns.append(node.transform.fn)

    with new_pipeline(None, PipelineOptions(), None) as p:  # never run: Beam would leave its temp folder
        build(p, cfg, expand_files(cfg), "/nonexistent/tmp")
        p.visit(Steps())
    return fns


@pytest.fixture(autouse=True)
def _patched(monkeypatch):
    monkeypatch.setattr(userstate, "get_dofn_specs", BEAM_GET_DOFN_SPECS)
    beam_startup.patch()
    assert userstate.get_dofn_specs is beam_startup.get_dofn_specs


def test_every_curate_step_and_stateful_steps_get_beams_answer(beam_leftovers):
    steps = [*_curate_steps(), CountPerKey(), HookedStartBundle(), beam.transforms.util._pardo_group_into_batches(
        VarIntCoder(), 10, None, None)]
    assert len(steps) > 100
    for fn in steps:
        assert beam_startup.get_dofn_specs(fn) == BEAM_GET_DOFN_SPECS(fn), fn
    state, timers = beam_startup.get_dofn_specs(CountPerKey())
    assert state == {COUNT} and timers == {FLUSH}
    assert beam_leftovers() == []  # the graph built but never run


def test_a_state_named_twice_is_the_same_error():
    step = TwoStates()
    with pytest.raises(ValueError) as beams:
        BEAM_GET_DOFN_SPECS(step)
    with pytest.raises(ValueError) as ours:
        beam_startup.get_dofn_specs(step)
    assert str(ours.value) == str(beams.value)


def test_a_stateful_step_still_runs_with_its_state_and_timer():
    with beam.Pipeline("FnApiRunner") as p:
        counts = (p | beam.Create([("a", 1), ("b", 1), ("a", 1)]) | beam.ParDo(CountPerKey()))
        assert_that(counts, equal_to([("a", 2), ("b", 1)]))


def test_the_shortcut_stands_aside_when_a_base_method_takes_a_state(monkeypatch):
    monkeypatch.setattr(userstate, "get_dofn_specs", BEAM_GET_DOFN_SPECS)
    monkeypatch.setattr(core.DoFn, "on_extra", lambda self, c=COUNT_PARAM: None,
                        raising=False)
    beam_startup.patch()
    assert userstate.get_dofn_specs is BEAM_GET_DOFN_SPECS


def _every_option(options: PipelineOptions, view_as) -> dict[str, object]:
    """{class.option: value} over every registered options class, read through `view_as`."""
    return {f"{cls.__name__}.{name}": getattr(view_as(options, cls), name)
            for cls in PipelineOptions.__subclasses__() for name in view_as(options, cls)._visible_option_list()}


def test_kept_views_read_and_write_what_fresh_views_do():
    options = PipelineOptions(["--runtime_type_check", "--experiments=a", "--job_name=j"], temp_location="/t")
    kept = PipelineOptions.view_as
    assert kept(options, TypeOptions) is kept(options, TypeOptions)
    assert kept(options, TypeOptions).runtime_type_check and kept(options, StandardOptions).streaming is False
    kept(options, StandardOptions).streaming = True  # a write through one view is seen by every view
    BEAM_VIEW_AS(options, TypeOptions).pipeline_type_check = False
    assert kept(options, StandardOptions).streaming and not kept(options, TypeOptions).pipeline_type_check
    assert _every_option(options, kept) == _every_option(options, BEAM_VIEW_AS)
    assert set(vars(options)) == {"_flags", "_all_options", "_visible_options"}  # what pickling sees


def test_a_view_is_rebuilt_when_its_options_object_is_given_new_values():
    options = PipelineOptions(["--streaming"])
    assert PipelineOptions.view_as(options, StandardOptions).streaming
    options._all_options = {}
    assert PipelineOptions.view_as(options, StandardOptions).streaming  # read again from the flags
    assert PipelineOptions.view_as(options, StandardOptions)._all_options is options._all_options
