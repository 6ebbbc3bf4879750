"""The digits data set: scikit-learn's bundled 8x8 handwritten digits (no download).

Pixels are scaled from 0..16 to [0, 1]; images are (N, 1, 8, 8) float32, labels int64. The
train/test split is stratified and seeded, so every part of the project sees the same samples.

``digits16``: the same split with every image upsampled 8x8 -> 16x16 by :func:`upsample`
(bilinear, half-pixel centres, edges clamped: what ``torch.nn.functional.interpolate(...,
mode="bilinear", align_corners=False)`` computes), for ``digits_resnet``. At a factor of 2 the
weights are 1/16, 3/16 and 9/16 of pixels that are multiples of 1/16, so the float64 result is
exact and the float32 images are the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.jsonio import atomic_file

DATA_DIR = Path(__file__).resolve().parent / "data"
DIGITS_TEST_PATH = DATA_DIR / "digits_test.npz"
DIGITS16_TEST_PATH = DATA_DIR / "digits16_test.npz"
TEST_FRACTION = 0.3


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: x float32 (N, 1, 8, 8) in [0, 1], y int64 (N,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return x, digits.target.astype(np.int64)


def digits_split(
    seed: int = 0, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified split: ``(x_train, y_train, x_test, y_test)`` (70/30 by default)."""
    from sklearn.model_selection import train_test_split

    x, y = load_digits_arrays()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: lower and upper source index and the upper weight (half-pixel)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def upsample(x: np.ndarray, size: int = 16) -> np.ndarray:
    """Bilinear resize of the last two axes to ``size`` x ``size`` (half-pixel centres, edge
    pixels clamped, no anti-aliasing), computed in float64, returned as float32.

    Deterministic: numpy gathers and element-wise products only (no BLAS reduction order).
    """
    out = np.asarray(x, dtype=np.float64)
    for axis in (-2, -1):
        lo, hi, frac = _bilinear_taps(out.shape[axis], size)
        shape = [1] * out.ndim
        shape[axis] = size
        frac = frac.reshape(shape)
        out = np.take(out, lo, axis=axis) * (1.0 - frac) + np.take(out, hi, axis=axis) * frac
    return out.astype(np.float32)


def digits16_split(
    seed: int = 0, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`digits_split` with the images upsampled to (N, 1, 16, 16) by :func:`upsample`."""
    x_train, y_train, x_test, y_test = digits_split(seed, test_fraction)
    return upsample(x_train), y_train, upsample(x_test), y_test


def write_digits_test(path: str | Path = DIGITS_TEST_PATH, seed: int = 0) -> Path:
    """Write the test split as ``npz`` with ``x`` (float32 (N, 1, 8, 8)) and ``y`` (int64).

    Written atomically (temp file + rename), uncompressed: it is ~140 KB.
    """
    path = Path(path)
    _, _, x_test, y_test = digits_split(seed)
    with atomic_file(path, "wb") as f:
        np.savez(f, x=x_test, y=y_test)
    return path


def write_digits16_test(path: str | Path = DIGITS16_TEST_PATH, seed: int = 0) -> Path:
    """Write the upsampled test split as ``npz``: ``x`` float32 (N, 1, 16, 16), ``y`` int64.

    The format of :func:`write_digits_test` (atomic, uncompressed: ~560 KB).
    """
    path = Path(path)
    _, _, x_test, y_test = digits16_split(seed)
    with atomic_file(path, "wb") as f:
        np.savez(f, x=x_test, y=y_test)
    return path


def load_digits_test(path: str | Path = DIGITS_TEST_PATH) -> tuple[np.ndarray, np.ndarray]:
    """The shipped test split ``(x, y)`` (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return data["x"], data["y"]
