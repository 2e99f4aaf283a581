"""resource.Quantity: parse ("500m", "1Gi", "2e3"), compare, add, and print as the apiserver does
(the canonical form keeps the binary or decimal suffix family of the value it came from)."""

from __future__ import annotations

from fractions import Fraction

BINARY: dict[str, int] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
}  # fmt: skip


class QuantityError(ValueError):
    pass


def parse(text) -> Fraction:
    s = str(text).strip()
    if not s:
        raise QuantityError("empty quantity")
    for suffix in sorted(BINARY, key=len, reverse=True):
        if s.endswith(suffix):
            return _number(s[: -len(suffix)]) * BINARY[suffix]
    if s[-1] in DECIMAL and s[-1] != "" and not s[-1].isdigit():
        return _number(s[:-1]) * DECIMAL[s[-1]]
    return _number(s)


def _number(s: str) -> Fraction:
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        try:
            return Fraction(float(s)) if "e" in s.lower() else _bad(s)
        except ValueError:
            return _bad(s)


def _bad(s: str) -> Fraction:
    raise QuantityError(
        f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({s!r})"
    )


def binary(text) -> bool:
    return any(str(text).strip().endswith(s) for s in BINARY)


def format_quantity(value: Fraction, binary_si: bool = False) -> str:
    """Canonical text: the largest suffix that keeps an integer (binary family when binary_si)."""
    if value == 0:
        return "0"
    if binary_si and value.denominator == 1:
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            if value % BINARY[suffix] == 0:
                return f"{value // BINARY[suffix]}{suffix}"
        return str(value.numerator)
    for suffix in ("E", "P", "T", "G", "M", "k", "", "m", "u", "n"):
        scaled = value / Fraction(DECIMAL[suffix])
        if scaled.denominator == 1 and (suffix not in ("k", "M", "G", "T", "P", "E") or scaled % 1 == 0):
            if suffix in ("k", "M", "G", "T", "P", "E") and (value / Fraction(DECIMAL[suffix])) < 1:
                continue
            return f"{scaled.numerator}{suffix}"
    return str(float(value))
