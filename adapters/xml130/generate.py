"""Generate realistic XML130 submission files (GIAMDINHHS), deterministic by seed.

`python -m adapters.xml130.generate --episodes N --out FILE --seed S`
"""

import argparse
import base64
import io
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from adapters.simulate.sample import (
    FAMILY_NAMES,
    GIVEN_NAMES,
    MIDDLE_NAMES,
    PROVINCES,
    Province,
    bhyt_card,
    citizen_id,
)
from adapters.xml130 import catalog, fields
from adapters.xml130.envelope import Record

# Inner tables: root, list and record elements (None: the root is the record).
LAYOUT: dict[str, tuple[str, str | None, str | None]] = {
    "XML1": ("TONG_HOP", None, None),
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC"),
    "XML3": ("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT"),
    "XML4": ("CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS"),
    "XML5": (
        "CHITIEU_CHITIET_DIENBIENLAMSANG",
        "DSACH_CHI_TIET_DIEN_BIEN_BENH",
        "CHI_TIET_DIEN_BIEN_BENH",
    ),
    "XML7": ("CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", None, None),
}
Episode = dict[str, list[Record]]
FIRST_DAY = datetime(2025, 1, 1)


def stamp(moment: datetime) -> str:
    """Return a moment as XML130 writes it: yyyyMMddHHmm."""
    return moment.strftime("%Y%m%d%H%M")


def filled(table: str, values: Record) -> Record:
    """Return a record with every field of its table, in order: given values, else a default
    for required fields (0 for numbers) and empty for the others."""
    record = {}
    for f in fields.tables()[table]:
        default = ("0" if f.type.startswith("S") else "-") if f.required else ""
        record[f.name] = values.get(f.name, default)
    return record


def shares(total: int) -> Record:
    """Return how a row's cost splits: 80% paid by insurance, the rest by the patient."""
    insured = total * 4 // 5
    return {"T_BHTT": str(insured), "T_BNCCT": str(total - insured)}


def card(rng: random.Random, province: Province) -> str:
    """Return an insurance card: the old 15-character number, or the new 10-digit BHXH code."""
    if rng.random() < 0.7:
        return bhyt_card(rng, province)
    return f"{province.bhyt_code}{rng.randrange(10**8):08d}"


def patient_fields(rng: random.Random, province: Province) -> Record:
    """Return the patient part of XML1: name, citizen ID, birth, address, cards."""
    gender = rng.choice(("male", "female"))
    born = datetime(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28))
    name = [rng.choice(FAMILY_NAMES), rng.choice(MIDDLE_NAMES[gender])]
    name.append(rng.choice(GIVEN_NAMES[gender]))
    cards = [card(rng, province) for _ in range(1 if rng.random() < 0.85 else 2)]
    valid_from = [f"{2025 - n}0101" for n in range(len(cards))]
    return {
        "MA_BN": f"BN{rng.randrange(10**8):08d}",
        "HO_TEN": " ".join(name),
        "SO_CCCD": citizen_id(rng, province, gender, born.year),
        "NGAY_SINH": born.strftime("%Y%m%d") + "0000",
        "GIOI_TINH": "1" if gender == "male" else "2",
        "MA_QUOCTICH": "000",
        "MA_DANTOC": rng.choice(catalog.ETHNICITIES),
        "MA_NGHE_NGHIEP": rng.choice(catalog.JOBS),
        "DIA_CHI": f"Số {rng.randint(1, 300)} {rng.choice(province.streets)}, {province.name}",
        "MATINH_CU_TRU": province.bhyt_code,
        "MAHUYEN_CU_TRU": f"{rng.randint(1, 999):03d}",
        "MAXA_CU_TRU": f"{rng.randint(1, 29999):05d}",
        "DIEN_THOAI": f"09{rng.randrange(10**8):08d}",
        "MA_THE_BHYT": ";".join(cards),
        "MA_DKBD": ";".join(f"{province.bhyt_code}{rng.randint(1, 99):03d}" for _ in cards),
        "GT_THE_TU": ";".join(valid_from),
        "GT_THE_DEN": ";".join("20251231" for _ in cards),
        "CAN_NANG": f"{rng.uniform(40, 80):.1f}".replace(".", ","),
    }


@dataclass(frozen=True)
class Stay:
    """What an episode's tables describe beside the patient: where, when, why and who."""

    ma_lk: str
    facility_code: str
    index: int
    start: datetime
    end: datetime
    inpatient: bool
    diagnoses: list[tuple[str, str]]
    department: str
    doctor: str


