"""Whether a code belongs to a ValueSet of a country pack.

Decided from the pack's own resources: a ValueSet's expansion or its compose (include and
exclude by system, by concept list, by other value sets), the concepts of the pack's complete
CodeSystems, and, for two code systems whose tables the hub does not ship, the code's form:
LOINC (digits, hyphen, mod-10 check digit) and UCUM (the common units, or a syntax check).
Answers are True, False, or None when the pack cannot decide.
https://hl7.org/fhir/R4/valueset.html#compositions
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fhir_profiles.pack import Pack, Resource

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
UCUM_COMMON = "http://hl7.org/fhir/ValueSet/ucum-common"

Answer = bool | None


@dataclass(frozen=True)
class _Part:
    """One include or exclude of a ValueSet compose, its lists made sets."""

    system: str | None
    codes: frozenset[str] | None  # the listed concepts; None: the whole system
    value_sets: tuple[str, ...]
    filtered: bool


@dataclass(frozen=True)
class _ValueSet:
    include: tuple[_Part, ...]
    exclude: tuple[_Part, ...]
    expansion: frozenset[tuple[str, str]] | None  # (system, code) of expansion.contains
    expansion_whole: bool  # False when the expansion is one page of a larger one


class Terminology:
    """The value sets and code systems of one pack, ready to answer membership per coding."""

    def __init__(self, pack: Pack) -> None:
        self._value_sets = {url: _compile(vs) for url, vs in pack.value_sets.items()}
        self._concepts: dict[str, frozenset[str]] = {}
        self._complete: set[str] = set()
        for url, code_system in pack.code_systems.items():
            self._concepts[url] = frozenset(_codes(code_system.get("concept") or []))
            if code_system.get("content") == "complete":
                self._complete.add(url)
        common = self._value_sets.get(UCUM_COMMON)
        self._ucum_common = frozenset(
            code
            for part in (common.include if common else ())
            if part.system == UCUM_SYSTEM and part.codes is not None
            for code in part.codes
        )
        self._by_form: dict[str, Callable[[str], Answer]] = {
            LOINC_SYSTEM: _loinc_member,
            UCUM_SYSTEM: lambda unit: unit in self._ucum_common or ucum_ok(unit),
        }

    def knows(self, value_set: str) -> bool:
        """Return whether the pack has a ValueSet (its canonical URL, `|version` ignored)."""
        return _canonical(value_set) in self._value_sets

    def member(self, value_set: str, system: str | None, code: str) -> bool | None:
        """Return whether a code of a system is in a ValueSet; None when the ValueSet is not in
        the pack or membership cannot be decided. A code without a system (an element of type
        `code`) is matched against the codes of whatever system the ValueSet draws on."""
        if not isinstance(code, str) or not code:
            return False
        return self._member(_canonical(value_set), system, code, ())

    def systems(self, value_set: str) -> frozenset[str]:
        """Return the code systems a ValueSet draws its codes from (empty when unknown)."""
        return frozenset(self._systems(_canonical(value_set), ()))

    def _member(self, url: str, system: str | None, code: str, seen: tuple[str, ...]) -> Answer:
        compiled = self._value_sets.get(url)
        if compiled is None or url in seen:
            return None
        if compiled.expansion is not None:
            found = any(
                c == code and (system is None or s == system) for s, c in compiled.expansion
            )
            return True if found else (False if compiled.expansion_whole else None)
        seen = (*seen, url)
        included = _any(self._part(p, system, code, seen) for p in compiled.include)
        if included is False:
            return False
        excluded = _any(self._part(p, system, code, seen) for p in compiled.exclude)
        if excluded is True:
            return False
        return True if included is True and excluded is False else None

    def _part(self, part: _Part, system: str | None, code: str, seen: tuple[str, ...]) -> Answer:
        answers: list[Answer] = []
        if part.system is not None:
            if system is not None and system != part.system:
                return False
            answers.append(self._in_system(part, code))
        answers += [self._member(vs, system, code, seen) for vs in part.value_sets]
        return _all(answers) if answers else False

    def _in_system(self, part: _Part, code: str) -> Answer:
        if part.codes is not None:
            return code in part.codes
        exists = self._in_whole_system(str(part.system), code)
        # A filter (is-a, regex, …) is not evaluated: only a code outside the system is decided.
        return None if part.filtered and exists is not False else exists

    def _in_whole_system(self, system: str, code: str) -> Answer:
        if system in self._complete:
            return code in self._concepts[system]
        by_form = self._by_form.get(system)
        if by_form is not None:
            return by_form(code)
        if system in self._concepts and code in self._concepts[system]:
            return True  # a fragment of the system lists it
        return None

    def _systems(self, url: str, seen: tuple[str, ...]) -> Iterator[str]:
        compiled = self._value_sets.get(url)
        if compiled is None or url in seen:
            return
        if compiled.expansion is not None:
            yield from (s for s, _ in compiled.expansion if s)
        for part in compiled.include:
            if part.system is not None:
                yield part.system
            for value_set in part.value_sets:
                yield from self._systems(value_set, (*seen, url))


def loinc_check_digit_ok(code: str) -> bool:
    """Return whether a code has LOINC's form, 1-7 digits, a hyphen and a check digit, and its
    check digit is LOINC's mod-10 (Luhn) digit of the digits before the hyphen."""
    match = _LOINC_CODE.fullmatch(code)
    if match is None:
        return False
    digits, check = match.groups()
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10 == int(check)


