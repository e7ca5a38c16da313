"""The national rollout roadmap: milestones, and where the country stands against each.

The country pack's `roadmap.json` holds the published deadlines; a deployment adds its own
milestones with `EHRHUB_ROADMAP_FILE` (the same format). A milestone has an id, a due date, a
title per language, a scope (facility codes, provinces, levels, types or ownerships; empty:
every registered facility) and targets:

- `connected_share`: the share of the scope's registered facilities connected (0 to 1);
- `people`: how many people have an electronic record (distinct national IDs, nationally);
- `exchanged`: how many records facilities read that other facilities hold (nationally).

Each milestone is reported met, on track (the last 30 days' pace reaches the target by the
due date), behind, or missed, with the connected share day by day for its chart.
"""

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir_profiles.pack import Pack
from hub.reporting.counters import Counters
from hub.reporting.coverage import Figures, Registry, figures

TARGETS = ("connected_share", "people", "exchanged")
SCOPES = ("facility", "province", "level", "type", "ownership")
PACE_DAYS = 30
Row = dict[str, Any]


class RoadmapError(ValueError):
    """A roadmap file that cannot be read: the message names the milestone and the field."""


@dataclass(frozen=True)
class Milestone:
    """One dated target of the roadmap."""

    id: str
    due: date
    title: dict[str, str]
    scope: dict[str, list[str]]
    targets: dict[str, float]


def _milestone(raw: Any, where: str) -> Milestone:
    if not isinstance(raw, dict):
        raise RoadmapError(f"{where}: a milestone is a JSON object")
    name = f"{where} ({raw.get('id')})"
    try:
        due = date.fromisoformat(str(raw.get("due")))
    except ValueError:
        raise RoadmapError(f"{name}: due must be a date like 2026-12-31") from None
    scope, targets, title = raw.get("scope") or {}, raw.get("targets") or {}, raw.get("title")
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise RoadmapError(f"{where}: a milestone needs an id")
    if not isinstance(title, dict) or not title:
        raise RoadmapError(f'{name}: title must map languages to text, e.g. {{"en": …}}')
    unknown = set(scope) - set(SCOPES) or set(targets) - set(TARGETS)
    if unknown:
        raise RoadmapError(
            f"{name}: unknown {', '.join(sorted(unknown))}; scopes are {', '.join(SCOPES)}, "
            f"targets {', '.join(TARGETS)}"
        )
    if not targets:
        raise RoadmapError(f"{name}: a milestone needs a target")
    share = targets.get("connected_share", 0)
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        raise RoadmapError(f"{name}: connected_share is a share from 0 to 1")
    return Milestone(
        raw["id"],
        due,
        {str(k): str(v) for k, v in title.items()},
        {k: [str(v) for v in values] for k, values in scope.items()},
        {k: float(v) for k, v in targets.items()},
    )


def milestones(pack: Pack, extra: Path | None = None) -> list[Milestone]:
    """Return the pack's milestones and a deployment's own, by due date."""
    # A pack without a roadmap has no milestones of its own.
    sources: list[tuple[str, Any]] = []
    if pack.roadmap:
        sources.append((f"{pack.country}/roadmap.json", pack.roadmap))
    if extra is not None:
        try:
            sources.append((str(extra), json.loads(extra.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as error:
            raise RoadmapError(f"{extra}: cannot be read as JSON: {error}") from None
    found: dict[str, Milestone] = {}
    for where, data in sources:
        raw = data.get("milestones") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise RoadmapError(f'{where}: expected {{"milestones": [...]}}')
        for i, item in enumerate(raw):
            milestone = _milestone(item, f"{where} milestone {i + 1}")
            if milestone.id in found:
                raise RoadmapError(f"{where}: the milestone id {milestone.id} is taken")
            found[milestone.id] = milestone
    return sorted(found.values(), key=lambda m: (m.due, m.id))


def _trend(connected_on: list[date], registered: int, until: date) -> list[Row]:
    """The connected share at the end of each day, from the first connection to `until`
    (`connected_on`: the local day each facility first submitted)."""
    if not connected_on or not registered:
        return []
    days = sorted(connected_on)
    day, points, i = days[0], [], 0
    while day <= until:
        while i < len(days) and days[i] <= day:
            i += 1
        points.append({"day": day.isoformat(), "connected_share": round(i / registered, 4)})
        day += timedelta(days=1)
    return points


def _status(milestone: Milestone, actual: dict[str, float], trend: list[Row], on: date) -> str:
    """Met, on track, behind or missed."""
    if all(actual.get(k, 0) >= v for k, v in milestone.targets.items()):
        return "met"
    if on > milestone.due:
        return "missed"
    share_target = milestone.targets.get("connected_share")
    if share_target is None or len(trend) < 2:
        return "behind"
    before = trend[max(0, len(trend) - 1 - PACE_DAYS)]
    span = (on - date.fromisoformat(before["day"])).days or 1
    pace = (actual["connected_share"] - before["connected_share"]) / span
    reached = actual["connected_share"] + pace * (milestone.due - on).days
    return "on track" if reached >= share_target else "behind"


async def roadmap(
    registry: Registry, counters: Counters, plan: list[Milestone], on: date | None
) -> Row:
    """Each milestone with its targets, where the country stands, its status and trend."""
    today = on or counters.clock.today()
    known = await registry.facilities()
    counted = await figures(counters, on)
    people = await counters.people(on)
    exchanged = sum(f.exchanged_out for f in counted.values())
    rows = []
    for milestone in plan:
        scope = [code for code, f in known.items() if f.within(milestone.scope)]
        firsts = [
            first for code in scope if (first := counted.get(code, Figures()).first) is not None
        ]
        share = len(firsts) / len(scope) if scope else 0.0
        actual = {"registered": len(scope), "connected": len(firsts), "connected_share": share}
        actual["people"] = people
        actual["exchanged"] = exchanged
        trend = _trend([counters.clock.day_of(f) for f in firsts], len(scope), today)
        rows.append(
            {
                "id": milestone.id,
                "due": milestone.due.isoformat(),
                "title": milestone.title,
                "scope": milestone.scope,
                "targets": milestone.targets,
                "actual": {
                    k: round(v, 4) if isinstance(v, float) else v for k, v in actual.items()
                },
                "status": _status(milestone, actual, trend, today),
                "days_left": (milestone.due - today).days,
                "trend": trend,
            }
        )
    return {"date": today.isoformat(), "milestones": rows}
