"""Synthetic health facilities across Vietnam's provinces and levels, and the format each one's
information system exports: what `ehrhub demo` fills the hub with.

Names follow the national pattern (Bệnh viện Đa khoa tỉnh …, Trung tâm Y tế khu vực …, Trạm Y
tế xã/phường …); codes are five digits like MA_CSKCB, the province's two-digit code first. They
are made up: no code here names a real facility.
"""

import random
from dataclasses import dataclass, replace

from adapters.base import FACILITY_SYSTEM, Facility, Resource, identifier
from adapters.simulate.sample import PROVINCES, Province

# More provincial-level units (of the 34 after the July 2025 reorganisation), with their
# citizen-ID and insurance province codes, beside the six cities of `sample.PROVINCES`.
MORE_PROVINCES = (
    Province("022", "22", "Quảng Ninh", ("Trần Hưng Đạo", "Lê Thánh Tông", "Nguyễn Văn Cừ")),
    Province("010", "10", "Lào Cai", ("Hoàng Liên", "Trần Hưng Đạo", "Nguyễn Huệ")),
    Province("038", "38", "Thanh Hóa", ("Lê Lai", "Bà Triệu", "Trần Phú")),
    Province("040", "40", "Nghệ An", ("Quang Trung", "Lê Hồng Phong", "Nguyễn Thị Minh Khai")),
    Province("066", "66", "Đắk Lắk", ("Lê Duẩn", "Phan Bội Châu", "Ngô Quyền")),
    Province("089", "89", "An Giang", ("Tôn Đức Thắng", "Lý Thái Tổ", "Trần Hưng Đạo")),
)
ALL_PROVINCES = PROVINCES + MORE_PROVINCES
# Localities (former districts, wards, communes) that name regional centres and stations.
PLACES = {
    "001": ("Đông Anh", "Sóc Sơn", "Thanh Trì", "Gia Lâm", "Ba Vì", "Mê Linh"),
    "031": ("Thủy Nguyên", "An Lão", "Kiến Thụy", "Tiên Lãng", "Vĩnh Bảo"),
    "046": ("Phong Điền", "Quảng Điền", "Hương Trà", "Phú Vang", "A Lưới"),
    "048": ("Hòa Vang", "Liên Chiểu", "Cẩm Lệ", "Sơn Trà", "Ngũ Hành Sơn"),
    "079": ("Củ Chi", "Hóc Môn", "Bình Chánh", "Nhà Bè", "Cần Giờ", "Thủ Đức"),
    "092": ("Ô Môn", "Thốt Nốt", "Phong Điền", "Cờ Đỏ", "Vĩnh Thạnh"),
    "022": ("Hạ Long", "Cẩm Phả", "Uông Bí", "Móng Cái", "Vân Đồn"),
    "010": ("Sa Pa", "Bát Xát", "Bắc Hà", "Văn Bàn", "Bảo Thắng"),
    "038": ("Sầm Sơn", "Bỉm Sơn", "Hoằng Hóa", "Nga Sơn", "Tĩnh Gia"),
    "040": ("Cửa Lò", "Diễn Châu", "Quỳnh Lưu", "Đô Lương", "Nam Đàn"),
    "066": ("Buôn Hồ", "Ea Kar", "Krông Pắc", "Cư M'gar", "Lắk"),
    "089": ("Châu Đốc", "Tân Châu", "Tịnh Biên", "Chợ Mới", "Phú Tân"),
}
PRIVATE_NAMES = ("An Khang", "Phúc Lâm", "Minh Đức", "Bình An", "Tâm Phúc", "Hưng Thịnh")

# Levels and types as the registry of the reporting issue counts them.
CENTRAL, PROVINCIAL, REGIONAL, COMMUNE = "central", "provincial", "regional", "commune"
HOSPITAL, CLINIC, HEALTH_STATION = "hospital", "clinic", "health-station"
PUBLIC, PRIVATE = "public", "private"
XML130, HL7V2, CSV = "xml130", "hl7v2", "csv"
# A facility's HIS: big hospitals run HL7 v2 interface engines or export the claim XML every
# insured facility already sends; private clinics export CSV from their own software.
FORMAT_WEIGHTS = {
    (HOSPITAL, PUBLIC): ((HL7V2, 1), (XML130, 2)),
    (HOSPITAL, PRIVATE): ((HL7V2, 1), (CSV, 1)),
    (CLINIC, PRIVATE): ((CSV, 3), (XML130, 1)),
    (HEALTH_STATION, PUBLIC): ((XML130, 1),),
}
# Visits a facility of each level sends in the demo, before scaling.
VISITS = {CENTRAL: 60, PROVINCIAL: 40, REGIONAL: 20, COMMUNE: 8}
PRIVATE_VISITS = 12
# The kinds of facility each province gets, one per round: `facilities(n)` gives province i
# step (round + i) of the plan, so even one round spans every level, type and ownership.
PLAN = (
    (PROVINCIAL, HOSPITAL, PUBLIC),
    (REGIONAL, HOSPITAL, PUBLIC),
    (COMMUNE, HEALTH_STATION, PUBLIC),
    (PROVINCIAL, HOSPITAL, PRIVATE),
    (REGIONAL, CLINIC, PRIVATE),
    (COMMUNE, HEALTH_STATION, PUBLIC),
    (REGIONAL, HOSPITAL, PUBLIC),
)
CENTRAL_HOSPITALS = {
    "001": "Bệnh viện Đa khoa Trung ương khu vực Hà Nội",
    "046": "Bệnh viện Đa khoa Trung ương khu vực Huế",
    "079": "Bệnh viện Đa khoa Trung ương khu vực TP Hồ Chí Minh",
}
LEVEL_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-level"
TYPE_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-type"
OWNERSHIP_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-ownership"