def ucum_ok(unit: str) -> bool:
    """Return whether a unit follows UCUM's syntax with atoms and prefixes the hub knows:
    components joined by `.` and `/`, each an atom (with a metric prefix if the atom takes one)
    with an integer exponent and an annotation `{…}`, a bare annotation, a number, `10*n`, or a
    term in parentheses. The common atoms only; see `_METRIC_ATOMS` and `_OTHER_ATOMS`."""
    if not unit or not unit.isascii() or len(unit) > 200:
        return False
    return _Ucum(unit).main_term()


def _compile(value_set: Resource) -> _ValueSet:
    compose = value_set.get("compose") or {}
    expansion = value_set.get("expansion")
    contains = frozenset(_contains((expansion or {}).get("contains") or []))
    whole = expansion is not None and (
        "offset" not in expansion and expansion.get("total", len(contains)) <= len(contains)
    )
    return _ValueSet(
        include=tuple(_part(p) for p in compose.get("include") or []),
        exclude=tuple(_part(p) for p in compose.get("exclude") or []),
        expansion=contains if expansion is not None else None,
        expansion_whole=whole,
    )


def _part(part: Resource) -> _Part:
    concepts = part.get("concept")
    return _Part(
        system=part.get("system"),
        codes=frozenset(c["code"] for c in concepts) if concepts else None,
        value_sets=tuple(_canonical(v) for v in part.get("valueSet") or []),
        filtered=bool(part.get("filter")),
    )


