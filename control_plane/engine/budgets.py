"""What one run of a flow may spend, and the meter that holds it to that.

Flow definitions come from untrusted tenants, and a JMESPath expression can cost far more than
its text suggests: `[@, @]` holds two references to its input, so a chain of them doubles the
*logical* size of a value (what walking or serialising it costs) while its memory barely grows.
Every evaluation is therefore counted in steps (one per AST node visited, plus the work done on
values), and every value an expression builds is measured before anything walks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

#: The values of `BudgetExceeded.budget`.
BUDGET_NAMES: Final = frozenset(
    {
        "expression_steps",
        "value_size",
        "bucket_size",
        "variables_size",
        "callback_size",
        "shape_log",
    }
)

#: How often, in steps, a meter with a deadline reads the clock (~1 ms of evaluation).
DEADLINE_CHECK_STEPS: Final = 4096

# Stands for "no limit" so that the meter's hot path stays a plain int comparison.
_NO_LIMIT: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class Budgets:
    """The limits of one run (each can be set with BOOMERANG_BUDGET_<NAME>, control_plane.config).

    A step is one AST node visited, or a node of a value measured, or 16 bytes serialised or
    compared: about 0.3 µs of evaluation.
    """

    #: Steps one evaluation of one expression may take (~60 ms).
    expression_steps: int = 200_000
    #: Steps all the evaluations (and measures) of one run may take together (~1.5 s).
    run_steps: int = 5_000_000
    #: Size, as compact JSON, of any single value an expression produces or handles.
    value_bytes: int = 8 << 20
    #: Size of the bucket after each shape.
    bucket_bytes: int = 8 << 20
    #: Size of the run's variables after each set_variables shape.
    variables_bytes: int = 1 << 20
    #: Size of the callback body.
    callback_bytes: int = 4 << 20
    #: Entries in the run's shape log (how many shapes one run may execute).
    shape_log: int = 1_000
    #: Nesting levels of any value: `[1]` has one, `[[1]]` two.
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"budget {name} must be a positive integer, not {value!r}")


class BudgetExceeded(Exception):
    """The run tried to spend more than one of its budgets; `budget` says which."""

    def __init__(self, budget: str, message: str | None = None) -> None:
        if budget not in BUDGET_NAMES:
            raise ValueError(f"unknown budget {budget!r}")
        super().__init__(message or f"the run exceeded its {budget} budget")
        self.budget = budget


class DeadlinePassed(Exception):
    """The run's wall-clock deadline passed during evaluation."""


class SliceExhausted(Exception):
    """The meter's slice is used up. Not a failure: the shape is to be run again elsewhere, with
    the full budget, from where it started."""


def _too_deep(max_depth: int) -> BudgetExceeded:
    return BudgetExceeded("value_size", f"a value is nested deeper than {max_depth} levels")


_SIZE_MESSAGES: Final = {
    "value_size": "a value exceeded its size budget of {} bytes",
    "bucket_size": "the bucket exceeded its size budget of {} bytes",
    "variables_size": "the variables exceeded their size budget of {} bytes",
    "callback_size": "the callback body exceeded its size budget of {} bytes",
}


def _too_large(budget: str, limit: int) -> BudgetExceeded:
    template = _SIZE_MESSAGES.get(budget, f"{budget} exceeded its budget of {{}} bytes")
    return BudgetExceeded(budget, template.format(limit))


