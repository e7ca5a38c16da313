"""A provision as the engine evaluates it: its effect, what it covers, and its exceptions."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from consent.icd10 import ICD10_SYSTEMS, Icd10Codes
from consent.model import Access, Code, Label, Record

Effect = Literal["deny", "permit"]


class Unenforceable(Exception):
    """An element the engine cannot enforce: `where` is its path below the element read
    ("[0].meaning" under provision.data), `problem` what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Codes:
    """The codes a provision.code names: exact (system, code) pairs, and ICD-10 spans."""

    exact: frozenset[Code] = frozenset()
    icd10: Icd10Codes = Icd10Codes()

    def covers(self, codes: frozenset[Code]) -> bool:
        """Tell whether a record carrying these codes carries one of the provision's."""
        if not self.exact.isdisjoint(codes):
            return True
        if self.icd10.prefixes or self.icd10.ranges:
            return any(
                system in ICD10_SYSTEMS and self.icd10.covers(code) for system, code in codes
            )
        return False


def overlaps(
    period: tuple[datetime, datetime], start: datetime | None, end: datetime | None
) -> bool:
    """Tell whether a record's [start, end) period meets [start, end); an instant period
    (start == end) meets it when it lies inside."""
    first, after = period
    if end is not None and first >= end:
        return False
    if start is None:
        return True
    return start < after or (first == after and start <= first)


@dataclass(frozen=True)
class Provision:
    """One provision: its effect where all its conditions hold, and its exceptions.

    A condition left as None is absent and holds for every access and record.
    Access side: `actors` are the facility codes of the readers it names and
    `practitioners` the clinicians (a provision naming only readers that never read through
    the hub has both empty, and covers no access); `purposes`; `start` and `end` bound the
    instants it is in force, `end` exclusive.
    Record side: `classes` (resource types), `labels` (any one), `custodians` (the facility
    holding the record), `data_keys` (the record is one of these) with `data_referenced`
    (or refers to one of these), `data_start`/`data_end` (its period overlaps), `codes`.
    """

    path: str
    effect: Effect
    actors: frozenset[str] | None = None
    practitioners: frozenset[str] = frozenset()
    purposes: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    classes: frozenset[str] | None = None
    labels: frozenset[Label] | None = None
    custodians: frozenset[str] | None = None
    data_keys: frozenset[str] | None = None
    data_referenced: frozenset[str] = frozenset()
    data_period: bool = False
    data_start: datetime | None = None
    data_end: datetime | None = None
    codes: Codes | None = None
    provisions: tuple["Provision", ...] = ()

    def covers_access(self, access: Access) -> bool:
        """Tell whether the access-side conditions (actor, purpose, period) hold."""
        return (
            (
                self.actors is None
                or access.facility in self.actors
                or (access.practitioner is not None and access.practitioner in self.practitioners)
            )
            and (self.purposes is None or access.purpose in self.purposes)
            and (self.start is None or self.start <= access.at)
            and (self.end is None or access.at < self.end)
        )

    def covers_record(self, record: Record) -> bool:
        """Tell whether the record-side conditions hold."""
        return (
            (self.classes is None or record.resource_type in self.classes)
            and (self.labels is None or not self.labels.isdisjoint(record.labels))
            and (self.custodians is None or record.facility in self.custodians)
            and (
                self.data_keys is None
                or record.key in self.data_keys
                or not self.data_referenced.isdisjoint(record.references)
            )
            and (
                not self.data_period
                or (
                    record.period is not None
                    and overlaps(record.period, self.data_start, self.data_end)
                )
            )
            and (self.codes is None or self.codes.covers(record.codes))
        )