def _codes(concepts: list[Resource]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _codes(concept.get("concept") or [])


def _contains(contains: list[Resource]) -> Iterator[tuple[str, str]]:
    for entry in contains:
        if "code" in entry and not entry.get("abstract"):
            yield entry.get("system", ""), entry["code"]
        yield from _contains(entry.get("contains") or [])


def _canonical(url: str) -> str:
    return url.partition("|")[0]


def _any(answers: Iterable[Answer]) -> Answer:
    found = list(answers)
    return True if True in found else (None if None in found else False)


def _all(answers: Iterable[Answer]) -> Answer:
    found = list(answers)
    return False if False in found else (None if None in found else True)


_LOINC_CODE = re.compile(r"([0-9]{1,7})-([0-9])")
# LOINC's answer (LA), part (LP), group (LG) and answer-list (LL) codes: of LOINC, but their
# check digits are not verified here.
_LOINC_OTHER = re.compile(r"L[APGL][0-9]{1,8}-[0-9]")


def _loinc_member(code: str) -> Answer:
    if loinc_check_digit_ok(code):
        return True
    return None if _LOINC_OTHER.fullmatch(code) else False


_PREFIXES = (
    "da", "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "d", "c", "m", "u", "n", "p", "f", "a",
    "z", "y", "Ki", "Mi", "Gi", "Ti",
)  # fmt: skip
# Atoms that take a prefix: SI units and the metric units of UCUM's tables.
_METRIC_ATOMS = frozenset(
    "m s g rad K C cd mol sr Hz N Pa J W A V F Ohm S Wb Cel T H lm lx Bq Gy Sv L l ar t bar u "
    "eV cal eq osm U [iU] [IU] kat Ci R RAD REM G Np B m[Hg] m[H2O] g% gf dyn erg P St Mx Gb "
    "Oe Lmb ph".split()
)
# Atoms that take none: the unity-like atoms, time, angle, and the common customary and
# arbitrary units of clinical use.
_OTHER_ATOMS = frozenset(
    "10* 10^ [pi] % [ppth] [ppm] [ppb] [pptr] min h d a wk mo a_j a_t a_g mo_j mo_g mo_s deg ' "
    "'' gon circ [in_i] [ft_i] [yd_i] [mi_i] [nmi_i] [lb_av] [oz_av] [dr_av] [gr] [ston_av] "
    "[degF] [degR] [pH] [drp] [gal_us] [qt_us] [pt_us] [foz_us] [tbs_us] [tsp_us] [cup_us] "
    "[fdr_us] [gal_br] [pt_br] [foz_br] [in_i'Hg] [in_i'H2O] [psi] atm [HPF] [LPF] [CFU] "
    "[PFU] [FFU] [arb'U] [USP'U] [GPL'U] [MPL'U] [APL'U] [beth'U] [anti'Xa'U] [todd'U] "
    "[dye'U] [smgy'U] [bdsk'U] [ka'U] [knk'U] [mclg'U] [tb'U] [EU] [Lf] [D'ag'U] [AU] [BAU] "
    "[PNU] [ELU] [hnsf'U] [Amb'a'1'U] [S] [HP] [mesh_i] [Ch] [kp_C] [car_m] [car_Au] "
    "[ka'U] [MET] [diop] [hp'_X] [hp'_C] [kp_X] [CCID_50] [TCID_50] [EID_50] [IR] [BU]".split()
)
_SYMBOL = re.compile(r"(?:\[[^\[\]{}]*\]|[^\s./()\[\]{}0-9+\-])+")
_EXPONENT = re.compile(r"[+-]?[0-9]+")
_FACTOR = re.compile(r"[0-9]+")
_ANNOTATION = re.compile(r"\{[ -z|~]*\}")


class _Ucum:
    """A recursive-descent reader of UCUM's grammar (https://ucum.org/ucum#section-Syntax-Rules)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def main_term(self) -> bool:
        self._take("/")
        return self._term() and self.at == len(self.text)

    def _term(self) -> bool:
        if not self._component():
            return False
        while self._take(".") or self._take("/"):
            if not self._component():
                return False
        return True

    def _component(self) -> bool:
        # Annotations after a number or a parenthesis, as in the common units' `/100{WBC}` and
        # `g/(8.h){shift}`, go beyond UCUM's grammar but are its common usage.
        if self._take("("):
            if not (self._term() and self._take(")")):
                return False
        elif self._match(_ANNOTATION):
            return True
        elif self.text.startswith(("10*", "10^"), self.at):
            self.at += 3
            self._match(_EXPONENT)
        elif not self._match(_FACTOR):
            symbol = self._match(_SYMBOL)
            if symbol is None or not _known_symbol(symbol):
                return False
            self._match(_EXPONENT)
        self._match(_ANNOTATION)
        return True

    def _take(self, char: str) -> bool:
        if self.text.startswith(char, self.at):
            self.at += len(char)
            return True
        return False

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()


def _known_symbol(symbol: str) -> bool:
    if symbol in _METRIC_ATOMS or symbol in _OTHER_ATOMS:
        return True
    return any(
        symbol.startswith(prefix) and symbol[len(prefix) :] in _METRIC_ATOMS for prefix in _PREFIXES
    )