class Meter:
    """Counts the work of one run.

    `charge` runs once per AST node visited, so its common path is one addition and one
    comparison: every limit (the evaluation's, the run's, the slice's, the next clock reading)
    is kept as an absolute step count, and `_limit` is the nearest of them.
    """

    __slots__ = (
        "_deadline_check",
        "_eval_limit",
        "_eval_start",
        "_limit",
        "_slice_end",
        "_steps",
        "budgets",
        "deadline",
    )

    def __init__(self, budgets: Budgets, deadline: float | None = None) -> None:
        self.budgets = budgets
        #: A time.monotonic() value, or None.
        self.deadline = deadline
        self._steps = 0
        self._eval_start = 0
        self._eval_limit = _NO_LIMIT
        self._slice_end = _NO_LIMIT
        self._deadline_check = DEADLINE_CHECK_STEPS if deadline is not None else _NO_LIMIT
        self._limit = 0
        self._rearm()

    @property
    def run_steps(self) -> int:
        """Steps the run has taken so far."""
        return self._steps

    @run_steps.setter
    def run_steps(self, steps: int) -> None:
        # Restoring a checkpoint moves the run total only: an open evaluation or slice keeps
        # what it had left, so every relative limit moves along with it.
        delta = steps - self._steps
        self._steps = steps
        self._eval_start += delta
        if self._eval_limit != _NO_LIMIT:
            self._eval_limit += delta
        if self._slice_end != _NO_LIMIT:
            self._slice_end += delta
        if self._deadline_check != _NO_LIMIT:
            self._deadline_check += delta
        self._rearm()

    @property
    def evaluation_steps(self) -> int:
        """Steps taken since the last `begin_evaluation`."""
        return self._steps - self._eval_start

    def charge(self, n: int) -> None:
        """Adds `n` steps to the current evaluation and the run.

        Raises BudgetExceeded("expression_steps"), DeadlinePassed or SliceExhausted."""
        self._steps += n
        if self._steps > self._limit:
            self._checkpoint()

    def begin_evaluation(self) -> None:
        self._eval_start = self._steps
        self._eval_limit = self._steps + self.budgets.expression_steps
        if self._eval_limit < self._limit:
            self._limit = self._eval_limit

    def end_evaluation(self) -> None:
        """Outside an evaluation (measuring a bucket, say) only the run's limit applies."""
        # `_limit` may stay lower than the nearest limit now: `_checkpoint` then finds nothing
        # passed and moves it. Only what lowers a limit must lower `_limit` at once.
        self._eval_limit = _NO_LIMIT

    def open_slice(self, steps: int) -> None:
        """Allows only `steps` more steps (work small enough for an event loop) until
        `close_slice`; past them, `charge` raises SliceExhausted and closes the slice."""
        self._slice_end = self._steps + steps
        self._rearm()

    def close_slice(self) -> None:
        self._slice_end = _NO_LIMIT

    def _rearm(self) -> None:
        self._limit = min(
            self._eval_limit, self.budgets.run_steps, self._slice_end, self._deadline_check
        )

    def _checkpoint(self) -> None:
        steps, budgets = self._steps, self.budgets
        # Budgets first: a run that is over one fails wherever it is run again.
        if steps > self._eval_limit:
            raise BudgetExceeded(
                "expression_steps",
                f"expression evaluation exceeded its budget of {budgets.expression_steps} steps",
            )
        if steps > budgets.run_steps:
            raise BudgetExceeded(
                "expression_steps",
                f"the run's expressions exceeded their budget of {budgets.run_steps} steps",
            )
        if steps > self._deadline_check:
            if time.monotonic() >= self.deadline:  # type: ignore[operator]
                raise DeadlinePassed("the run's deadline passed during evaluation")
            self._deadline_check = steps + DEADLINE_CHECK_STEPS
        if steps > self._slice_end:
            self._slice_end = _NO_LIMIT
            self._rearm()
            raise SliceExhausted("the inline slice of expression steps is used up")
        self._rearm()


def value_size(
    value: Any, limit: int, budget: str, meter: Meter | None = None, max_depth: int = 64
) -> int:
    """The approximate size in bytes of `value` as compact JSON.

    Raises BudgetExceeded(budget) as soon as the size passes `limit`, and
    BudgetExceeded("value_size") past `max_depth` levels of nesting. Shared containers are
    measured once, so the cost is O(distinct containers) even for a value whose logical size
    is astronomical; `meter` is charged one step per node visited.
    """
    return ValueSizer(limit, budget, meter, max_depth).measure(value)


# A container is remembered only when it is at least this large, so the memo stays small; one
# that is not remembered holds at most ~32 nodes, which is all measuring it again costs.
_MEMO_MIN_BYTES: Final = 64
# Integers beyond this are not turned into text (which is slow, and refused past 4300 digits).
_BIG_INT: Final = 10**18


