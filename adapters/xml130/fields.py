"""The field tables of XML130 (QĐ 130/QĐ-BYT as amended by 4750/QĐ-BYT), and the older
QĐ 4210 names that some hospital systems still write."""

import functools
import json
from dataclasses import dataclass
from pathlib import Path

_FILE = Path(__file__).with_name("fields.json")

# QĐ 4210 names of fields that QĐ 130 renamed, per table: old name -> new name.
NAMES_4210: dict[str, dict[str, str]] = {
    "XML1": {
        "MA_THE": "MA_THE_BHYT",
        "MA_BENH": "MA_BENH_CHINH",
        "MA_BENHKHAC": "MA_BENH_KT",
        "TEN_BENH": "CHAN_DOAN_RV",
        "MA_NOI_CHUYEN": "MA_NOI_DI",
        "MA_LYDO_VVIEN": "MA_DOITUONG_KCB",
        "TINH_TRANG_RV": "MA_LOAI_RV",
        "MIEN_CUNG_CT": "NGAY_MIEN_CCT",
        "T_TONGCHI": "T_TONGCHI_BV",
    },
    "XML2": {"TYLE_TT": "TYLE_TT_BH", "THANH_TIEN": "THANH_TIEN_BV"},
    "XML3": {"TYLE_TT": "TYLE_TT_BH", "THANH_TIEN": "THANH_TIEN_BV", "DON_GIA": "DON_GIA_BV"},
    "XML5": {"DIEN_BIEN": "DIEN_BIEN_LS", "NGAY_YL": "THOI_DIEM_DBLS"},
}
# The fields a QĐ 4210 record has (under their QĐ 130 names): a 4210 record is checked
# only for the required fields that 4210 itself had.
FIELDS_4210: dict[str, frozenset[str]] = {
    "XML1": frozenset(
        "MA_LK STT MA_BN HO_TEN NGAY_SINH GIOI_TINH DIA_CHI MA_THE_BHYT MA_DKBD GT_THE_TU "
        "GT_THE_DEN NGAY_MIEN_CCT CHAN_DOAN_RV MA_BENH_CHINH MA_BENH_KT MA_DOITUONG_KCB "
        "MA_NOI_DI MA_TAI_NAN NGAY_VAO NGAY_RA SO_NGAY_DTRI KET_QUA_DTRI MA_LOAI_RV NGAY_TTOAN "
        "T_THUOC T_VTYT T_TONGCHI_BV T_BNTT T_BNCCT T_BHTT T_NGUONKHAC NAM_QT THANG_QT "
        "MA_LOAI_KCB MA_KHOA MA_CSKCB MA_KHUVUC MA_PTTT_QT CAN_NANG".split()
    ),
    "XML2": frozenset(
        "MA_LK STT MA_THUOC MA_NHOM TEN_THUOC DON_VI_TINH HAM_LUONG DUONG_DUNG LIEU_DUNG "
        "SO_DANG_KY TT_THAU PHAM_VI TYLE_TT_BH SO_LUONG DON_GIA THANH_TIEN_BV MUC_HUONG "
        "T_NGUONKHAC T_BNTT T_BHTT T_BNCCT MA_KHOA MA_BAC_SI NGAY_YL MA_PTTT".split()
    ),
    "XML3": frozenset(
        "MA_LK STT MA_DICH_VU MA_VAT_TU MA_NHOM GOI_VTYT TEN_VAT_TU TEN_DICH_VU DON_VI_TINH "
        "PHAM_VI SO_LUONG DON_GIA_BV TT_THAU TYLE_TT_BH THANH_TIEN_BV T_TRANTT MUC_HUONG "
        "T_NGUONKHAC T_BNTT T_BHTT T_BNCCT MA_KHOA MA_GIUONG MA_BAC_SI MA_BENH NGAY_YL NGAY_KQ "
        "MA_PTTT".split()
    ),
    "XML4": frozenset(
        "MA_LK STT MA_DICH_VU MA_CHI_SO TEN_CHI_SO GIA_TRI DON_VI_DO MO_TA KET_LUAN NGAY_KQ "
        "MA_BS_DOC_KQ".split()
    ),
    "XML5": frozenset("MA_LK STT DIEN_BIEN_LS HOI_CHAN PHAU_THUAT THOI_DIEM_DBLS".split()),
}


@dataclass(frozen=True)
class Field:
    """One field of a table: its name, type (Chuỗi or Số), maximum length and required flag."""

    name: str
    type: str
    max_len: str
    required: bool


@functools.cache
def tables() -> dict[str, tuple[Field, ...]]:
    """Return every table's fields, in the order of the decision."""
    raw = json.loads(_FILE.read_text(encoding="utf-8"))
    return {
        table: tuple(
            Field(f["name"], f["type"].strip(), str(f["max_len"]).strip(), bool(f["required"]))
            for f in rows
        )
        for table, rows in raw.items()
    }


@functools.cache
def required(table: str) -> tuple[str, ...]:
    """Return the names of a table's required fields (none for a table we do not know)."""
    return tuple(f.name for f in tables().get(table, ()) if f.required)


def normalise(table: str, record: dict[str, str]) -> tuple[dict[str, str], bool]:
    """Return a record under QĐ 130 names, and whether it was written with QĐ 4210 names."""
    renames = NAMES_4210.get(table, {})
    known = {f.name for f in tables().get(table, ())}
    old = [name for name in record if name in renames and name not in known]
    if not old:
        return record, False
    return {renames.get(name, name): value for name, value in record.items()}, True


def missing(table: str, record: dict[str, str], is_4210: bool) -> list[str]:
    """Return the required fields a record leaves empty."""
    names = required(table)
    if is_4210:
        names = tuple(n for n in names if n in FIELDS_4210.get(table, frozenset()))
    return [name for name in names if not record.get(name)]
