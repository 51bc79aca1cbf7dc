"""Plain-text formulas as readable HTML, offline: Greek letters, sub- and superscripts.

Claims write formulas in ASCII (``E_g ~ P^-alpha``, ``gamma0 -> 0``, ``1/sqrt(depth)``).
:func:`math_html` escapes such text and renders it with Unicode symbols and ``<sub>``/
``<sup>`` tags, so the report needs no math library or network to show it:

* Greek letter names as whole words (``alpha``, ``Sigma``, ``lam``, ``muP``), with trailing
  digits as a subscript (``gamma0`` -> γ₀);
* ``x_k``/``x_{ij}`` after a single letter -> subscript (``train_tmax`` stays as it is);
* ``x^2``, ``x^-b``, ``x^{1/(1+b)}``, ``x^-(a-1)/b``, ``x^-min(a,b)`` -> superscript;
* ``sum_k``/``prod_k``/``min_x``/``max_x`` -> Σ/Π/min/max with the index as a subscript;
* ``<=``, ``>=``, ``!=``, ``->``, ``sqrt(..)``, `` ~ `` and `` x `` between numbers or
  symbols -> ≤, ≥, ≠, →, √(..), ∼.
"""
from __future__ import annotations

import html
import re

__all__ = ["math_html", "math_label"]

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eps": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "lam": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
_GREEK_RE = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_GREEK, key=len, reverse=True))
                       + r")(\d*)(P?)(?![A-Za-z])")
_SYMBOLS = (("<=", "≤"), (">=", "≥"), ("!=", "≠"), ("->", "→"), ("+-", "±"))
_OPERATORS = {"sum": "Σ", "prod": "Π"}
_SUB_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_LETTER = r"[A-Za-z\u0370-\u03ff]"


def _greek(match: re.Match) -> str:
    letter, digits, p_suffix = match.group(1), match.group(2), match.group(3)
    if p_suffix and letter != "mu":  # only muP reads as a Greek letter followed by P
        return match.group(0)
    return _GREEK[letter] + digits.translate(_SUB_DIGITS) + p_suffix


