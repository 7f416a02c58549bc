"""Fixed-point arithmetic of the hardware IR: the one definition of rounding, saturation and
format alignment that the reference, the passes and both hardware writers follow.

A ``fixed`` tensor (``TensorType.fixed``) holds signed ``bits``-bit two's-complement codes k
with ``frac`` fraction bits: the value is k * 2^-frac.  Three operations exist, and only
these:

* ``round_shift(v, s)``: v * 2^-s rounded to an integer.  s <= 0 is an exact left shift;
  s > 0 rounds half up, floor((v + 2^(s-1)) / 2^s), which in hardware is an add and an
  arithmetic right shift (no comparison, no division).
* ``saturate(v, t)``: clip to ``t``'s code range.  The reference counts the clipped
  elements (``Saturation``), so an undersized format is reported, never silent.
* ``align(v, from_frac, to_frac)``: a code re-expressed with another fraction width,
  ``round_shift(v, from_frac - to_frac)``.

Choosing a format from observed values is ``format_for``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from bnn2fpga.ir import IRError, TensorType


def round_shift(v: np.ndarray, shift: int) -> np.ndarray:
    """``v`` (int64 codes) times 2^-shift, rounded half up (exact for shift <= 0)."""
    v = np.asarray(v, dtype=np.int64)
    if shift <= 0:
        return v << np.int64(-shift)
    return (v + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)


def align(v: np.ndarray, from_frac: int, to_frac: int) -> np.ndarray:
    """Codes with ``from_frac`` fraction bits re-expressed with ``to_frac``."""
    return round_shift(v, from_frac - to_frac)


@dataclass
class Saturation:
    """Saturated elements per node name, counted by the reference as it runs."""

    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, clipped: int, total: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(clipped)
        self.totals[name] = self.totals.get(name, 0) + int(total)


_COUNTER: contextvars.ContextVar[Saturation | None] = contextvars.ContextVar(
    "bnn2fpga_saturation", default=None)


@contextlib.contextmanager
def counting() -> Iterator[Saturation]:
    """Count every ``saturate`` inside the block (the reference runs its graph in one)."""
    counter = Saturation()
    token = _COUNTER.set(counter)
    try:
        yield counter
    finally:
        _COUNTER.reset(token)


def saturate(v: np.ndarray, t: TensorType, name: str = "",
             counter: Saturation | None = None) -> np.ndarray:
    """``v`` clipped to ``t``'s code range; the clipped count goes to ``counter``, or to
    the enclosing ``counting()`` block's, under ``name``."""
    lo, hi = t.code_range()
    v = np.asarray(v, dtype=np.int64)
    counter = counter if counter is not None else _COUNTER.get()
    if counter is not None:
        counter.add(name, int(np.count_nonzero((v < lo) | (v > hi))), v.size)
    return np.clip(v, lo, hi)


def format_for(shape: tuple[int, ...], max_abs: float, frac: int, margin: float = 1.0,
               max_bits: int = 32) -> TensorType:
    """The smallest signed fixed-point type of ``frac`` fraction bits whose codes reach
    +-``margin * max_abs`` (``margin`` >= 1 leaves headroom over the calibration data)."""
    if not math.isfinite(max_abs) or max_abs < 0:
        raise IRError(f"cannot size a fixed-point format for a range of {max_abs!r}")
    top = math.ceil(margin * max_abs * math.ldexp(1.0, frac))
    bits = max(2, frac + 1, int(top).bit_length() + 1)
    if bits > max_bits:
        raise IRError(f"a range of +-{max_abs:g} with {frac} fraction bits needs {bits} bits, "
                      f"more than {max_bits}; lower --precision or check the model's values")
    return TensorType.fixed(shape, bits, frac)


def to_codes(x: np.ndarray, t: TensorType) -> np.ndarray:
    """Real values -> codes of fixed type ``t`` (round half up, saturating): the host's
    conversion and the passes' conversion of constants."""
    lo, hi = t.code_range()
    return step_codes(x, t.frac, lo, hi)


def step_codes(x: np.ndarray, frac: int, lo: int | None = None, hi: int | None = None
               ) -> np.ndarray:
    """Real values -> integer multiples of 2^-frac (any frac, also negative or beyond a
    ``TensorType``'s range), round half up, clipped to [lo, hi] where given: ``to_codes``
    for constants (weights, multipliers, offsets) that are not tensors."""
    scaled = np.floor(np.asarray(x, dtype=np.float64) * math.ldexp(1.0, frac) + 0.5)
    if lo is not None or hi is not None:
        scaled = np.clip(scaled, lo, hi)
    return scaled.astype(np.int64)


def to_real(codes: np.ndarray, t: TensorType) -> np.ndarray:
    """Codes of fixed type ``t`` -> their real values (float64, exact)."""
    return np.asarray(codes, dtype=np.float64) * math.ldexp(1.0, -t.frac)
