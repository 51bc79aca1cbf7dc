"""Reading a user's data set (X, y) from .npy, .npz or .csv files, with errors naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_dataset"]


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{what} file {str(path)!r} is not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{what} file {str(path)!r} holds no single array (use .npz with arrays X and y)")
    return arr


def _read_csv(path: Path, target_column) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist")
    text = path.read_text().splitlines()
    rows = [line for line in text if line.strip()]
    if not rows:
        raise ValueError(f"data file {str(path)!r} is empty")
    first = [c.strip() for c in rows[0].split(",")]
    header = None
    try:
        [float(c) for c in first]
    except ValueError:
        header, rows = first, rows[1:]
    width = len(first)
    data = np.empty((len(rows), width))
    for i, line in enumerate(rows):
        cells = line.split(",")
        if len(cells) != width:
            raise ValueError(f"data file {str(path)!r}, row {i + 1 + (header is not None)}: {len(cells)} columns, "
                             f"expected {width}")
        try:
            data[i] = [float(c) for c in cells]
        except ValueError:
            raise ValueError(f"data file {str(path)!r}, row {i + 1 + (header is not None)}: a cell is not a number "
                             f"({line.strip()[:60]!r})") from None
    if width < 2:
        raise ValueError(f"data file {str(path)!r} needs at least 2 columns (features and a target), has {width}")
    if target_column is None:
        col = width - 1
    elif isinstance(target_column, str) and not target_column.lstrip("-").isdigit():
        if header is None or target_column not in header:
            raise ValueError(f"target_column {target_column!r} is not a column of {str(path)!r} "
                             f"(header: {header})")
        col = header.index(target_column)
    else:
        col = int(target_column)
        if not -width <= col < width:
            raise ValueError(f"target_column {col} is out of range for {str(path)!r} ({width} columns)")
        col %= width
    return np.delete(data, col, axis=1), data[:, col]


def read_dataset(X_path, y_path=None, *, target_column=None) -> tuple[np.ndarray, np.ndarray]:
    """Read inputs and targets.

    * ``X_path`` a ``.npy`` file of inputs (n, ...) and ``y_path`` a ``.npy`` file of targets (n,) or (n, C);
    * ``X_path`` a ``.npz`` file holding arrays ``X`` and ``y`` (``y_path`` None);
    * ``X_path`` a ``.csv`` file (``y_path`` None): numeric columns, an optional header row; the target is
      the last column unless ``target_column`` (a header name or a 0-based index) says otherwise.

    Raises ValueError naming the file on a missing file, a wrong format or a missing array.
    """
    path = Path(X_path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if y_path is not None:
            raise ValueError(f"y file {str(y_path)!r} given with the .npz file {str(path)!r}, which must hold y itself")
        if not path.is_file():
            raise ValueError(f"data file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("X", "y") if k not in z.files]
                if missing:
                    raise ValueError(f"data file {str(path)!r} lacks array(s) {missing} (it has {z.files})")
                return np.asarray(z["X"]), np.asarray(z["y"])
        except (OSError, EOFError) as exc:
            raise ValueError(f"data file {str(path)!r} is not a readable .npz archive ({exc})") from None
    if suffix == ".csv":
        if y_path is not None:
            raise ValueError(f"y file {str(y_path)!r} given with the .csv file {str(path)!r}; the target is a column")
        return _read_csv(path, target_column)
    if suffix == ".npy":
        if y_path is None:
            raise ValueError(f"X file {str(path)!r} is .npy: give the targets as a second .npy file (y)")
        if Path(y_path).suffix.lower() != ".npy":
            raise ValueError(f"y file {str(y_path)!r} must be a .npy file")
        return _load_npy(path, "X"), _load_npy(Path(y_path), "y")
    raise ValueError(f"data file {str(path)!r}: unknown format {suffix or '(no suffix)'!r} (use .npy, .npz or .csv)")