@dataclass(frozen=True)
class SimFacility:
    """A synthetic facility: code, name, where it is, what it is, and the format it exports."""

    code: str
    name: str
    province: Province
    level: str
    type: str
    ownership: str
    format: str
    visits: int

    @property
    def facility(self) -> Facility:
        """Return the facility as the adapters name it."""
        return Facility(self.code, self.name)

    def organization(self) -> Resource:
        """Return the registry's Organization of the facility: code, name, address, kinds."""
        org = self.facility.organization()
        org["identifier"] = [identifier(FACILITY_SYSTEM, self.code)]
        org["type"] = [
            {"coding": [{"system": LEVEL_SYSTEM, "code": self.level}]},
            {"coding": [{"system": TYPE_SYSTEM, "code": self.type}]},
            {"coding": [{"system": OWNERSHIP_SYSTEM, "code": self.ownership}]},
        ]
        org["address"] = [
            {"state": self.province.name, "country": "VN", "text": f"{self.province.name}"}
        ]
        return org


def facility_name(
    rng: random.Random, province: Province, level: str, kind: str, ownership: str
) -> str:
    """Return a facility name in the national pattern."""
    place = rng.choice(PLACES[province.cccd_code])
    if level == CENTRAL:
        return CENTRAL_HOSPITALS[province.cccd_code]
    if ownership == PRIVATE:
        brand = rng.choice(PRIVATE_NAMES)
        if kind == CLINIC:
            return f"Phòng khám Đa khoa {brand} {place}"
        return f"Bệnh viện Đa khoa {brand} {province.name}"
    if level == PROVINCIAL:
        return f"Bệnh viện Đa khoa {province.name}"
    if level == REGIONAL:
        return f"Trung tâm Y tế khu vực {place}"
    return f"Trạm Y tế xã {place}"


def choose_format(rng: random.Random, kind: str, ownership: str) -> str:
    """Return the export format of a facility of this type and ownership."""
    weights = FORMAT_WEIGHTS.get((kind, ownership), ((XML130, 1),))
    return rng.choices([f for f, _ in weights], [w for _, w in weights])[0]


def facilities(count: int, seed: int = 1, scale: float = 1.0) -> list[SimFacility]:
    """Return `count` synthetic facilities: the central hospitals first, then rounds over the
    provinces, each round giving every province another kind of facility of `PLAN`, so that
    even a few facilities span provinces and levels, and every format (XML130, HL7 v2, CSV)
    appears once there are three or more."""
    rng = random.Random(f"ehrhub-simulate/facilities/{seed}")
    wanted: list[tuple[Province, str, str, str]] = [
        (p, CENTRAL, HOSPITAL, PUBLIC) for p in ALL_PROVINCES if p.cccd_code in CENTRAL_HOSPITALS
    ]
    for round_ in range(len(PLAN)):
        wanted += [(p, *PLAN[(round_ + i) % len(PLAN)]) for i, p in enumerate(ALL_PROVINCES)]
    found: list[SimFacility] = []
    names: set[str] = set()
    numbers: dict[str, int] = {}
    for province, level, kind, ownership in wanted[:count]:
        name = facility_name(rng, province, level, kind, ownership)
        while name in names:  # two stations of one province drew the same place
            name = facility_name(rng, province, level, kind, ownership)
        names.add(name)
        numbers[province.bhyt_code] = numbers.get(province.bhyt_code, 0) + rng.randint(1, 40)
        fmt = choose_format(rng, kind, ownership)
        visits = PRIVATE_VISITS if ownership == PRIVATE else VISITS[level]
        found.append(
            SimFacility(
                code=f"{province.bhyt_code}{numbers[province.bhyt_code]:03d}",
                name=name,
                province=province,
                level=level,
                type=kind,
                ownership=ownership,
                format=fmt,
                visits=max(1, round(visits * scale)),
            )
        )
    return _every_format(found)


def _every_format(found: list[SimFacility]) -> list[SimFacility]:
    """Return the facilities with the formats no facility drew given to the largest ones that
    can produce them, so a demo of three or more facilities shows every adapter."""
    for fmt in (HL7V2, CSV, XML130):
        if len(found) < 3 or any(f.format == fmt for f in found):
            continue
        counts = {f2: sum(f.format == f2 for f in found) for f2 in (HL7V2, CSV, XML130)}
        donor = max(counts, key=lambda f2: counts[f2])
        index = max(
            (i for i, f in enumerate(found) if f.format == donor), key=lambda i: found[i].visits
        )
        found[index] = replace(found[index], format=fmt)
    return found
