"""The planted-noise benchmark's long rows read as tables: the gap each method closes towards
the oracle, the summary counts, and the page (one table per world).

A **cell** is one (world, noise kind, rate). In a cell, the **oracle** is normal training on
the truth-clean training rows only (`data.train_truth=clean`, tuned like every method), the
ceiling a perfect denoiser could reach on the same split. **Gap closed** is
(method − tuned normal) / (oracle − tuned normal) on the clean-test R@20 of all test users (the
paper view), each the mean over seeds: 0 is no better than plain training, 1 reaches the
oracle. A cell has **no gap** when the oracle's mean is within tuned normal's seed std of
normal's (or below it): nothing is there to close, so the summary asks instead whether the best
method **does no harm**, i.e. stays within one std of normal.

The **control** (tuned runs only) is normal training at the best method's own learning rate
and λ0, rerun over the same seeds: where it gets as far as the best method, the gain came from
the setting the method's tune happened to find, not from its denoising (a tune of a few trials
samples normal's two parameters at other points than a method's larger space does).

The trivial noise scores sit beside each method's noise-detection AUC: inverse item popularity
(the popularity row) and σ(f) of tuned normal training (the normal row); a method's AUC below
inverse popularity is marked ↓.

Where dprec differs: DenoisingRec and the DPI/DVAE paper compare denoisers with normal training
only. Without the oracle, a small gain cannot be told from a gap that was small to begin with,
so every gain here is read against the ceiling of the same cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from dprec.references.names import REFERENCE_LABELS, REFERENCE_NAMES
from dprec.runs import rundir

NORMAL = "normal"
ORACLE = "oracle"  # the pseudo-method: normal training on the truth-clean training rows
CONTROL = "control"  # normal training at the best method's learning rate and λ0
POPULARITY = "popularity"  # the model-free ranker's row, and the trivial noise score's
METRICS = ("recall@20", "ndcg@20")
VIEWS = ("paper", "warm")
GAP_KEY = ("recall@20", "paper")  # the metric and view the gap is measured on
AUC_KEY = ("auc", "train")
HALF = 0.5  # "closes the gap": at least half of it
BELOW_TRIVIAL = "↓"
AGAINST_NORMAL = {
    "within": "within one std of normal",
    "above": "above normal by more than one std",
    "below": "below normal by more than one std (harm)",
}

Stats = tuple[float, float, int]  # mean, sample std, n (finite values over seeds)


class BenchRow(NamedTuple):
    """One line of OUT/noise_bench.csv: a statistic of one method in one cell."""

    world: str
    kind: str
    rate: float
    method: str
    setting: str  # a reference's chosen grid point ("k=100, shrink=100"), the control's, else ""
    score: str  # the AUC rows' score ("own", "inverse popularity"), else ""
    metric: str
    view: str
    mean: float
    std: float
    n: int


CSV_COLUMNS = list(BenchRow._fields)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (world, noise kind, rate) of the bench."""

    world: str
    kind: str
    rate: float

    @property
    def name(self) -> str:
        """WORLD-KIND-RATE: the cell's data file stem and run folder."""
        return f"{self.world}-{self.kind}-{self.rate:g}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a cell says: `gap` (None when normal's or the oracle's R@20 is missing), the
    `best` method other than normal by mean test R@20 (None without one), its gap `closed`
    (cells with a gap) and, in a no-gap cell, where it lies against tuned normal
    (`versus_normal`: "within" one std, "above" or "below")."""

    cell: Cell
    gap: bool | None
    best: str | None
    closed: float | None
    versus_normal: str | None


def stats(values: Iterable[float | None]) -> Stats:
    """Mean, sample std (0 for one value) and count of the finite `values`; NaN, NaN, 0 for
    none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1) if len(finite) > 1 else 0.0
    return mean, math.sqrt(var), len(finite)


Key = tuple[str, str, float, str, str, str]  # world, kind, rate, method, metric, view
Index = Mapping[Key, Stats]


def index_rows(rows: Iterable[BenchRow]) -> dict[Key, Stats]:
    """(world, kind, rate, method, metric, view) → (mean, std, n)."""
    return {
        (r.world, r.kind, r.rate, r.method, r.metric, r.view): (r.mean, r.std, r.n) for r in rows
    }


def lookup(index: Index, cell: Cell, method: str, key: tuple[str, str] = GAP_KEY) -> Stats | None:
    """The cell's statistic of `method` (default: test R@20, paper view); None if missing or
    without a finite value."""
    found = index.get((cell.world, cell.kind, cell.rate, method, *key))
    return found if found is not None and found[2] > 0 else None


def has_gap(normal: Stats, oracle: Stats) -> bool:
    """True when the oracle's mean exceeds tuned normal's by more than normal's seed std (an
    oracle below normal leaves nothing to close either)."""
    return oracle[0] - normal[0] > normal[1]


def gap_closed(method: float, normal: float, oracle: float) -> float:
    """(method − normal) / (oracle − normal): 0 = plain training, 1 = the oracle."""
    return (method - normal) / (oracle - normal)