def episode(seed: int, index: int, facility_code: str) -> Episode:
    """Return the tables of one generated episode of care."""
    rng = random.Random(f"ehrhub-xml130/{seed}/{index}")
    province = next((p for p in PROVINCES if p.bhyt_code == facility_code[:2]), PROVINCES[0])
    inpatient = rng.random() < 0.3
    start = FIRST_DAY + timedelta(days=rng.randrange(300), hours=rng.randint(7, 16))
    stay = Stay(
        ma_lk=f"{facility_code}{seed:04d}{index:08d}",
        facility_code=facility_code,
        index=index,
        start=start,
        end=start + (timedelta(days=rng.randint(2, 9)) if inpatient else timedelta(hours=2)),
        inpatient=inpatient,
        diagnoses=rng.sample(catalog.DIAGNOSES, rng.randint(1, 3)),
        department=rng.choice(catalog.DEPARTMENTS),
        doctor=rng.choice(catalog.DOCTORS),
    )
    return stay_tables(rng, stay, lambda: patient_fields(rng, province))


def stay_tables(rng: random.Random, stay: Stay, patient: Callable[[], Record]) -> Episode:
    """Return the tables of an episode: XML1 with the patient's fields (`patient` is called
    after the drugs and services are drawn), drugs, services and results, notes, discharge."""
    ma_lk, start, end, doctor = stay.ma_lk, stay.start, stay.end, stay.doctor
    drugs = drug_rows(rng, ma_lk, start, stay.department, doctor, stay.diagnoses[0][0])
    services, results = service_rows(
        rng, ma_lk, start, stay.department, doctor, stay.diagnoses[0][0]
    )
    cost_drugs = sum(int(r["THANH_TIEN_BV"]) for r in drugs)
    cost = cost_drugs + sum(int(r["THANH_TIEN_BV"]) for r in services)
    inpatient = stay.inpatient
    xml1 = patient() | {
        "MA_LK": ma_lk,
        "STT": "1",
        "LY_DO_VV": "Đau, sốt" if not inpatient else "Vào viện điều trị nội trú",
        "CHAN_DOAN_VAO": stay.diagnoses[0][1],
        "CHAN_DOAN_RV": "; ".join(text for _, text in stay.diagnoses),
        "MA_BENH_CHINH": stay.diagnoses[0][0],
        "MA_BENH_KT": ";".join(code for code, _ in stay.diagnoses[1:]),
        "MA_DOITUONG_KCB": "1.1",
        "NGAY_VAO": stamp(start),
        "NGAY_VAO_NOI_TRU": stamp(start) if inpatient else "",
        "NGAY_RA": stamp(end),
        "SO_NGAY_DTRI": str((end - start).days + 1 if inpatient else 0),
        "KET_QUA_DTRI": rng.choice("1122223"),
        "MA_LOAI_RV": "1",
        "NGAY_TTOAN": stamp(end),
        "T_THUOC": str(cost_drugs),
        "T_TONGCHI_BV": str(cost),
        "T_TONGCHI_BH": str(cost),
        "T_BHTT": str(cost * 4 // 5),
        "T_BNCCT": str(cost - cost * 4 // 5),
        "NAM_QT": f"{end.year}",
        "THANG_QT": f"{end.month:02d}",
        "MA_LOAI_KCB": "03" if inpatient else "01",
        "MA_KHOA": stay.department,
        "MA_CSKCB": stay.facility_code,
        "MA_HSBA": f"HSBA{stay.index:08d}",
    }
    tables: Episode = {"XML1": [filled("XML1", xml1)]}
    tables["XML2"] = [filled("XML2", r) for r in drugs]
    tables["XML3"] = [filled("XML3", r) for r in services]
    tables["XML4"] = [filled("XML4", r) for r in results]
    tables["XML5"] = [filled("XML5", r) for r in note_rows(rng, ma_lk, start, end, doctor)]
    if inpatient:
        tables["XML7"] = [filled("XML7", discharge(xml1, doctor, end))]
    return tables


def drug_rows(
    rng: random.Random, ma_lk: str, start: datetime, department: str, doctor: str, icd: str
) -> list[Record]:
    """Return the XML2 rows: a few drugs ordered at the visit."""
    rows = []
    for n, drug in enumerate(rng.sample(catalog.DRUGS, rng.randint(1, 4)), start=1):
        amount = rng.choice((6, 10, 14, 20))
        ordered = start + timedelta(minutes=30 + n)
        rows.append(
            {
                "MA_LK": ma_lk,
                "STT": str(n),
                "MA_THUOC": drug.code,
                "MA_NHOM": "4",
                "TEN_THUOC": drug.name,
                "DON_VI_TINH": drug.unit,
                "HAM_LUONG": drug.strength,
                "DUONG_DUNG": drug.route,
                "LIEU_DUNG": drug.dose,
                "CACH_DUNG": "Sau ăn",
                "PHAM_VI": "1",
                "TYLE_TT_BH": "100",
                "SO_LUONG": str(amount),
                "DON_GIA": str(drug.price),
                "THANH_TIEN_BV": str(drug.price * amount),
                "THANH_TIEN_BH": str(drug.price * amount),
                "MUC_HUONG": "80",
                "MA_KHOA": department,
                "MA_BAC_SI": doctor,
                "MA_BENH": icd,
                "NGAY_YL": stamp(ordered),
                "NGAY_TH_YL": stamp(ordered + timedelta(minutes=20)),
                "MA_PTTT": "1",
                "NGUON_CTRA": "1",
            }
            | shares(drug.price * amount)
        )
    return rows


def service_rows(
    rng: random.Random, ma_lk: str, start: datetime, department: str, doctor: str, icd: str
) -> tuple[list[Record], list[Record]]:
    """Return the XML3 rows (an examination, tests, maybe a supply) and the XML4 results."""
    chosen = [catalog.SERVICES[0], *rng.sample(catalog.SERVICES[1:], rng.randint(1, 4))]
    rows: list[Record] = []
    results: list[Record] = []
    for n, service in enumerate(chosen, start=1):
        ordered = start + timedelta(minutes=5 * n)
        common = {
            "MA_LK": ma_lk,
            "STT": str(n),
            "DON_VI_TINH": "Lần",
            "PHAM_VI": "1",
            "SO_LUONG": "1",
            "TYLE_TT_DV": "100",
            "TYLE_TT_BH": "100",
            "MUC_HUONG": "80",
            "MA_KHOA": department,
            "MA_BAC_SI": doctor,
            "MA_BENH": icd,
            "NGAY_YL": stamp(ordered),
            "NGAY_TH_YL": stamp(ordered + timedelta(minutes=10)),
            "MA_PTTT": "1",
        }
        rows.append(
            common
            | {
                "MA_DICH_VU": service.code,
                "TEN_DICH_VU": service.name,
                "MA_NHOM": service.group,
                "DON_GIA_BV": str(service.price),
                "DON_GIA_BH": str(service.price),
                "THANH_TIEN_BV": str(service.price),
                "THANH_TIEN_BH": str(service.price),
                "NGAY_KQ": stamp(ordered + timedelta(hours=1)) if service.results else "",
            }
            | shares(service.price)
        )
        for result in service.results:
            value = "" if result.text else f"{rng.uniform(result.low, result.high):.1f}"
            results.append(
                {
                    "MA_LK": ma_lk,
                    "STT": str(len(results) + 1),
                    "MA_DICH_VU": service.code,
                    "MA_CHI_SO": result.code,
                    "TEN_CHI_SO": result.name,
                    "GIA_TRI": value,
                    "DON_VI_DO": result.unit,
                    "MO_TA": result.text,
                    "KET_LUAN": "Bình thường" if result.text else "",
                    "NGAY_KQ": stamp(ordered + timedelta(hours=1)),
                    "MA_BS_DOC_KQ": doctor,
                }
            )
    if rng.random() < 0.4:
        code, name, unit, price = rng.choice(catalog.SUPPLIES)
        amount = rng.randint(1, 5)
        rows.append(
            common
            | {
                "STT": str(len(rows) + 1),
                "MA_VAT_TU": code,
                "TEN_VAT_TU": name,
                "MA_NHOM": "10",
                "DON_VI_TINH": unit,
                "SO_LUONG": str(amount),
                "DON_GIA_BV": str(price),
                "DON_GIA_BH": str(price),
                "THANH_TIEN_BV": str(price * amount),
                "THANH_TIEN_BH": str(price * amount),
            }
            | shares(price * amount)
        )
    return rows, results


def note_rows(
    rng: random.Random, ma_lk: str, start: datetime, end: datetime, doctor: str
) -> list[Record]:
    """Return the XML5 rows: progress notes during the stay."""
    count = rng.randint(1, 3)
    step = (end - start) / (count + 1)
    return [
        {
            "MA_LK": ma_lk,
            "STT": str(n),
            "DIEN_BIEN_LS": rng.choice(catalog.NOTES).format(
                pulse=rng.randint(60, 100), sys=rng.randint(100, 150), dia=rng.randint(60, 95)
            ),
            "THOI_DIEM_DBLS": stamp(start + step * n),
            "NGUOI_THUC_HIEN": doctor,
        }
        for n in range(1, count + 1)
    ]


def discharge(xml1: Record, doctor: str, end: datetime) -> Record:
    """Return the XML7 discharge paper of an inpatient stay."""
    return {
        "MA_LK": xml1["MA_LK"],
        "SO_LUU_TRU": xml1["MA_HSBA"],
        "MA_YTE": xml1["MA_BN"],
        "MA_KHOA_RV": xml1["MA_KHOA"],
        "NGAY_VAO": xml1["NGAY_VAO"],
        "NGAY_RA": xml1["NGAY_RA"],
        "CHAN_DOAN_RV": xml1["CHAN_DOAN_RV"],
        "PP_DIEUTRI": "Điều trị nội khoa",
        "MA_TTDV": "0000000001",
        "MA_BS": doctor,
        "TEN_BS": "Bác sĩ điều trị",
        "NGAY_CT": end.strftime("%Y%m%d"),
    }


def table_xml(table: str, records: list[Record]) -> bytes:
    """Return an inner table as XML bytes (UTF-8, with its declaration)."""
    root, listing, item = LAYOUT.get(table, (table, None, None))

    def record(tag: str, rec: Record) -> str:
        body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in rec.items())
        return f"<{tag}>{body}</{tag}>"

    if listing is None or item is None:
        body = record(root, records[0])
    else:
        inner = "".join(record(item, rec) for rec in records)
        body = f"<{root}><{listing}>{inner}</{listing}></{root}>"
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}'.encode()


