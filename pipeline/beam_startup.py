"""Two costs of building a Beam 2.77 graph, paid on every run before any document is read.

Each step of a graph asks Beam two questions several times over, and Beam answers from scratch each time:
- "does this DoFn use state or timers?" (`userstate.get_dofn_specs`): the signature of each of the DoFn's
  ~30 methods is read, 4 times per step, 1,328 times for the demo curate (1.0 of its 4.9 s);
- "which type-check options are set?" (`PipelineOptions.view_as(TypeOptions)`): a new argument parser is
  built and the flags parsed again, ~1,000 times for the demo curate (0.57 ms each).
`patch` answers both with the same result for less: the methods a DoFn inherits unchanged from `beam.DoFn`
declare no state or timer, so only the step's own methods are read (a Beam release that gave a base method
such a parameter turns this off); and an options object keeps one view per options class, which is what
every fresh view is anyway, since all views of an object share its flags and its option values.
"""
from __future__ import annotations

import types
import weakref
from typing import Any

_BASE_METHODS: dict[str, Any] = {}  # name -> the function beam.DoFn resolves it to
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # options object -> {options class: view}


def _resolve(cls: type, name: str) -> Any:
    """The class attribute `name` resolves to on `cls` (what a bound method of an instance wraps)."""
    return next((vars(c)[name] for c in cls.__mro__ if name in vars(c)), None)


def _inherited(dofn: Any, name: str) -> bool:
    """`name` is beam.DoFn's own method, unchanged on `dofn`."""
    return name in _BASE_METHODS and name not in vars(dofn) and _resolve(type(dofn), name) is _BASE_METHODS[name]


def _own_methods(dofn: Any) -> list[str]:
    """Names of the bound methods of `dofn` that are not beam.DoFn's own, unchanged."""
    names = []
    for name in dir(dofn):
        if _inherited(dofn, name) and (not hasattr(dofn, f"_inspect_{name}") or _inherited(dofn, f"_inspect_{name}")):
            continue  # Beam reads an `_inspect_<name>` hook instead of the method when there is one
        if isinstance(getattr(dofn, name, None), types.MethodType):
            names.append(name)
    return names


def get_dofn_specs(dofn: Any) -> tuple[set, set]:
    """(state specs, timer specs) of `dofn`, as `userstate.get_dofn_specs` gives them."""
    from apache_beam.transforms import core

    state_specs, timer_specs = set(), set()
    for name in _own_methods(dofn):
        _, defaults = core.get_function_arguments(dofn, name)
        param_ids = [d.param_id for d in defaults if isinstance(d, core._DoFnParam)]
        if len(param_ids) != len(set(param_ids)):
            raise ValueError(f"DoFn {dofn!r} has duplicate {name} method parameters: {param_ids}.")
        state_specs.update(d.state_spec for d in defaults if isinstance(d, core._StateDoFnParam))
        timer_specs.update(d.timer_spec for d in defaults if isinstance(d, core._TimerDoFnParam))
    return state_specs, timer_specs


def _patch_dofn_specs() -> None:
    from apache_beam.transforms import core, userstate

    if userstate.get_dofn_specs is get_dofn_specs:
        return
    base = core.DoFn()
    methods = [n for n in dir(base) if isinstance(getattr(base, n, None), types.MethodType)]
    if any(isinstance(d, core._DoFnParam) for n in methods for d in core.get_function_arguments(base, n)[1]):
        return  # a base method now takes a DoFn parameter: the shortcut would miss it
    _BASE_METHODS.update((n, _resolve(core.DoFn, n)) for n in methods)
    get_dofn_specs.replaces = userstate.get_dofn_specs
    userstate.get_dofn_specs = get_dofn_specs


def _patch_view_as() -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    view_as = PipelineOptions.view_as
    if getattr(view_as, "kept", False):
        return

    def kept_view_as(self, cls):
        views = _VIEWS.setdefault(self, {})
        view = views.get(cls)
        if view is None or view._all_options is not self._all_options or view._flags is not self._flags:
            view = views[cls] = view_as(self, cls)
        return view

    kept_view_as.kept, kept_view_as.__wrapped__ = True, view_as
    PipelineOptions.view_as = kept_view_as


def patch() -> None:
    _patch_dofn_specs()
    _patch_view_as()