def cell_verdict(index: Index, cell: Cell, methods: Sequence[str]) -> Verdict:
    """The cell's gap, its best method other than normal and how far that one got."""
    normal, oracle = lookup(index, cell, NORMAL), lookup(index, cell, ORACLE)
    found = {m: lookup(index, cell, m) for m in methods if m != NORMAL}
    found = {m: s for m, s in found.items() if s is not None}
    best = max(found, key=lambda m: found[m][0]) if found else None
    if normal is None or oracle is None:
        return Verdict(cell, None, best, None, None)
    if best is None:
        return Verdict(cell, has_gap(normal, oracle), None, None, None)
    if has_gap(normal, oracle):
        return Verdict(cell, True, best, gap_closed(found[best][0], normal[0], oracle[0]), None)
    difference = found[best][0] - normal[0]
    where = "within" if abs(difference) <= normal[1] else "above" if difference > 0 else "below"
    return Verdict(cell, False, best, None, where)


def auc_flags(index: Index, cell: Cell, methods: Sequence[str]) -> dict[str, bool]:
    """method → whether its mean noise-detection AUC is below inverse popularity's, for the
    methods where both are known."""
    trivial = lookup(index, cell, POPULARITY, AUC_KEY)
    if trivial is None:
        return {}
    own = {m: lookup(index, cell, m, AUC_KEY) for m in methods}
    return {m: s[0] < trivial[0] for m, s in own.items() if s is not None}


def _count(part: int, whole: int) -> str:
    return f"{part} of {whole}" if whole else "–"


def summary_lines(index: Index, cells: Sequence[Cell], methods: Sequence[str]) -> list[str]:
    """The summary: per world and in all, the cells with a gap and on how many the best method
    closes ≥ 50 % of it; the no-gap cells and on how many the best method stays within one std
    of tuned normal; the method AUCs below inverse popularity."""
    worlds = list(dict.fromkeys(cell.world for cell in cells))
    body = []
    for world in [*worlds, None]:
        chosen = [c for c in cells if world is None or c.world == world]
        verdicts = [cell_verdict(index, c, methods) for c in chosen]
        gap = [v for v in verdicts if v.gap is True and v.closed is not None]
        no_gap = [v for v in verdicts if v.gap is False and v.versus_normal is not None]
        flags = [flag for c in chosen for flag in auc_flags(index, c, methods).values()]
        body.append(
            [
                world if world is not None else "**all**",
                str(len(chosen)),
                _count(sum(v.closed >= HALF for v in gap), len(gap)),
                _count(sum(v.versus_normal == "within" for v in no_gap), len(no_gap)),
                ", ".join(
                    f"{where} {sum(v.versus_normal == where for v in no_gap)}"
                    for where in ("above", "below")
                )
                if no_gap
                else "–",
                str(sum(v.gap is None or v.best is None for v in verdicts)),
                _count(sum(flags), len(flags)),
            ]
        )
    header = [
        "world",
        "cells",
        "gap cells: best closes ≥ 50 %",
        "no-gap cells: best within 1 std of normal",
        "no-gap: best outside",
        "cells without a verdict",
        "method AUCs below inverse popularity",
    ]
    return rundir.markdown_table(header, body)


def cell_lines(index: Index, cells: Sequence[Cell], methods: Sequence[str]) -> list[str]:
    """Per cell: tuned normal's and the oracle's test R@20 (all users), whether there is a
    gap, the best method and its gap closed (or, without a gap, where it lies against
    normal)."""
    labels = _labels(methods)
    header = ["world", "noise", "rate", "normal R@20", "oracle R@20", "best method", "verdict"]
    header += ["control R@20"]
    body = []
    for cell in cells:
        verdict = cell_verdict(index, cell, methods)
        if verdict.gap is None:
            text = "incomplete: normal's or the oracle's runs are missing"
        elif verdict.best is None:
            text = "no method besides normal"
        elif verdict.gap:
            closed = verdict.closed
            text = f"closes {round(100 * closed)} % of the gap" + (" ✓" if closed >= HALF else "")
        else:
            text = f"no gap; {AGAINST_NORMAL[verdict.versus_normal]}"
        best = labels[verdict.best] if verdict.best else "–"
        normal, oracle = lookup(index, cell, NORMAL), lookup(index, cell, ORACLE)
        control = lookup(index, cell, CONTROL)
        body.append(
            [cell.world, cell.kind, f"{cell.rate:g}", _cell_text(normal), _cell_text(oracle)]
            + [best, text, _control_text(control, lookup(index, cell, verdict.best or ""))]
        )
    return rundir.markdown_table(header, body)


def _control_text(control: Stats | None, best: Stats | None) -> str:
    """The control's R@20 and whether it reaches the best method's (within the larger of the
    two seed stds): then the gain is the setting's, not the denoising's."""
    if control is None or best is None:
        return "–"
    reaches = control[0] >= best[0] - max(control[1], best[1])
    return _cell_text(control) + (" (reaches the best: the setting's gain)" if reaches else "")


