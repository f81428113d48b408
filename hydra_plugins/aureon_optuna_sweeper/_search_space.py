"""Hydra's sweep overrides as Optuna distributions: the official plugin's grammar, checked.

``key=interval(a,b)`` is a float range, ``int(interval(a,b))`` an integer one,
``tag(log, interval(a,b))`` samples on a log scale; ``choice(...)`` and
``a,b,c`` are categorical; ``range(a,b[,step])`` is a stepped integer or float
range (``stop`` excluded, as in Python). A space that cannot be sampled (an
empty or reversed range, a log range that reaches 0, an unknown tag, a value
Optuna cannot store) is refused with the parameter's name before any trial runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from aureon.exceptions import ConfigError

KNOWN_TAGS = frozenset({"log"})
_PRIMITIVE = (type(None), bool, int, float, str)


class SearchSpaceError(ConfigError):
    """A sweep parameter whose search space cannot be sampled."""


@dataclass(frozen=True)
class Parameter:
    """One searched key: its Optuna distribution and, for a categorical, each choice's override text."""

    key: str
    distribution: BaseDistribution
    choice_texts: tuple[str, ...] = ()

    def override(self, value: object) -> str:
        """The Hydra override that sets this key to ``value`` (a value the distribution sampled)."""
        if isinstance(self.distribution, CategoricalDistribution):
            return f"{self.key}={self.choice_texts[self.distribution.choices.index(value)]}"
        return f"{self.key}={value!r}"


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters and the overrides every trial gets unchanged."""

    parameters: tuple[Parameter, ...]
    fixed: tuple[str, ...]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.key: p.distribution for p in self.parameters}

    def overrides(self, params: dict[str, object]) -> list[str]:
        """A trial's overrides: the fixed ones, then one per searched key."""
        return [*self.fixed, *(p.override(params[p.key]) for p in self.parameters)]


def _fail(key: str, text: str, expected: str) -> SearchSpaceError:
    return SearchSpaceError(f"hydra.sweeper search space {key}={text}: expected {expected}")


def _tags(key: str, text: str, tags: set[str]) -> bool:
    unknown = sorted(set(tags) - KNOWN_TAGS)
    if unknown:
        raise _fail(key, text, f"tags among {sorted(KNOWN_TAGS)}, got {unknown}")
    return "log" in tags


def _number(key: str, text: str, value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(key, text, f"a finite number as the {what}, got {value!r}")
    return value


def interval_distribution(key: str, text: str, sweep: IntervalSweep) -> BaseDistribution:
    """``interval(a,b)``: FloatDistribution, or IntDistribution when both ends are integers (``int(...)``)."""
    log = _tags(key, text, sweep.tags)
    low = _number(key, text, sweep.start, "interval's start")
    high = _number(key, text, sweep.end, "interval's end")
    if not low < high:
        raise _fail(key, text, f"an interval whose start is below its end, got [{low}, {high}] (empty)")
    if log and low <= 0:
        raise _fail(key, text, f"a log-scaled interval above 0, got start {low}")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def range_distribution(key: str, text: str, sweep: RangeSweep) -> BaseDistribution:
    """``range(start, stop[, step])``: the values start, start + step, ... below stop."""
    log = _tags(key, text, sweep.tags)
    if log:
        raise _fail(key, text, "no 'log' tag on a stepped range(...) (use tag(log, interval(a,b)))")
    start = _number(key, text, sweep.start, "range's start")
    stop = _number(key, text, sweep.stop, "range's stop")
    step = _number(key, text, sweep.step, "range's step")
    if step <= 0 or not start < stop:
        raise _fail(key, text, f"start < stop and step > 0, got start {start}, stop {stop}, step {step} (empty)")
    count = math.ceil((stop - start) / step)
    last = start + (count - 1) * step
    if all(isinstance(v, int) for v in (start, stop, step)):
        return IntDistribution(int(start), int(last), step=int(step))
    if count == 1:
        return CategoricalDistribution([float(start)])
    return FloatDistribution(float(start), float(last), step=float(step))


def choice_parameter(key: str, text: str, sweep: ChoiceSweep) -> Parameter:
    """``choice(a,b,...)`` or ``a,b,...``: categorical; lists and dicts are choices by their override text."""
    _tags(key, text, sweep.tags)
    if not sweep.list:
        raise _fail(key, text, "at least one choice")
    values: list[object] = []
    texts: list[str] = []
    for element in sweep.list:
        element_text = Override._get_value_element_as_str(element)
        value = element if isinstance(element, _PRIMITIVE) else element_text
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(key, text, f"finite choices, got {value!r}")
        if value in values:
            raise _fail(key, text, f"distinct choices, got {element_text!r} twice")
        values.append(value)
        texts.append(element_text)
    return Parameter(key, CategoricalDistribution(values), tuple(texts))  # type: ignore[arg-type]


def parameter_for(override: Override) -> Parameter:
    """The Optuna parameter of one sweep override; an unsupported sweep is a SearchSpaceError."""
    key = override.get_key_element()
    text = (override.input_line or "").partition("=")[2] or repr(override.value())
    value = override.value()
    if isinstance(value, IntervalSweep):
        return Parameter(key, interval_distribution(key, text, value))
    if isinstance(value, RangeSweep):
        return Parameter(key, range_distribution(key, text, value))
    if isinstance(value, ChoiceSweep):
        return choice_parameter(key, text, value)
    raise _fail(key, text, "interval(a,b), int(interval(a,b)), tag(log, interval(a,b)), choice(...) or range(...)")


def build_search_space(overrides: Sequence[Override]) -> SearchSpace:
    """Sweep overrides become parameters, plain ones stay fixed; a key given twice keeps its last value."""
    by_key: dict[str, Override] = {}
    for override in overrides:
        by_key.pop(override.get_key_element(), None)
        by_key[override.get_key_element()] = override
    parameters = []
    fixed = []
    for key, override in by_key.items():
        if override.is_sweep_override():
            parameters.append(parameter_for(override))
        else:
            fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
    return SearchSpace(parameters=tuple(parameters), fixed=tuple(fixed))
