"""A character-level text corpus available offline and identical on every machine.

The corpus is shipped with lmech (``lmech/data/pydoc_topics.txt``, ~300k characters): the
Python 3.11 language-reference topics from the standard library's ``pydoc_data.topics``,
ASCII-normalised and truncated (PSF License). Shipping the file, rather than reading the
running interpreter's standard library, keeps it byte-identical across Python versions.
The vocabulary is fixed: the 96 printable ASCII characters (newline and space included),
so token ids do not depend on the text.
"""
from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from importlib import resources

import numpy as np

from lmech._validation import check_int, check_real

__all__ = ["TextCorpus", "VOCAB", "load_text", "encode", "decode"]

VOCAB = "".join(sorted(set(string.printable) - set("\t\r\x0b\x0c")))
_INDEX = {c: i for i, c in enumerate(VOCAB)}


def encode(text: str) -> np.ndarray:
    """Token ids (int64) of ``text``; characters outside :data:`VOCAB` map to ``'?'``."""
    q = _INDEX["?"]
    return np.fromiter((_INDEX.get(c, q) for c in text), dtype=np.int64, count=len(text))


def decode(ids: np.ndarray) -> str:
    return "".join(VOCAB[int(i)] for i in np.asarray(ids).ravel())


@dataclass(frozen=True)
class TextCorpus:
    """Encoded corpus split into a training part and a held-out tail.

    Attributes
    ----------
    train, val : np.ndarray
        int64 token ids (1-d).
    vocab : str
        Characters by id (``vocab_size = len(vocab)``).
    name : str
    """

    train: np.ndarray
    val: np.ndarray
    vocab: str
    name: str

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


@functools.lru_cache(maxsize=2)
def _raw_text() -> str:
    raw = resources.files("lmech.data").joinpath("pydoc_topics.txt").read_text(encoding="ascii")
    return "".join(line for line in raw.splitlines(keepends=True) if not line.startswith("# "))


@functools.lru_cache(maxsize=4)
def _encoded(val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    ids = encode(_raw_text())
    n_val = int(round(len(ids) * val_fraction))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def load_text(val_fraction: float = 0.1, *, max_chars: int | None = None) -> TextCorpus:
    """The shipped corpus, its last ``val_fraction`` held out (contiguous split).

    ``max_chars`` truncates the training part (for quick tests). Arrays are read-only views
    of a per-process cache.
    """
    val_fraction = check_real(val_fraction, "val_fraction", lo=0.0, hi=0.5, hi_closed=True, lo_closed=False)
    train, val = _encoded(val_fraction)
    if max_chars is not None:
        train = train[: check_int(max_chars, "max_chars", lo=2)]
    train.flags.writeable = False
    val.flags.writeable = False
    return TextCorpus(train, val, VOCAB, "pydoc_topics")
