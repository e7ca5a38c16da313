"""Data quality per facility, scored 0–100 on the six axes of the national principle, from
the counters alone (hub/reporting/counters.py): no record is read to score.

- correct: the share of checked records with no error-level finding of the national profiles;
- sufficient: the share of checked records with every must-support element present;
- clean: the mean of the share of Patients identified by a valid national ID and the share
  duplicating none the facility already holds (same national ID);
- live: half for a submission within `EHRHUB_LIVE_DAYS`, half the share of records arriving
  within a day of their clinical event;
- unified: the share of checked records coded in the national code systems;
- shared: the share of Patients with a Consent letting other facilities use their records.

The composite is the mean of the axes a facility has figures for; facilities are ranked by it,
nationally and within their province. Each score drills down to the rules that cost points
(the counters of records breaking each rule): counts only, for the ministry. The records
themselves go to their own facility alone (`/quality/findings`).
"""

from datetime import date, datetime, timedelta
from typing import Any

from fhir_profiles.validator import Validator
from hub.reporting.counters import Counters, rule_of
from hub.reporting.coverage import Figures, Registered, Registry, snapshot

AXES = ("correct", "sufficient", "clean", "live", "unified", "shared")
SEVERITY_ORDER = {"error": 0, "warning": 1, "information": 2}
Row = dict[str, Any]


def _percent(part: float, whole: float) -> float | None:
    return round(100 * min(part / whole, 1.0), 1) if whole > 0 else None


def axis_scores(f: Figures, at: datetime, live_days: int) -> dict[str, float | None]:
    """Score a facility's figures on each axis; None where it has no figures for one."""
    checked = f.q.get("checked", 0)
    patients = f.q.get("patients", 0)
    identified = _percent(f.q.get("identified", 0), patients)
    unduplicated = _percent(max(f.patients - f.duplicates, 0), f.patients)
    clean_parts = [s for s in (identified, unduplicated) if s is not None]
    fresh = f.last is not None and at - f.last <= timedelta(days=live_days)
    timely = _percent(f.timely, f.delays)
    live = None
    if f.first is not None:  # without event times, freshness counts for both halves
        live = round(50 * fresh + (timely / 2 if timely is not None else 50 * fresh), 1)
    return {
        "correct": _percent(f.q.get("valid", 0), checked),
        "sufficient": _percent(f.q.get("complete", 0), checked),
        "clean": round(sum(clean_parts) / len(clean_parts), 1) if clean_parts else None,
        "live": live,
        "unified": _percent(f.q.get("coded", 0), checked),
        "shared": _percent(f.consents_permit, f.patients),
    }


def composite(scores: dict[str, float | None]) -> float | None:
    """The mean of the axes that have a score."""
    known = [s for s in scores.values() if s is not None]
    return round(sum(known) / len(known), 1) if known else None


def _ranked(rows: list[Row], field: str) -> None:
    """Rank rows by composite, best first (1); rows without one get no rank."""
    order = sorted(
        (r for r in rows if r["composite"] is not None), key=lambda r: -float(r["composite"])
    )
    for place, row in enumerate(order, 1):
        row[field] = place


def _mean_scores(rows: list[Row]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for axis in AXES:
        known = [r["scores"][axis] for r in rows if r["scores"][axis] is not None]
        found[axis] = round(sum(known) / len(known), 1) if known else None
    return found


async def quality(
    registry: Registry,
    counters: Counters,
    scope: dict[str, list[str]],
    on: date | None,
    live_days: int,
) -> Row:
    """Every facility's scores, composite and ranks; each province's and the nation's."""
    at, known, counted = await snapshot(registry, counters, on)
    # A facility named outright is scored even before the registry lists it.
    for code in scope.get("facility", []):
        if code not in known and code in counted:
            known = known | {code: Registered(code)}
    rows = []
    for f in sorted(known.values(), key=lambda f: (f.province, f.code)):
        if not f.within(scope):
            continue
        scores = axis_scores(counted.get(f.code, Figures()), at, live_days)
        rows.append(_row(f) | {"scores": scores, "composite": composite(scores)})
    _ranked(rows, "rank")
    provinces: dict[str, list[Row]] = {}
    for row in rows:
        provinces.setdefault(row["province"], []).append(row)
    summaries = []
    for province, members in sorted(provinces.items()):
        _ranked(members, "province_rank")
        scores = _mean_scores(members)
        summaries.append(
            {
                "province": province,
                "name": members[0]["province_name"],
                "facilities": len(members),
                "scores": scores,
                "composite": composite(scores),
            }
        )
    _ranked(summaries, "rank")
    national = _mean_scores(rows)
    return {
        "date": counters.clock.day_of(at).isoformat(),
        "axes": list(AXES),
        "scope": {k: v for k, v in scope.items() if v},
        "national": {"scores": national, "composite": composite(national)},
        "provinces": summaries,
        "facilities": rows,
    }


def _row(f: Registered) -> Row:
    return {
        "facility": f.code,
        "name": f.name,
        "province": f.province,
        "province_name": f.province_name,
        "level": f.level,
        "type": f.type,
        "ownership": f.ownership,
        "rank": None,
        "province_rank": None,
    }


def facility_quality(row: Row, f: Figures, validator: Validator) -> Row:
    """One facility's scores (its row of the quality report) with the rules that cost it
    points, worst first, and how many of its records break each."""
    catalogue = validator.rules()
    checked = max(f.q.get("checked", 0), 1)
    worst: list[Row] = []
    for field, records in f.rules.items():
        if records <= 0:
            continue
        rule = rule_of(field)
        severity, axis = catalogue.get(rule, ("error", "correct"))
        worst.append(
            {
                "rule": rule,
                "severity": severity,
                "axis": axis,
                "records": int(records),
                "share": round(int(records) / checked, 4),
            }
        )
    worst.sort(key=lambda r: (SEVERITY_ORDER.get(r["severity"], 3), -r["records"], r["rule"]))
    return row | {"checked": f.q.get("checked", 0), "worst_rules": worst}
