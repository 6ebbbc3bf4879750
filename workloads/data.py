"""The digits data set: scikit-learn's bundled 8x8 handwritten digits (no download).

Pixels are scaled from 0..16 to [0, 1]; images are (N, 1, 8, 8) float32, labels int64. The
train/test split is stratified and seeded, so every part of the project sees the same samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.jsonio import atomic_file

DATA_DIR = Path(__file__).resolve().parent / "data"
DIGITS_TEST_PATH = DATA_DIR / "digits_test.npz"
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


def write_digits_test(path: str | Path = DIGITS_TEST_PATH, seed: int = 0) -> Path:
    """Write the test split as ``npz`` with ``x`` (float32 (N, 1, 8, 8)) and ``y`` (int64).

    Written atomically (temp file + rename), uncompressed: it is ~140 KB.
    """
    path = Path(path)
    _, _, x_test, y_test = digits_split(seed)
    with atomic_file(path, "wb") as f:
        np.savez(f, x=x_test, y=y_test)
    return path


def load_digits_test(path: str | Path = DIGITS_TEST_PATH) -> tuple[np.ndarray, np.ndarray]:
    """The shipped test split ``(x, y)`` (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return data["x"], data["y"]
