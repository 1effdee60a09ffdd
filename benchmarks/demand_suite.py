"""Every weekly demand shape the README reports, run at one commit, and the README's tables written from the runs.

The README's weekly table was once assembled a row at a time over many sessions, and two
shapes got worse for sessions without anyone seeing it (one department alone, and the
stock-outs' top quartile). This runs them all (:data:`RUNS`: the shapes of the results
table and the real set's departments one at a time), each as
``python -m benchmarks.weekly_demand ... --json FILE`` in its own process, ``--jobs`` at a
time, longest first, and prints the tables from their figures; with ``--readme`` it writes
them into the README between its two markers, so the table states one commit's figures.

    python -m benchmarks.demand_suite [--jobs 2] [--only real,panel] [--out DIR] [--reuse] [--readme README.md]

Each run's printout is kept beside its figures in ``--out`` (``<name>.log``,
``<name>.json``); ``--reuse`` takes the figures already there instead of running again
(to finish an interrupted suite, or to rewrite the tables). A run that fails is named with
its log, the others still run, and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The README's markers around the tables this writes.
START_MARKER = "<!-- demand-suite:start -->"
END_MARKER = "<!-- demand-suite:end -->"
#: The real weekly set's departments (benchmarks.weekly_demand --department).
DEPARTMENTS = (1, 3, 8, 13, 38, 93, 95)
#: The baselines of the tables, by their role in ``--json`` figures, as the tables name them.
BASELINES = {
    "seasonal_naive": "seasonal naive",
    "moving_average": "moving average",
    "gb_lags": "GB on lags",
    "gb_promotions": "GB + promotions",
}
Summary = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One benchmark run: how the tables name it, its arguments, its table, and about how
    many minutes it takes two at a time on a 2-core machine (to start the longest first,
    and say how long is left; not a measurement)."""

    name: str
    args: tuple[str, ...]
    minutes: float
    table: str = "shapes"

    @property
    def slug(self) -> str:
        """The run's file name in ``--out``."""
        return "-".join(self.name.replace("--", "").split())


#: What the README reports: the results table's shapes in its order, then each department.
RUNS: tuple[Run, ...] = (
    Run("real", ("--data", "real"), 1.5),
    Run("panel", ("--data", "panel"), 10),
    Run("trend", ("--data", "trend"), 10),
    Run("shift", ("--data", "shift"), 10),
    Run("festival --calendar", ("--data", "festival", "--calendar"), 12),
    Run("dip", ("--data", "dip"), 10),
    Run("shocks --origins 12", ("--data", "shocks", "--origins", "12"), 27),
    Run("sample", ("--data", "sample"), 4),
    Run("stockouts", ("--data", "stockouts"), 5),
    Run("sample-monthly", ("--data", "sample-monthly"), 2),
    Run("monthly", ("--data", "monthly"), 0.5),
    *(
        Run(
            f"department {d}",
            ("--data", "real", "--department", str(d), "--origins", "6"),
            0.7,
            "departments",
        )
        for d in DEPARTMENTS
    ),
)


def _minus(text: str) -> str:
    """A signed figure as the README writes it (a true minus sign)."""
    return text.replace("-", "\N{MINUS SIGN}")


