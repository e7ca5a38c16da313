"""What one access may see, as data: a Grant, and the conditions it is made of.

A Grant allows every record of the asking facility, and any other facility's record that meets
its condition. A condition is a tree over the two record fields a consent can name, the
resource type and the security labels: `TypeIn` and `LabelIn` (each possibly negated) at the
leaves, `AllOf` and `AnyOf` above them. Negation is pushed down to the leaves, so the tree maps
one to one onto a MongoDB filter of `$in`, `$nin`, `$and` and `$or` (see `consent.query`), and
its size grows with the provisions, never exponentially.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from consent.model import Label, Record


@dataclass(frozen=True)
class TypeIn:
    """The record's type is one of `types` (negated: none of them)."""

    types: frozenset[str]
    negated: bool = False


@dataclass(frozen=True)
class LabelIn:
    """The record carries at least one of `labels` (negated: none of them)."""

    labels: frozenset[Label]
    negated: bool = False


@dataclass(frozen=True)
class AllOf:
    """Every term holds; with no terms, always true."""

    terms: tuple["Condition", ...] = ()


@dataclass(frozen=True)
class AnyOf:
    """Some term holds; with no terms, never true."""

    terms: tuple["Condition", ...] = ()


Condition = TypeIn | LabelIn | AllOf | AnyOf
T = TypeVar("T")
TRUE: Condition = AllOf()
FALSE: Condition = AnyOf()


def holds(condition: Condition, resource_type: str, labels: frozenset[Label]) -> bool:
    """Tell whether a record of this type and these labels meets the condition."""
    match condition:
        case TypeIn(types, negated):
            return (resource_type in types) != negated
        case LabelIn(wanted, negated):
            return (not wanted.isdisjoint(labels)) != negated
        case AllOf(terms):
            return all(holds(t, resource_type, labels) for t in terms)
        case AnyOf(terms):
            return any(holds(t, resource_type, labels) for t in terms)
    raise TypeError(condition)


def where(resource_types: frozenset[str] | None, labels: frozenset[Label] | None) -> Condition:
    """Return the condition of a provision's record-side elements (absent ones always hold)."""
    terms: list[Condition] = []
    if resource_types is not None:
        terms.append(TypeIn(resource_types))
    if labels is not None:
        terms.append(LabelIn(labels))
    return all_of(*terms)


def negate(condition: Condition) -> Condition:
    """Return the negation, pushed down to the leaves (De Morgan)."""
    match condition:
        case TypeIn(types, negated):
            return TypeIn(types, not negated)
        case LabelIn(labels, negated):
            return LabelIn(labels, not negated)
        case AllOf(terms):
            return any_of(*(negate(t) for t in terms))
        case AnyOf(terms):
            return all_of(*(negate(t) for t in terms))
    raise TypeError(condition)


def all_of(*conditions: Condition) -> Condition:
    """Return the conjunction, flattened, with leaves on the same field merged where exact."""
    terms = _flatten(conditions, AllOf)
    if FALSE in terms:
        return FALSE
    types_in = _intersection([t.types for t in terms if isinstance(t, TypeIn) and not t.negated])
    types_out = _union(t.types for t in terms if isinstance(t, TypeIn) and t.negated)
    labels_out = _union(t.labels for t in terms if isinstance(t, LabelIn) and t.negated)
    merged: list[Condition] = []
    if types_in is not None:
        if not types_in - types_out:
            return FALSE
        merged.append(TypeIn(types_in - types_out))
    elif types_out:
        merged.append(TypeIn(types_out, negated=True))
    for term in terms:
        if isinstance(term, LabelIn) and not term.negated:
            # "one of A, and none of B" is "one of A - B, and none of B".
            if not term.labels - labels_out:
                return FALSE
            merged.append(LabelIn(term.labels - labels_out))
    if labels_out:
        merged.append(LabelIn(labels_out, negated=True))
    merged.extend(t for t in terms if isinstance(t, AnyOf))
    return _single(AllOf, merged)


def any_of(*conditions: Condition) -> Condition:
    """Return the disjunction, flattened, with leaves on the same field merged where exact."""
    terms = _flatten(conditions, AnyOf)
    if TRUE in terms:
        return TRUE
    types_in = _union(t.types for t in terms if isinstance(t, TypeIn) and not t.negated)
    types_out = _intersection([t.types for t in terms if isinstance(t, TypeIn) and t.negated])
    labels_in = _union(t.labels for t in terms if isinstance(t, LabelIn) and not t.negated)
    merged: list[Condition] = []
    if types_out is not None:
        if not types_out - types_in:
            return TRUE
        merged.append(TypeIn(types_out - types_in, negated=True))
    elif types_in:
        merged.append(TypeIn(types_in))
    if labels_in:
        merged.append(LabelIn(labels_in))
    for term in terms:
        if isinstance(term, LabelIn) and term.negated:
            # "one of A, or none of B" is "one of A, or none of B - A".
            if not term.labels - labels_in:
                return TRUE
            merged.append(LabelIn(term.labels - labels_in, negated=True))
    merged.extend(t for t in terms if isinstance(t, AllOf))
    return _single(AnyOf, merged)


def _flatten(conditions: tuple[Condition, ...], kind: type[AllOf] | type[AnyOf]) -> list[Condition]:
    flat: list[Condition] = []
    for condition in conditions:
        if isinstance(condition, kind):
            flat.extend(condition.terms)
        else:
            flat.append(condition)
    return list(dict.fromkeys(flat))


def _single(kind: type[AllOf] | type[AnyOf], terms: list[Condition]) -> Condition:
    unique = tuple(dict.fromkeys(terms))
    return unique[0] if len(unique) == 1 else kind(unique)


def _union(sets: Iterable[frozenset[T]]) -> frozenset[T]:
    return frozenset().union(*sets)


def _intersection(sets: list[frozenset[T]]) -> frozenset[T] | None:
    """Return the intersection, or None (no constraint) when there are no sets."""
    return frozenset.intersection(*sets) if sets else None


@dataclass(frozen=True)
class Grant:
    """Everything one access may see of a patient: the asking facility's own records, and any
    other facility's record that meets `condition`.

    For a break-the-glass access, `without_break_glass` is the condition the same access would
    have had without the emergency: records outside it were revealed by the emergency alone.
    """

    facility: str
    condition: Condition
    without_break_glass: Condition | None = None

    @property
    def everything(self) -> bool:
        """Tell whether every record of the patient is allowed."""
        return self.condition == TRUE

    def allows(self, record: Record) -> bool:
        """Tell whether the grant allows the record (what the database filter selects)."""
        return record.facility == self.facility or holds(
            self.condition, record.resource_type, record.labels
        )

    def by_break_glass(self, record: Record) -> bool:
        """Tell whether only break-the-glass allows the record (for the audit flag)."""
        if self.without_break_glass is None or record.facility == self.facility:
            return False
        return holds(self.condition, record.resource_type, record.labels) and not holds(
            self.without_break_glass, record.resource_type, record.labels
        )
