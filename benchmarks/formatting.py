"""The report's tables (one column per backend) and how figures are written in them."""

from __future__ import annotations

import textwrap
import typing as t
from collections.abc import Callable, Mapping, Sequence

from benchmarks import servers
from benchmarks.measuring import med

V = t.TypeVar("V")


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1e3:,.{digits}f} ms"


def ms2(seconds: float) -> str:
    """Milliseconds with two decimals."""
    return ms(seconds, 2)


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def ratio_text(values: Sequence[float]) -> str:
    if not values:
        return "-"
    m = med(values)
    if len(values) == 1:
        return f"{m:.2f}x" if m < 100 else f"{m:,.0f}x"
    lo, hi = min(values), max(values)
    if m < 100:
        return f"{m:.2f}x [{lo:.2f}-{hi:.2f}]"
    return f"{m:,.0f}x [{lo:,.0f}-{hi:,.0f}]"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Table:
    """Rows of metrics, one column per backend."""

    def __init__(self, title: str, drivers: list[str], note: str = "") -> None:
        self.title, self.drivers, self.note = title, drivers, note
        self.rows: list[tuple[str, list[str]]] = []

    def add(self, label: str, cells: dict[str, str]) -> None:
        """A row of ready cells; a backend without one shows ``-`` (no cells at all: a blank row)."""
        self.rows.append((label, [cells.get(d, "-" if cells else "") for d in self.drivers]))

    def row(self, label: str, show: Callable[[V], str], values: Mapping[str, V]) -> None:
        """A row of one value per backend, each written by ``show``."""
        self.add(label, {d: show(v) for d, v in values.items()})

    def blank(self) -> None:
        self.add("", {})

    def render(self) -> str:
        heads = [servers.TITLES[d] for d in self.drivers]
        w0 = max([len(r[0]) for r in self.rows] + [10])
        widths = [max([len(h)] + [len(r[1][i]) for r in self.rows]) for i, h in enumerate(heads)]
        lines = [self.title, "-" * len(self.title)]
        if self.note:
            lines += textwrap.wrap(self.note, 100) + [""]
        lines.append(" " * w0 + "  " + "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=False)))
        for label, cells in self.rows:
            if not label and not any(cells):
                lines.append("")
                continue
            lines.append(
                label.ljust(w0) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False))
            )
        return "\n".join(lines)
