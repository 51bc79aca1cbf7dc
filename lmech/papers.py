"""The papers lmech's claims come from: title, authors, year and arXiv identifier.

One table, :data:`PAPERS`, lists the project's seed papers (and the few outside papers a
claim cites, marked ``seed=False``). A claim names its paper by title; :func:`find_paper`
looks a title up case-insensitively and ignoring punctuation, spacing and accents, so
``"Don't be lazy: CompleteP ..."`` and ``"dont be lazy completep ..."`` find the same entry.

Author lists are as the listing the project started from gives them: long lists end in
``et al.``. An arXiv identifier is left empty where it could not be confirmed.

Base layer: imports nothing of lmech.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Paper", "PAPERS", "find_paper", "normalize_title"]


@dataclass(frozen=True)
class Paper:
    """One paper: ``arxiv`` is the bare identifier (``"2002.02561"``) or ``""`` if unknown."""

    title: str
    authors: str
    year: int | None
    arxiv: str = ""
    seed: bool = True

    @property
    def url(self) -> str:
        """The arXiv abstract page, or ``""`` when the identifier is unknown."""
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else ""

    @property
    def first_author(self) -> str:
        return self.authors.split(",")[0].replace(" et al.", "").strip()

    @property
    def short(self) -> str:
        """``"Bordelon et al. 2020"``-style citation label."""
        surname = self.first_author.split()[-1] if self.first_author else "?"
        many = "," in self.authors or "et al." in self.authors
        year = f" {self.year}" if self.year else ""
        return f"{surname}{' et al.' if many else ''}{year}"


PAPERS: tuple[Paper, ...] = (
    Paper("Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit",
          "Blake Bordelon, Lorenzo Noci, Mufan Bill Li et al.", 2023, "2309.16620"),
    Paper("How Feature Learning Can Improve Neural Scaling Laws",
          "Blake Bordelon, Alexander Atanasov, Cengiz Pehlevan", 2024, "2409.17858"),
    Paper("The Onset of Variance-Limited Behavior for Networks in the Lazy and Rich Regimes",
          "Alexander Atanasov, Blake Bordelon, Sabarish Sainathan et al.", 2022, "2212.12147"),
    Paper("Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks",
          "Blake Bordelon, Cengiz Pehlevan", 2022, "2205.09653"),
    Paper("Grokking as the Transition from Lazy to Rich Training Dynamics",
          "Tanishq Kumar, Blake Bordelon, Samuel J. Gershman et al.", 2023, "2310.06110"),
    Paper("Dynamics of Finite Width Kernel and Prediction Fluctuations in Mean Field Neural Networks",
          "Blake Bordelon, Cengiz Pehlevan", 2023, "2304.03408"),
    Paper("The Influence of Learning Rule on Representation Dynamics in Wide Neural Networks",
          "Blake Bordelon, Cengiz Pehlevan", 2022, "2210.02157"),
    Paper("Hyperparameter Transfer with Mixture-of-Expert Layers",
          "Tianze Jiang, Blake Bordelon, Cengiz Pehlevan et al.", 2026, "2601.20205"),
    Paper("Loss Dynamics of Temporal Difference Reinforcement Learning",
          "Blake Bordelon, Paul Masset, Henry Kuo et al.", 2023, "2307.04841"),
    Paper("Don't be lazy: CompleteP enables compute-efficient deep transformers",
          "Nolan Dey, Bin Claire Zhang, Lorenzo Noci et al.", 2025, "2505.01618"),
    Paper("There Will Be a Scientific Theory of Deep Learning",
          "Jamie Simon, Daniel Kunin, Alexander Atanasov et al.", 2026, "2604.21691"),
    Paper("Spectral Dynamics in Deep Networks: Feature Learning, Outlier Escape, and Learning Rate Transfer",
          "Clarissa Lauditi, Cengiz Pehlevan, Blake Bordelon", 2026, "2605.07870"),
    Paper("Scaling Laws for Precision",
          "Tanishq Kumar, Zachary Ankner, Benjamin F. Spector et al.", 2024, "2411.04330"),
    Paper("A Dynamical Model of Neural Scaling Laws",
          "Blake Bordelon, Alexander Atanasov, Cengiz Pehlevan", 2024, "2402.01092"),
    Paper("Infinite Limits of Multi-head Transformer Dynamics",
          "Blake Bordelon, Hamza Tahir Chaudhry, Cengiz Pehlevan", 2024, "2405.15712"),
    Paper("Adaptive kernel predictors from feature-learning infinite limits of neural networks",
          "Clarissa Lauditi, Blake Bordelon, Cengiz Pehlevan", 2025, "2502.07998"),
    Paper("Deep Linear Network Training Dynamics from Random Initialization: Data, Width, Depth, and "
          "Hyperparameter Transfer", "Blake Bordelon, Cengiz Pehlevan", 2025, "2502.02531"),
    Paper("Two-Point Deterministic Equivalence for Stochastic Gradient Dynamics in Linear Models",
          "Alexander Atanasov, Blake Bordelon, Jacob A. Zavatone-Veth et al.", 2025, "2502.05074"),
    Paper("Theory of Optimal Learning Rate Schedules and Scaling Laws for a Random Feature Model",
          "Blake Bordelon, Francesco Mori", 2026, "2602.04774"),
    Paper("Theory of Scaling Laws for In-Context Regression: Depth, Width, Context and Time",
          "Blake Bordelon, Mary I. Letey, Cengiz Pehlevan", 2025, "2510.01098"),
    Paper("Transfer Learning in Infinite Width Feature Learning Networks",
          "Clarissa Lauditi, Blake Bordelon, Cengiz Pehlevan", 2025, "2507.04448"),
    Paper("Do Mice Grok? Glimpses of Hidden Progress During Overtraining in Sensory Cortex",
          "Tanishq Kumar, Blake Bordelon, Cengiz Pehlevan et al.", 2024, "2411.03541"),
    Paper("Feature-Learning Networks Are Consistent Across Widths At Realistic Scales",
          "Nikhil Vyas, Alexander Atanasov, Blake Bordelon et al.", 2023, "2305.18411"),
    Paper("Neural Networks as Kernel Learners: The Silent Alignment Effect",
          "Alexander Atanasov, Blake Bordelon, Cengiz Pehlevan", 2021, "2111.00034"),
    Paper("Capacity of Group-invariant Linear Readouts from Equivariant Representations: How Many "
          "Objects can be Linearly Classified Under All Possible Views?",
          "Matthew Farrell, Blake Bordelon, Shubhendu Trivedi et al.", 2021, "2110.07472"),
    Paper("Learning Curves for SGD on Structured Features",
          "Blake Bordelon, Cengiz Pehlevan", 2021, "2106.02713"),
    Paper("Out-of-Distribution Generalization in Kernel Regression",
          "Abdulkadir Canatar, Blake Bordelon, Cengiz Pehlevan", 2021, "2106.02261"),
    Paper("A Theory of Neural Tangent Kernel Alignment and Its Influence on Training",
          "Haozhe Shan, Blake Bordelon", 2021, "2105.14301"),
    Paper("Spectral Bias and Task-Model Alignment Explain Generalization in Kernel Regression and "
          "Infinitely Wide Neural Networks", "Abdulkadir Canatar, Blake Bordelon, Cengiz Pehlevan", 2020,
          "2006.13198"),
    Paper("Spectrum Dependent Learning Curves in Kernel Regression and Wide Neural Networks",
          "Blake Bordelon, Abdulkadir Canatar, Cengiz Pehlevan", 2020, "2002.02561"),
    Paper("Pre-Synaptic Pool Modification (PSPM): A Supervised Learning Procedure for Spiking Neural Networks",
          "Bryce Bagley, Blake Bordelon, Benjamin Moseley et al.", 2018, "1810.03199"),
    # cited by claims but not among the seed papers
    Paper("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer",
          "Greg Yang, Edward J. Hu, Igor Babuschkin et al.", 2022, "2203.03466", seed=False),
)


def normalize_title(title: str) -> str:
    """Lower case, accents stripped, every run of non-alphanumerics one space, trimmed.

    Apostrophes vanish rather than split words, so ``"Don't"`` and ``"Dont"`` agree.
    """
    if not isinstance(title, str):
        raise TypeError(f"`title` must be a str; got {type(title).__name__} {title!r}")
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['\u2019`]", "", text)
    return re.sub(r"[^0-9a-z]+", " ", text).strip()


_BY_TITLE = {normalize_title(p.title): p for p in PAPERS}


def find_paper(title: str) -> Paper | None:
    """The entry of :data:`PAPERS` whose title matches ``title`` (see :func:`normalize_title`).

    An exact normalised match wins; otherwise a unique entry whose normalised title starts
    with the given one (at least 20 characters, so a claim may cite a title without its
    subtitle) or that the given one starts with. ``None`` when nothing or several match.
    """
    key = normalize_title(title)
    if not key:
        return None
    hit = _BY_TITLE.get(key)
    if hit is not None:
        return hit
    if len(key) < 20:
        return None
    near = [p for k, p in _BY_TITLE.items() if k.startswith(key) or key.startswith(k)]
    return near[0] if len(near) == 1 else None
