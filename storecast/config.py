"""Project settings: the dbt vars that describe a retailer's data, resolved from one place.

Defaults are the ``vars:`` of ``dbt_project.yml`` and nowhere else. A project file
(``storecast.yml`` in the working directory, or the path in ``STORECAST_CONFIG``)
may set any of them under ``vars:``; ``--var NAME=VALUE`` on a command overrides
one for that command. Every value is checked against its default's type (and,
for the few vars with a fixed set of values, against that set) before anything
runs, and each effective value remembers where it came from for ``storecast config``.

dbt receives the overrides with ``--vars``; model specs read their horizons from
the same values, so a horizon is stated exactly once.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from storecast.database.key_codes import KEY_COLUMNS

#: The dbt project (dbt_project.yml, profiles.yml, models_sql/, dbt_project/), shipped in
#: the package; in a checkout its entries link to the repository root's.
PROJECT_DIR = Path(os.environ.get("STORECAST_PROJECT_DIR") or Path(__file__).resolve().parent / "dbt")
#: The project settings file looked for in the working directory.
CONFIG_FILE = "storecast.yml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Vars whose values come from a fixed set (dbt checks them too, where it uses them).
CHOICES: dict[str, tuple[str, ...]] = {
    "demand_grain": ("day", "week", "month"),
    "demand_missing_periods": ("zero", "unobserved"),
    "stock_counts": ("daily", "on_change"),
    "week_start": WEEKDAYS,
}
#: Vars that list values from a fixed set.
LIST_CHOICES: dict[str, tuple[str, ...]] = {"coded_keys": KEY_COLUMNS}
#: Days in one demand period, by grain: at month grain the most a month holds, an upper
#: bound for spans counted in days (the embargo before a held-out window).
PERIOD_DAYS = {"day": 1, "week": 7, "month": 31}
#: One demand period as a Postgres interval, by grain: what a label window adds to its start.
PERIOD_INTERVALS = {"day": "1 day", "week": "7 days", "month": "1 month"}
#: Vars counted in demand periods whose default is a number of days: at week or month grain,
#: left at the default, they keep the same span in weeks (28 days ahead: 4 weeks, not 28),
#: or months (1 month).
DAYS_BY_DEFAULT = frozenset({"demand_horizon"})
#: Vars that are dates (their default is null: "derived from the data").
DATE_VARS = frozenset({"as_of_date"})
#: Whole-number vars for which 0 means "none" (0 reasons kept per score row); every other
#: number must be above 0.
ZERO_ALLOWED = frozenset({"explanation_reasons"})
#: Vars that are shares or probabilities: above 0 and at most 1, or below 1 where 1 means
#: nothing (a service level of 100 % has no safety stock that reaches it).
FRACTIONS: dict[str, bool] = {
    "service_level": False,
    "sell_through_target_share": True,
    "sell_through_block_below": True,
}
#: The longest span a setting counted in days or weeks (named ``..._days``, ``..._weeks``) may give.
_LONGEST_SPAN = {"days": 36_525, "weeks": 5_218}
#: Vars that set how many weeks of as-of dates the feature tables keep.
HISTORY_LENGTHS = ("history_weeks", "demand_history_weeks")
#: Vars that only add or drop as-of dates of an incremental feature table (the scoring
#: date, the history lengths): a change of any other var it reads rebuilds the table.
NOT_REBUILDING = frozenset({"as_of_date", "demand_max_rows", *HISTORY_LENGTHS})


class ConfigError(ValueError):
    """A setting is unknown, has the wrong type, or the settings file is unreadable."""


@dataclass(frozen=True)
class ProjectConfig:
    """Effective settings: every var's value and where it came from."""

    values: dict[str, Any]
    sources: dict[str, str]
    defaults: dict[str, Any] = field(repr=False)

    def overrides(self) -> dict[str, Any]:
        """Vars that differ from dbt_project.yml's defaults: what dbt gets as ``--vars``."""
        return {k: v for k, v in self.values.items() if self.sources[k] != "default"}

    @property
    def as_of(self) -> date | None:
        """The scoring date, when one is set."""
        value = self.values.get("as_of_date")
        return None if value is None else date.fromisoformat(str(value))

    @property
    def period_days(self) -> int:
        """Days in one demand period (1 at day grain, 7 at week grain, at most 31 at month grain)."""
        return PERIOD_DAYS[str(self.values["demand_grain"])]

    def with_as_of(self, as_of: date | None, source: str = "--as-of") -> ProjectConfig:
        """The same settings with the scoring date set (``None`` keeps the current one)."""
        if as_of is None:
            return self
        return _checked(
            dict(self.values, as_of_date=as_of.isoformat()),
            dict(self.sources, as_of_date=source),
            self.defaults,
        )