def _figure(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return _minus(f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}")


def _wape_and_bias(method: Summary, best: bool) -> str:
    wape = _figure(method["wape"])
    return f"{f'**{wape}**' if best else wape}, {_figure(method['bias'], signed=True)}"


def _best_wape(summary: Summary) -> float:
    """The lowest WAPE of storecast and the baselines (the true mean is a floor, not a method)."""
    methods = summary["methods"]
    return float(min(m["wape"] for role, m in methods.items() if role in ("storecast", *BASELINES)))


def _paired_cell(summary: Summary, role: str) -> str:
    method = summary["methods"].get(role)
    if method is None:
        return ""
    against = method["against_storecast"]
    return (
        f"{against['lower_on']} of {against['origins']}, "
        f"{_figure(against['difference'], signed=True)} ± {_figure(against['spread'])}"
    )


def shapes_table(summaries: dict[str, Summary | None]) -> list[str]:
    """Markdown: per shape storecast's WAPE and bias beside each baseline's and the true
    mean's (the lowest WAPE in bold), its 80 % coverage by forecast quartile and its
    interval score; then storecast against each baseline origin by origin."""
    lines = [
        "| `--data` | storecast: WAPE, bias | "
        + " | ".join(BASELINES.values())
        + " | true mean | storecast cov80 by forecast quartile | interval score |",
        "|---" * (len(BASELINES) + 5) + "|",
    ]
    paired = [
        "| `--data` | " + " | ".join(BASELINES.values()) + " |",
        "|---" * (len(BASELINES) + 1) + "|",
    ]
    for name, summary in summaries.items():
        if summary is None:
            lines.append(f"| `{name}` | failed: see its log |" + " |" * (len(BASELINES) + 3))
            continue
        methods, best = summary["methods"], _best_wape(summary)
        ours = methods["storecast"]
        cells = [_wape_and_bias(ours, ours["wape"] == best)]
        for role in BASELINES:
            method = methods.get(role)
            cells.append("" if method is None else _wape_and_bias(method, method["wape"] == best))
        if "gb_events" in methods:
            cells[-1] += f" (given the events too: {_figure(methods['gb_events']['wape'])})"
        floor = methods.get("floor")
        cells.append("" if floor is None else _wape_and_bias(floor, False))
        cells.append(", ".join(_figure(c, 2) for c in summary["coverage_by_quartile"]))
        cells.append(_figure(ours["interval_score"], 4))
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        paired.append(f"| `{name}` | " + " | ".join(_paired_cell(summary, role) for role in BASELINES) + " |")
    return [
        *lines,
        "",
        "Storecast against each baseline, origin by origin (lower on how many origins; baseline",
        "minus storecast, ± two standard errors):",
        "",
        *paired,
    ]


def departments_table(summaries: dict[str, Summary | None]) -> list[str]:
    """Markdown: per department (one series alone) storecast's WAPE beside each baseline's,
    on how many origins it beats seasonal naive, its interval score; then the means."""
    lines = [
        "| department | storecast | "
        + " | ".join(BASELINES.values())
        + " | storecast lower than seasonal naive on | interval score |",
        "|---" * (len(BASELINES) + 4) + "|",
    ]
    wapes: dict[str, list[float]] = {"storecast": [], **{role: [] for role in BASELINES}}
    for name, summary in summaries.items():
        label = name.removeprefix("department ")
        if summary is None:
            lines.append(f"| {label} | failed: see its log |" + " |" * (len(BASELINES) + 2))
            continue
        methods, best = summary["methods"], _best_wape(summary)
        cells = []
        for role in wapes:
            method = methods.get(role)
            if method is None:
                cells.append("")
                continue
            wapes[role].append(method["wape"])
            wape = _figure(method["wape"])
            cells.append(f"**{wape}**" if method["wape"] == best else wape)
        against = methods["seasonal_naive"]["against_storecast"]
        cells.append(f"{against['lower_on']} of {against['origins']}")
        cells.append(_figure(methods["storecast"]["interval_score"], 4))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    means = [_figure(sum(v) / len(v)) if v else "" for v in wapes.values()]
    lines.append("| mean | " + " | ".join(means) + " | | |")
    return lines


def _commit() -> str:
    """The commit the runs ran at, marked where the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit (no git)"
    return f"{head} with uncommitted changes" if changed else head


def _commits(summaries: dict[str, Summary | None]) -> str:
    """The commit the figures were measured at, as each run recorded it (several, where
    ``--reuse`` took figures from more than one)."""
    commits = sorted(
        {str(s.get("commit", "an unrecorded commit")) for s in summaries.values() if s is not None}
    )
    if len(commits) == 1:
        return commits[0]
    return f"several commits ({', '.join(commits)})" if commits else "no commit (every run failed)"


def tables(summaries: dict[str, Summary | None], day: date, jobs: int) -> str:
    """The README's block: what was run at which commit, the shapes' tables and the
    departments' table."""
    by_table = {
        table: {run.name: summaries[run.name] for run in RUNS if run.table == table and run.name in summaries}
        for table in ("shapes", "departments")
    }
    out = [
        f"**Results.** Mean over the horizons forecast (weeks 1-4, months 1-3), one run of each at {_commits(summaries)}",
        f"({day.isoformat()}, `python -m benchmarks.demand_suite`, {jobs} run{'s' if jobs > 1 else ''} at a time).",
        "",
    ]
    if by_table["shapes"]:
        out += [*shapes_table(by_table["shapes"]), ""]
    if by_table["departments"]:
        out += [
            "The real set cut to one department (`--department N --origins 6`: one series, a",
            "one-product retailer), WAPE over 6 origins:",
            "",
            *departments_table(by_table["departments"]),
            "",
        ]
    return "\n".join(out)


def write_readme(path: Path, block: str) -> None:
    """Replace what lies between the README's two markers with ``block``."""
    text = path.read_text()
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise SystemExit(
            f"--readme {path}: no '{START_MARKER}' followed by '{END_MARKER}' to write the tables between"
        )
    path.write_text(text[: start + len(START_MARKER)] + "\n" + block.rstrip("\n") + "\n" + text[end:])


def _run(run: Run, out: Path, commit: str) -> tuple[Summary | None, float]:
    """One benchmark in its own process, its printout to ``<slug>.log``; its figures (with
    the commit they were measured at), or None where it failed, and its seconds."""
    figures, log = out / f"{run.slug}.json", out / f"{run.slug}.log"
    figures.unlink(missing_ok=True)
    started = time.perf_counter()
    with log.open("w") as printout:
        finished = subprocess.run(
            [sys.executable, "-u", "-m", "benchmarks.weekly_demand", *run.args, "--json", str(figures)],
            cwd=ROOT,
            stdout=printout,
            stderr=subprocess.STDOUT,
            # One thread per run: --jobs runs share the machine's cores. This checkout's code,
            # not another the environment has installed.
            env={
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
        )
    seconds = time.perf_counter() - started
    if finished.returncode != 0 or not figures.exists():
        return None, seconds
    summary: Summary = {**json.loads(figures.read_text()), "commit": commit}
    figures.write_text(json.dumps(summary, indent=2) + "\n")
    return summary, seconds


def run_all(runs: Sequence[Run], out: Path, jobs: int, reuse: bool, commit: str) -> dict[str, Summary | None]:
    """Run ``runs`` ``jobs`` at a time, longest first, saying as each ends how it went and
    about how long is left; with ``reuse``, a run whose figures are in ``out`` is not run
    again. The figures by run name (None: failed)."""
    summaries: dict[str, Summary | None] = {}
    pending = []
    for run in runs:
        figures = out / f"{run.slug}.json"
        if reuse and figures.exists():
            summaries[run.name] = json.loads(figures.read_text())
            print(f"{run.name}: figures from {figures}")
        else:
            pending.append(run)
    left = sum(run.minutes for run in pending)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(_run, run, out, commit): run for run in sorted(pending, key=lambda r: -r.minutes)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            run = futures[future]
            summary, seconds = future.result()
            summaries[run.name] = summary
            left -= run.minutes
            if summary is None:
                outcome = f"FAILED, see {out / f'{run.slug}.log'}"
            else:
                ours = summary["methods"]["storecast"]
                outcome = f"storecast WAPE {ours['wape']:.3f}, bias {ours['bias']:+.3f}"
            print(
                f"[{done}/{len(pending)}] {run.name}: {outcome} ({seconds / 60:.1f} min; "
                f"about {left / jobs:.0f} min left)",
                flush=True,
            )
    return {run.name: summaries[run.name] for run in runs}


def _selected(only: str | None, parser: argparse.ArgumentParser) -> list[Run]:
    if only is None:
        return list(RUNS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    known = {run.name: run for run in RUNS}
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"--only: no run named {', '.join(map(repr, unknown))}; the runs: {', '.join(known)}")
    return [known[name] for name in names]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the suite, print its tables, and with ``--readme`` write them there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2; each takes one core)")
    parser.add_argument("--only", default=None, help="comma-separated run names (default: every run)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "storecast-demand-suite",
        help="the folder for each run's printout and figures",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="take the figures already in --out instead of running again"
    )
    parser.add_argument(
        "--readme", type=Path, default=None, help="write the tables into this README between its markers"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: one run at a time or more")
    runs = _selected(args.only, parser)
    args.out.mkdir(parents=True, exist_ok=True)
    commit = _commit()
    print(
        f"{len(runs)} runs at {commit}, {args.jobs} at a time; printouts and figures in {args.out}",
        flush=True,
    )
    summaries = run_all(runs, args.out, args.jobs, args.reuse, commit)
    block = tables(summaries, date.today(), args.jobs)
    print()
    print(block)
    if args.readme is not None:
        write_readme(args.readme, block)
        print(f"written into {args.readme}")
    failed = [name for name, summary in summaries.items() if summary is None]
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: {', '.join(failed)} (their logs are in {args.out})")


if __name__ == "__main__":
    main()
