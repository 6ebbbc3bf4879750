"""Integer arithmetic of the datapath, defined once.

Every piece that computes values (reference executor, Numba PE kernels, cycle-by-cycle
reference model, fault code) uses these definitions, so that they agree bit for bit.
Scalar functions are Numba-jitted and also callable from plain Python; the ``*_array``
forms are numpy equivalents for whole tensors.

Conventions
-----------
* Two's complement throughout. A register of ``bits`` bits holding a signed value covers
  ``[-2**(bits-1), 2**(bits-1) - 1]``; unsigned covers ``[0, 2**bits - 1]``.
* Overflow of the accumulator (``acc_bits``): ``wrap`` keeps the low ``acc_bits`` bits and
  reinterprets them as signed; ``saturate`` clamps to the signed range. Accumulation is
  sequential, ``acc = overflow(acc + product)``, so under ``saturate`` the order matters:
  every dataflow accumulates in ascending reduction index k (see docs/semantics.md).
* Requantisation: ``y = clamp(rounding_rshift(acc * multiplier, shift) + zero_point, lo, hi)``
  with ``rounding_rshift(x, s) = (x + 2**(s-1)) >> s`` (round half up, arithmetic shift),
  ``x`` unchanged for ``s == 0``. ``multiplier`` is a positive integer below ``2**31``;
  ``|acc| < 2**31`` keeps the product inside int64.
* A bit flip of a register value: the value is encoded in ``bits`` bits (two's complement if
  signed), XORed with a mask, and decoded again with the same signedness.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .codes import OVERFLOW_WRAP


@njit(cache=True, inline="always")
def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest value a register of ``bits`` bits holds."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@njit(cache=True, inline="always")
def wrap(value: int, bits: int) -> int:
    """Keep the low ``bits`` bits of ``value`` and read them as a signed number."""
    mask = (1 << bits) - 1
    v = value & mask
    if v >> (bits - 1):
        v -= 1 << bits
    return v


@njit(cache=True, inline="always")
def saturate(value: int, bits: int) -> int:
    """Clamp ``value`` to the signed range of ``bits`` bits."""
    hi = (1 << (bits - 1)) - 1
    lo = -(1 << (bits - 1))
    if value > hi:
        return hi
    if value < lo:
        return lo
    return value


@njit(cache=True, inline="always")
def accumulate(acc: int, product: int, acc_bits: int, overflow: int) -> int:
    """One accumulator update ``overflow(acc + product)``."""
    if overflow == OVERFLOW_WRAP:
        return wrap(acc + product, acc_bits)
    return saturate(acc + product, acc_bits)


@njit(cache=True, inline="always")
def flip_bits(value: int, mask: int, bits: int, signed: bool) -> int:
    """XOR ``mask`` into the ``bits``-bit encoding of ``value`` and decode it again."""
    raw = (value & ((1 << bits) - 1)) ^ (mask & ((1 << bits) - 1))
    if signed and (raw >> (bits - 1)):
        raw -= 1 << bits
    return raw


@njit(cache=True, inline="always")
def force_bits(value: int, and_mask: int, or_mask: int, bits: int, signed: bool) -> int:
    """Apply stuck-at masks to the encoding of ``value``: ``(raw & and_mask) | or_mask``."""
    full = (1 << bits) - 1
    raw = ((value & full) & (and_mask & full)) | (or_mask & full)
    if signed and (raw >> (bits - 1)):
        raw -= 1 << bits
    return raw


@njit(cache=True, inline="always")
def rounding_rshift(value: int, shift: int) -> int:
    """Arithmetic right shift rounding half up: ``(x + 2**(s-1)) >> s``."""
    if shift <= 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


@njit(cache=True, inline="always")
def requantize(acc: int, multiplier: int, shift: int, zero_point: int, lo: int, hi: int) -> int:
    """Integer-only requantisation of one accumulator value."""
    y = rounding_rshift(acc * multiplier, shift) + zero_point
    if y < lo:
        return lo
    if y > hi:
        return hi
    return y


# ---- numpy forms (whole tensors, int64) -------------------------------------------------


def wrap_array(values: np.ndarray, bits: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    v = values & np.int64((1 << bits) - 1)
    return np.where(v >> (bits - 1) != 0, v - np.int64(1 << bits), v)


def saturate_array(values: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.int64), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def overflow_array(values: np.ndarray, bits: int, overflow: str) -> np.ndarray:
    return wrap_array(values, bits) if overflow == "wrap" else saturate_array(values, bits)


def rounding_rshift_array(values: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.where(shift > 0, (values + half) >> np.maximum(shift, 0), values)


def requantize_array(
    acc: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    zero_point: int,
    lo: int,
    hi: int,
) -> np.ndarray:
    """``clamp(rounding_rshift(acc * multiplier, shift) + zero_point, lo, hi)``, broadcast."""
    acc = np.asarray(acc, dtype=np.int64)
    y = rounding_rshift_array(acc * np.asarray(multiplier, dtype=np.int64), shift) + zero_point
    return np.clip(y, lo, hi)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Express a positive real factor as ``multiplier * 2**-shift`` with a 31-bit multiplier.

    Returns ``(multiplier, shift)`` with ``2**30 <= multiplier < 2**31`` (or ``(0, 0)`` for 0).
    ``shift`` may be negative for factors of 1 or more; callers keep factors below 1.
    """
    if real <= 0.0:
        return 0, 0
    mantissa, exponent = np.frexp(real)  # real = mantissa * 2**exponent, 0.5 <= mantissa < 1
    multiplier = int(round(float(mantissa) * (1 << 31)))
    shift = 31 - int(exponent)
    if multiplier == 1 << 31:
        multiplier //= 2
        shift -= 1
    return multiplier, shift