def _balanced(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes ``text[start]`` (or ``-1``)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


_FUNCTIONS = ("min", "max", "exp", "log", "sqrt")


def _script_end(text: str, i: int, *, superscript: bool) -> int:
    """End of the exponent (``superscript``) or subscript starting at ``text[i]`` (``i`` if none).

    An exponent may be signed, braced, parenthesised, a function call (``-min(a, b)``), carry
    a subscript (``-b_E``) and, when it starts with a sign, digit or bracket, a ``/divisor``
    (``-1/2``, ``-(a-1)/b``, ``-(a-1)/(1+b)``). A subscript is a word or number, with a
    ``/digits`` tail (``P_1/2``) but no call: ``L_N(t)`` is ``L_N`` applied to ``t``.
    """
    j = i
    if superscript and j < len(text) and text[j] in "-+":
        j += 1
    if j < len(text) and text[j] in "{(" and (superscript or text[j] == "{"):
        end = _balanced(text, j, text[j], "}" if text[j] == "{" else ")")
        if end < 0:
            return i
        j = end
    else:
        m = re.compile(r"[A-Za-z0-9*\u0370-\u03ff\u2080-\u2089]+(?:\.[0-9]+)?").match(text, j)
        if not m:
            return i
        j = m.end()
        if superscript and m.group(0).lstrip("*") in _FUNCTIONS and j < len(text) and text[j] == "(":
            end = _balanced(text, j, "(", ")")
            if end > 0:
                j = end
        elif superscript and j < len(text) and text[j] == "_":
            m2 = re.compile(r"_[A-Za-z0-9]+").match(text, j)
            if m2:
                j = m2.end()
    if j < len(text) and text[j] == "/":
        head = text[i:i + 1]
        if superscript and head and (head in "-+({" or head.isdigit()):
            if j + 1 < len(text) and text[j + 1] == "(":
                end = _balanced(text, j + 1, "(", ")")
                if end > 0:
                    j = end
            else:
                m = re.compile(r"/[A-Za-z0-9\u0370-\u03ff]+").match(text, j)
                if m:
                    j = m.end()
        elif not superscript:
            m = re.compile(r"/[0-9]+").match(text, j)
            if m:
                j = m.end()
    return j


def _scripts(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        prev_ok = i > 0 and (re.match(r"[A-Za-z0-9)*}\u0370-\u03ff\u2080-\u2089]", text[i - 1]) is not None)
        if ch == "^" and prev_ok:
            end = _script_end(text, i + 1, superscript=True)
            if end > i + 1:
                body = text[i + 1:end]
                if body.startswith("{") and body.endswith("}"):
                    body = body[1:-1]
                out.append(f"<sup>{_scripts(body)}</sup>")
                i = end
                continue
        if ch == "_" and i > 0 and re.match(_LETTER + r"|\*", text[i - 1]):
            # subscript only after a lone letter (x_k), a starred letter (w*_k) or a Greek one
            k = i - 1
            if text[k] == "*":
                k -= 1
            lone = k >= 0 and re.match(_LETTER, text[k]) and (k == 0 or not re.match(r"[A-Za-z0-9_]", text[k - 1]))
            if lone:
                end = _script_end(text, i + 1, superscript=False)
                if end > i + 1 and text[i + 1] not in "-+":
                    body = text[i + 1:end]
                    if body.startswith("{") and body.endswith("}"):
                        body = body[1:-1]
                    out.append(f"<sub>{'∞' if body == 'inf' else _scripts(body)}</sub>")
                    i = end
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def math_html(text: str | None) -> str:
    """``text`` HTML-escaped, with its ASCII formulas rendered (see the module docstring)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    for ascii_, uni in _SYMBOLS:
        text = text.replace(ascii_, uni)
    text = re.sub(r"\bsqrt\(", "√(", text)
    text = re.sub(r"(?<=\S) ~ (?=\S)", " ∼ ", text)
    text = re.sub(r"(?<=[0-9)]) x (?=[0-9(A-Za-z])", " × ", text)
    text = re.sub(r"(?<=[=→] )inf\b", "∞", text)
    text = _GREEK_RE.sub(_greek, text)
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"(?<![A-Za-z_])(sum|prod|min|max|argmin|argmax)_([A-Za-z0-9\u0370-\u03ff]+)",
                     lambda m: f"{_OPERATORS.get(m.group(1), m.group(1))}<sub>{m.group(2)}</sub>", escaped)
    # html.escape leaves no ^ or _ inside entities, so the scripts pass is safe after it
    return _scripts(escaped)


_GREEK_WORD = re.compile(r"(?<![A-Za-z_])(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(\d*)(?![A-Za-z])")


def math_label(text: str | None) -> str:
    """A plot label with its simple formulas in matplotlib's mathtext.

    ``E_g`` -> ``$E_{g}$``, ``P^-1`` -> ``$P^{-1}$``, Greek letter names -> Greek letters;
    a label that already contains ``$`` is left as it is.
    """
    if not text:
        return ""
    if "$" in text:
        return text
    text = _GREEK_WORD.sub(lambda m: _GREEK[m.group(1)] + (f"_{m.group(2)}" if m.group(2) else ""), text)
    text = re.sub(r"(?<![A-Za-z0-9_])([A-Za-z\u0370-\u03ff])_([A-Za-z0-9]+)(?![A-Za-z0-9_])",
                  r"$\1_{\2}$", text)
    text = re.sub(r"(?<![A-Za-z0-9_])([A-Za-z0-9\u0370-\u03ff]+|\))\^(-?[A-Za-z0-9.]+)(?![A-Za-z0-9(/])",
                  lambda m: f"{m.group(1)}$^{{{m.group(2)}}}$" if m.group(1) == ")" else f"${m.group(1)}^{{{m.group(2)}}}$",
                  text)
    return text