class ValueSizer:
    """Measures values for `value_size`. One sizer can measure several values with a shared
    memo (the evaluator keeps one per evaluation), as long as none of them is mutated while
    it is remembered (`forget` empties the memo).

    With `escaped`, non-ASCII strings count 6 bytes a character, as `json.dumps` writes them
    with its default ensure_ascii (JMESPath's to_string does). Characters outside the BMP take
    12 even so, and control characters 6: whoever serialises must still check the result.
    """

    __slots__ = ("_deepest", "_memo", "budget", "escaped", "limit", "max_depth", "meter")

    def __init__(
        self,
        limit: int,
        budget: str,
        meter: Meter | None = None,
        max_depth: int = 64,
        escaped: bool = False,
    ) -> None:
        self.limit = limit
        self.budget = budget
        self.meter = meter
        self.max_depth = max_depth
        self.escaped = escaped
        # id → (size, height, the container): holding the container keeps its id from being
        # reused by another object while the memo lives.
        self._memo: dict[int, tuple[int, int, Any]] = {}
        self._deepest = 0  # the deepest level reached under the container being measured

    def forget(self) -> None:
        self._memo.clear()

    def measure(self, value: Any) -> int:
        """The size of `value`; raises BudgetExceeded past the limit or the depth."""
        self._deepest = 0
        try:
            if type(value) is dict or type(value) is list:
                return self._container(value, 1, 0, 1)
            if self.meter is not None:
                self.meter.charge(1)
            size = self._other(value, 1, 0)
        except RecursionError:  # only with a max_depth beyond the interpreter's stack
            raise _too_deep(self.max_depth) from None
        if size > self.limit:
            raise _too_large(self.budget, self.limit)
        return size

    def _container(self, value: Any, level: int, total: int, own: int = 0) -> int:
        """Adds the size of a list or dict at nesting `level` to `total` and returns the sum.
        `own` is 1 for the value measured, whose parent has not charged for it."""
        memo = self._memo
        hit = memo.get(id(value))
        if hit is not None:
            deepest = level + hit[1] - 1
            if deepest > self.max_depth:
                raise _too_deep(self.max_depth)
            if deepest > self._deepest:
                self._deepest = deepest
            total += hit[0]
            if total > self.limit:
                raise _too_large(self.budget, self.limit)
            return total
        if level > self.max_depth:
            raise _too_deep(self.max_depth)
        n = len(value)
        meter = self.meter
        if meter is not None:
            # Every item at once, before the walk: a container too long fails straight away.
            meter.charge(n + own)
        start = total
        outer_deepest = self._deepest
        self._deepest = level
        total += n + 1 if n else 2  # brackets and commas
        if isinstance(value, dict):
            try:
                total += sum(map(len, value)) + 3 * n  # "key":
            except TypeError:  # a key that is not a string: as JSON would write it
                total += sum(len(str(key)) + 3 for key in value)
            items = value.values()
        else:
            items = value
        limit, escaped, child = self.limit, self.escaped, level + 1
        for item in items:
            kind = type(item)
            if kind is str:
                total += len(item) + 2
                if escaped and not item.isascii():
                    total += 5 * len(item)
            elif kind is dict or kind is list:
                total = self._container(item, child, total)
                continue  # checked inside
            elif kind is int:
                total += len(repr(item)) if -_BIG_INT < item < _BIG_INT else _int_size(item)
            elif kind is float:
                total += len(repr(item))
            elif item is None or item is True:
                total += 4
            elif item is False:
                total += 5
            else:
                total = self._other(item, child, total)
            if total > limit:
                raise _too_large(self.budget, limit)
        if total > limit:  # an empty container
            raise _too_large(self.budget, limit)
        if total - start >= _MEMO_MIN_BYTES:
            memo[id(value)] = (total - start, self._deepest - level + 1, value)
        if outer_deepest > self._deepest:
            self._deepest = outer_deepest
        return total

    def _other(self, item: Any, level: int, total: int) -> int:
        """The slow path: scalars at the top, subclasses, and what JSON cannot hold."""
        if isinstance(item, str):
            size = len(item) + 2
            if self.escaped and not item.isascii():
                size += 5 * len(item)
            return total + size
        if isinstance(item, list | dict):
            return self._container(item, level, total)
        if isinstance(item, tuple):  # JSON writes tuples as arrays
            return self._container(list(item), level, total)
        if item is None or item is True:
            return total + 4
        if item is False:
            return total + 5
        if isinstance(item, int):
            return total + (len(repr(item)) if -_BIG_INT < item < _BIG_INT else _int_size(item))
        if isinstance(item, float):
            return total + len(repr(item))
        return total + 8  # not JSON (a JMESPath expression reference): nothing to walk


def _int_size(value: int) -> int:
    # Digits from the bit length (log10(2) ≈ 0.30103), without building the text.
    return value.bit_length() * 30103 // 100000 + 2