def _cell_text(found: Stats | None) -> str:
    if found is None:
        return "–"
    mean, std, n = found
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def _labels(methods: Sequence[str]) -> dict[str, str]:
    from dprec.tools.report import METHOD_LABELS

    labels = {**METHOD_LABELS, **REFERENCE_LABELS}
    labels |= {NORMAL: "Normal (AUC: σ(f))", "tce": "T-CE (AUC: its loss)"}
    labels |= {ORACLE: "Oracle (normal on truth-clean rows)"}
    labels |= {CONTROL: "Control: normal training"}
    labels |= {POPULARITY: "Popularity (AUC: inverse popularity)"}
    return {m: labels.get(m, m) for m in [*methods, ORACLE, CONTROL, *REFERENCE_NAMES]}


def _gap_text(verdict: Verdict, index: Index, method: str) -> str:
    normal, oracle = lookup(index, verdict.cell, NORMAL), lookup(index, verdict.cell, ORACLE)
    own = lookup(index, verdict.cell, method)
    if verdict.gap is None or own is None or method in REFERENCE_NAMES:  # methods' column
        return "–"
    if not verdict.gap:
        return "no gap"
    return f"{round(100 * gap_closed(own[0], normal[0], oracle[0]))} %"  # never "-0 %"


def world_table(
    index: Index,
    settings: Mapping[tuple[str, str, float, str], str],
    cells: Sequence[Cell],
    methods: Sequence[str],
) -> list[str]:
    """One world's table: per cell, a row per method, the oracle, then the reference rankers;
    the best method's R@20 (all users) in bold."""
    labels = _labels(methods)
    columns = ["noise", "rate", "method", "R@20 all", "N@20 all", "R@20 warm", "N@20 warm"]
    columns += ["gap closed (R@20 all)", "noise AUC"]
    keys = [(metric, view) for view in VIEWS for metric in METRICS]  # R@20 all, N@20 all, ...
    body = []
    for cell in cells:
        verdict = cell_verdict(index, cell, methods)
        flags = auc_flags(index, cell, methods)
        best_recall = max(
            (s[0] for m in methods if (s := lookup(index, cell, m)) is not None), default=None
        )
        for method in [*methods, ORACLE, CONTROL, *REFERENCE_NAMES]:
            setting = settings.get((cell.world, cell.kind, cell.rate, method), "")
            shown = setting or any(lookup(index, cell, method, key) for key in keys)
            if method in (*REFERENCE_NAMES, CONTROL) and not shown:  # a row the runs left out
                continue
            label = f"{labels[method]} ({setting})" if setting else labels[method]
            cells_text = []
            for key in keys:
                found = lookup(index, cell, method, key)
                text = _cell_text(found)
                bold = key == GAP_KEY and method in methods and found is not None
                cells_text.append(f"**{text}**" if bold and found[0] == best_recall else text)
            auc = _cell_text(lookup(index, cell, method, AUC_KEY))
            auc += f" {BELOW_TRIVIAL}" if flags.get(method) else ""
            gap = _gap_text(verdict, index, method)
            body.append([cell.kind, f"{cell.rate:g}", label, *cells_text, gap, auc])
    return rundir.markdown_table(columns, body)


def page_body(
    rows: Sequence[BenchRow], cells: Sequence[Cell], methods: Sequence[str], header: str
) -> str:
    """The page: `header`, the summary counts, then one table per world (### headings: the
    page is embedded in a section of docs/results/index.md)."""
    index = index_rows(rows)
    settings = {(r.world, r.kind, r.rate, r.method): r.setting for r in rows if r.setting}
    lines = [header, "", "### Summary", "", *summary_lines(index, cells, methods), ""]
    lines += [*cell_lines(index, cells, methods), ""]
    lines += [
        "A cell is one world × noise kind × rate. **Gap closed** = (method − tuned normal) / "
        "(oracle − tuned normal) on the clean-test R@20 of all test users (the paper view), "
        "means over seeds; the oracle is normal training on the truth-clean training rows only "
        "(`data.train_truth=clean`), tuned with the same budget. A cell has **no gap** when "
        "the oracle's mean is within tuned normal's seed std of normal's (or below it); there "
        "the best method should do no harm: stay within one std of tuned normal. The best "
        "method is the one other than normal with the highest mean test R@20. **Noise AUC** "
        "is the ROC AUC of the method's score for telling truly clean from planted noisy "
        "training rows (0.5 = chance); the trivial scores are the popularity row (inverse "
        f"item popularity) and the normal row (σ(f)); {BELOW_TRIVIAL} marks a method's AUC "
        "below inverse popularity. The reference rows are those of the tuned normal runs, "
        "with the grid point each chose on validation. The **control** (tuned runs) is "
        "normal training at the best method's own learning rate and λ0 over the same seeds: "
        "where it reaches the best method (within the larger seed std), the gain came from "
        "that setting, which normal's own trials did not sample, not from the denoising.",
        "",
    ]
    for world in dict.fromkeys(cell.world for cell in cells):
        chosen = [cell for cell in cells if cell.world == world]
        lines += [f"### World: {world}", ""]
        lines += [*world_table(index, settings, chosen, methods), ""]
    return "\n".join(lines)