def hoso_xml(files: Iterable[tuple[str, bytes]]) -> bytes:
    """Return one HOSO element: each (LOAIHOSO, inner XML) as a base64 FILEHOSO."""
    parts = [
        f"<FILEHOSO><LOAIHOSO>{kind}</LOAIHOSO><NOIDUNGFILE>"
        f"{base64.b64encode(content).decode('ascii')}</NOIDUNGFILE></FILEHOSO>"
        for kind, content in files
    ]
    return ("<HOSO>" + "".join(parts) + "</HOSO>\n").encode()


def episode_files(tables: Episode) -> list[tuple[str, bytes]]:
    """Return the FILEHOSO contents of an episode's tables."""
    return [(table, table_xml(table, rows)) for table, rows in tables.items() if rows]


def write(out: IO[bytes], facility_code: str, count: int, hosos: Iterable[bytes]) -> None:
    """Write a GIAMDINHHS envelope around HOSO elements, one at a time."""
    out.write(
        (
            '<?xml version="1.0" encoding="utf-8"?>\n<GIAMDINHHS><THONGTINDONVI>'
            f"<MACSKCB>{facility_code}</MACSKCB></THONGTINDONVI><THONGTINHOSO>"
            f"<NGAYLAP>20251231</NGAYLAP><SOLUONGHOSO>{count}</SOLUONGHOSO><DANHSACHHOSO>\n"
        ).encode()
    )
    for hoso in hosos:
        out.write(hoso)
    out.write(b"</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>\n")