def project_defaults(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The ``vars:`` of ``dbt_project.yml``: every setting and its default."""
    path = project_dir / "dbt_project.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(data.get("vars") or {})


def setting_docs(project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """What each setting means: the comment above it in ``dbt_project.yml``'s ``vars:``
    (where it is documented once), or, for one that shares the comment of those above it
    (``lead_time_days`` and ``review_period_days``), that comment; a comment that goes on
    from the one before (``... unless``) is read after it."""
    docs: dict[str, str] = {}
    comment: list[str] = []
    shared = ""
    in_vars = False
    for line in (project_dir / "dbt_project.yml").read_text(encoding="utf-8").splitlines():
        if not in_vars:
            in_vars = line.rstrip() == "vars:"
            continue
        if line and not line.startswith(" "):
            break
        text = line.strip()
        if text.startswith("#"):
            comment.append(text.lstrip("#").strip())
        elif ":" in text:
            own = " ".join(comment)
            if own.startswith("...") and shared.endswith("..."):
                own = f"{shared.removesuffix('...').rstrip()} {own.removeprefix('...').lstrip()}"
            shared = own or shared
            docs[text.partition(":")[0]] = shared
            comment = []
    return docs


def require_known(name: str, defaults: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError`, naming the closest settings, when ``name`` is not a setting."""
    _known(name, defaults, name)


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The settings file in use: ``STORECAST_CONFIG``, else ``./storecast.yml`` if it exists."""
    env = os.environ if environ is None else environ
    named = env.get("STORECAST_CONFIG", "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"STORECAST_CONFIG names {path}, which is not a file")
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def parse_var(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; the value is read as YAML (``4``, ``0.9``, ``week``)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--var {text!r}: expected NAME=VALUE, e.g. --var demand_grain=week")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--var {name}: cannot read {raw!r}: {exc}") from None
    return name, value


def load_config(
    cli_vars: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    project_dir: Path = PROJECT_DIR,
) -> ProjectConfig:
    """Effective settings: defaults, then the settings file, then ``--var`` values.

    Raises :class:`ConfigError` naming the setting (and the file) for an unknown
    name, a value of the wrong type, or an unreadable file.
    """
    defaults = project_defaults(project_dir)
    values = dict(defaults)
    sources = dict.fromkeys(defaults, "default")
    path = config_path(environ)
    if path is not None:
        for name, value in _file_vars(path).items():
            _known(name, defaults, f"{path}: vars.{name}")
            values[name], sources[name] = value, str(path)
    for text in cli_vars:
        name, value = parse_var(text)
        _known(name, defaults, f"--var {name}")
        values[name], sources[name] = value, "--var"
    _default_spans_in_periods(values, sources, defaults)
    return _checked(values, sources, defaults)


def _default_spans_in_periods(
    values: dict[str, Any], sources: dict[str, str], defaults: dict[str, Any]
) -> None:
    """A default counted in days keeps its span at a longer grain (its source says so, and
    dbt gets the value as an override); a value set anywhere is left as set."""
    days = PERIOD_DAYS.get(str(values.get("demand_grain")), 1)
    if days == 1:
        return
    for name in DAYS_BY_DEFAULT & set(defaults):
        if sources[name] == "default" and isinstance(defaults[name], int):
            values[name] = max(1, round(defaults[name] / days))
            sources[name] = f"default ({defaults[name]} days at demand_grain {values['demand_grain']})"


def _file_vars(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'vars:' section")
    unknown = sorted(set(data) - {"vars"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; settings go under 'vars:'")
    section = data.get("vars") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'vars:' must be a mapping of setting names to values")
    return {str(k): v for k, v in section.items()}


def _known(name: str, defaults: Mapping[str, Any], where: str) -> None:
    if name not in defaults:
        close = difflib.get_close_matches(name, list(defaults), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(f"{where}: unknown setting{hint} (`storecast config` lists them all)")


def _checked(values: dict[str, Any], sources: dict[str, str], defaults: dict[str, Any]) -> ProjectConfig:
    for name, value in values.items():
        problem = _type_problem(name, value, defaults[name])
        if problem:
            raise ConfigError(f"setting {name} (from {sources[name]}): {problem}")
    # YAML reads an unquoted 2026-11-08 as a date; dbt's --vars are JSON, which has none.
    dates = {
        name: date.fromisoformat(str(values[name])).isoformat() for name in DATE_VARS if values.get(name)
    }
    values = {**values, **dates}
    config = ProjectConfig(values=values, sources=sources, defaults=defaults)
    _check_week_alignment(config)
    return config


def _type_problem(name: str, value: Any, default: Any) -> str | None:
    if name in DATE_VARS:
        if value is None:
            return None
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return f"expected a date as YYYY-MM-DD, got {value!r}"
        return None
    if name in LIST_CHOICES:
        allowed = LIST_CHOICES[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"expected a list of names, e.g. [{allowed[0]}, {allowed[1]}], got {value!r}"
        unknown = [v for v in value if v not in allowed]
        return f"unknown {', '.join(unknown)}; expected names among {', '.join(allowed)}" if unknown else None
    if name in CHOICES:
        return (
            None if value in CHOICES[name] else f"expected one of {', '.join(CHOICES[name])}, got {value!r}"
        )
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {value!r}"
        if name in ZERO_ALLOWED:
            return None if value >= 0 else f"expected 0 or more, got {value}"
        longest = _LONGEST_SPAN.get(name.rsplit("_", 1)[-1])
        if longest is not None and value > longest:
            # Dates this far back or ahead pass the calendar's ends (a build would fail on
            # "date out of range"); no retail history or horizon comes near.
            return f"expected at most {longest} (a century), got {value}"
        return None if value > 0 else f"expected a number above 0, got {value}"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
        if name in FRACTIONS:
            within = 0 < value <= 1 if FRACTIONS[name] else 0 < value < 1
            upper = "at most 1" if FRACTIONS[name] else "below 1"
            return None if within else f"expected a fraction above 0 and {upper} (0.95 for 95 %), got {value}"
        return None if value > 0 else f"expected a number above 0, got {value}"
    if isinstance(default, str):
        return None if isinstance(value, str) and value else f"expected text, got {value!r}"
    return None


def _check_week_alignment(config: ProjectConfig) -> None:
    """At week or month grain a scoring date must start a period, or the demand rows would be empty."""
    as_of = config.as_of
    grain = config.values["demand_grain"]
    if as_of is None or grain == "day":
        return
    if grain == "month":
        if as_of.day != 1:
            raise ConfigError(
                f"as-of date {as_of} is not a month's first day, but with demand_grain month periods "
                f"are calendar months; use {as_of.replace(day=1)}"
            )
        return
    start = str(config.values["week_start"])
    if WEEKDAYS[as_of.weekday()] != start:
        shift = (as_of.weekday() - WEEKDAYS.index(start)) % 7
        earlier = date.fromordinal(as_of.toordinal() - shift)
        raise ConfigError(
            f"as-of date {as_of} is a {WEEKDAYS[as_of.weekday()]}, but with demand_grain week periods "
            f"start on {start}s (setting week_start); use {earlier} or set week_start"
        )
