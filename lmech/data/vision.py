"""Small image-like classification sets available offline.

* scikit-learn's 8x8 digits (1797 images, shipped inside scikit-learn);
* MNIST-1D (Greydanus), generated on the fly by ``mnist1d.data.make_dataset``: 40-d
  sequences, 10 classes. Nothing is downloaded.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lmech._validation import check_int

__all__ = ["Dataset", "load_digits", "load_mnist1d", "standardize", "digits_binary_task"]


@dataclass(frozen=True)
class Dataset:
    """Inputs ``X`` (n, d) float64, integer labels ``y`` (n,), and ``n_classes``."""

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    name: str

    def one_hot(self, centered: bool = True) -> np.ndarray:
        """(n, n_classes) one-hot targets; ``centered`` subtracts 1/n_classes (zero-mean rows)."""
        Y = np.eye(self.n_classes)[self.y]
        return Y - 1.0 / self.n_classes if centered else Y


def standardize(X: np.ndarray, *, unit_sphere: bool = False) -> np.ndarray:
    """Centre each feature and scale to unit overall variance; optionally project rows
    to the sphere of radius sqrt(d) (so that x.x'/d is a correlation)."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    X = X / np.sqrt(np.mean(X**2))
    if unit_sphere:
        X = X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(X.shape[1])
    return X


@functools.lru_cache(maxsize=4)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def load_digits(*, standardized: bool = True) -> Dataset:
    """scikit-learn's digits: X (1797, 64), y in 0..9."""
    X, y = _digits_raw()
    X = standardize(X) if standardized else X.copy()
    return Dataset(X, y.copy(), 10, "digits")


@functools.lru_cache(maxsize=8)
def _mnist1d_raw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n
    args.train_split = 1.0 - 1.0 / n  # keep (almost) all samples in the "train" part; we split ourselves
    args.seed = seed
    data = make_dataset(args)
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return X, y


def load_mnist1d(n: int = 4000, *, seed: int = 42, standardized: bool = True) -> Dataset:
    """MNIST-1D generated offline: X (n, 40), y in 0..9 (``seed`` fixes the generator)."""
    n = check_int(n, "n", lo=10)
    seed = check_int(seed, "seed", lo=0)
    X, y = _mnist1d_raw(n, seed)
    X = standardize(X) if standardized else X.copy()
    return Dataset(X, y.copy(), 10, "mnist1d")


def digits_binary_task(n_train: int, n_test: int, *, seed: int = 0):
    """A binary regression task on scikit-learn digits: digit >= 5 against digit < 5.

    ``n_train + n_test`` images are drawn without replacement (``seed`` fixes which), the
    inputs standardised and projected onto the sphere of radius ``sqrt(64)``
    (:func:`standardize` with ``unit_sphere=True``, over the drawn images), and the targets
    +1 / -1 standardised with the training targets' mean and standard deviation.

    Returns
    -------
    X, y, X_test, y_test : arrays of shapes (n_train, 64), (n_train,), (n_test, 64), (n_test,)
    """
    n_train = check_int(n_train, "n_train", lo=2)
    n_test = check_int(n_test, "n_test", lo=0)
    X_raw, labels = _digits_raw()
    if n_train + n_test > len(labels):
        raise ValueError(f"`n_train + n_test` must be at most {len(labels)}; got {n_train + n_test}")
    idx = np.random.default_rng(check_int(seed, "seed", lo=0)).permutation(len(labels))[: n_train + n_test]
    X = standardize(X_raw[idx], unit_sphere=True)
    y = np.where(labels[idx] >= 5, 1.0, -1.0)
    y = (y - y[:n_train].mean()) / y[:n_train].std()
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