def facility_code(seed: int) -> str:
    """Return the facility code files of a seed come from (province code and number)."""
    rng = random.Random(f"ehrhub-xml130/{seed}/facility")
    return f"{rng.choice(PROVINCES).bhyt_code}{rng.randint(1, 120):03d}"


def episodes(count: int, seed: int) -> Iterator[Episode]:
    """Yield the episodes of a seed, one by one."""
    code = facility_code(seed)
    for index in range(count):
        yield episode(seed, index, code)


def generate(out: IO[bytes], count: int, seed: int) -> None:
    """Write a submission file of `count` episodes."""
    hosos = (hoso_xml(episode_files(tables)) for tables in episodes(count, seed))
    write(out, facility_code(seed), count, hosos)


def submission(facility_code: str, tables: Iterable[Episode]) -> bytes:
    """Return a whole submission file of the given episodes' tables."""
    out = io.BytesIO()
    hosos = [hoso_xml(episode_files(t)) for t in tables]
    write(out, facility_code, len(hosos), hosos)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    """Write a realistic XML130 submission file."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--episodes", type=int, default=10, help="number of HOSO (episodes)")
    parser.add_argument("--seed", type=int, default=1, help="seed: the same seed, the same file")
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    args = parser.parse_args(argv)
    with args.out.open("wb") as out:
        generate(out, args.episodes, args.seed)
    print(f"wrote {args.episodes} episodes to {args.out}")


if __name__ == "__main__":
    main()
