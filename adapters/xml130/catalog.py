"""Realistic content for generated XML130 files: diagnoses, drugs, services and their results."""

from dataclasses import dataclass

# ICD-10 codes with their Vietnamese names.
DIAGNOSES = (
    ("E11.9", "Bệnh đái tháo đường type 2 không có biến chứng"),
    ("I10", "Tăng huyết áp vô căn (nguyên phát)"),
    ("E78.5", "Tăng lipid máu, không đặc hiệu"),
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"),
    ("J18.9", "Viêm phổi, không đặc hiệu"),
    ("J20.9", "Viêm phế quản cấp, không đặc hiệu"),
    ("K29.7", "Viêm dạ dày, không đặc hiệu"),
    ("K35.8", "Viêm ruột thừa cấp khác và không đặc hiệu"),
    ("N39.0", "Nhiễm khuẩn đường tiết niệu, vị trí không xác định"),
    ("I25.1", "Bệnh tim xơ vữa động mạch"),
    ("A09", "Tiêu chảy và viêm dạ dày - ruột do nhiễm trùng"),
    ("M54.5", "Đau vùng thắt lưng"),
    ("A91", "Sốt xuất huyết Dengue"),
    ("S52.5", "Gãy đầu dưới xương quay"),
)


@dataclass(frozen=True)
class Drug:
    """A drug as XML2 writes it: active-ingredient code, name, strength, unit, route, price."""

    code: str
    name: str
    strength: str
    unit: str
    route: str  # DUONG_DUNG code, e.g. 1.01 oral
    dose: str
    price: int


DRUGS = (
    Drug("40.30", "Paracetamol", "500mg", "Viên", "1.01", "1 viên/lần x 3 lần/ngày", 450),
    Drug("40.48", "Amoxicilin", "500mg", "Viên", "1.01", "1 viên/lần x 2 lần/ngày", 1200),
    Drug("40.677", "Metformin", "850mg", "Viên", "1.01", "1 viên/lần x 2 lần/ngày", 900),
    Drug("40.493", "Amlodipin", "5mg", "Viên", "1.01", "1 viên/lần x 1 lần/ngày", 600),
    Drug("40.678", "Omeprazol", "20mg", "Viên", "1.01", "1 viên/lần x 1 lần/ngày", 1500),
    Drug("40.1005", "Natri clorid 0,9%", "500ml", "Chai", "2.15", "500ml truyền TM XL g/p", 9800),
    Drug("40.155", "Ceftriaxon", "1g", "Lọ", "2.10", "1 lọ/lần x 2 lần/ngày tiêm TM", 24000),
    Drug("40.525", "Atorvastatin", "20mg", "Viên", "1.01", "1 viên/lần x 1 lần/ngày", 2100),
)


@dataclass(frozen=True)
class Result:
    """One result of a service: indicator code, name, unit and plausible range (or a text)."""

    code: str
    name: str
    unit: str
    low: float
    high: float
    text: str = ""  # an imaging finding instead of a value


@dataclass(frozen=True)
class Service:
    """A service as XML3 writes it (MA_DICH_VU, name, group, price) and the results it gives."""

    code: str
    name: str
    group: str  # MA_NHOM: 1 lab, 2 imaging, 8 procedure, 13 examination
    price: int
    results: tuple[Result, ...] = ()


SERVICES = (
    Service("02.1896", "Khám Nội", "13", 38700),
    Service(
        "22.0120.1370",
        "Tổng phân tích tế bào máu ngoại vi (bằng máy đếm laser)",
        "1",
        46200,
        (
            Result("WBC", "Số lượng bạch cầu", "G/L", 4.0, 12.5),
            Result("RBC", "Số lượng hồng cầu", "T/L", 3.8, 5.6),
            Result("HGB", "Huyết sắc tố", "g/L", 105, 165),
            Result("PLT", "Số lượng tiểu cầu", "G/L", 140, 420),
        ),
    ),
    Service(
        "23.0075.1494",
        "Định lượng Glucose [Máu]",
        "1",
        21500,
        (Result("GLU", "Glucose", "mmol/L", 3.9, 14.0),),
    ),
    Service(
        "23.0051.1494",
        "Định lượng Creatinin (máu)",
        "1",
        21500,
        (Result("CRE", "Creatinin", "µmol/L", 55, 140),),
    ),
    Service(
        "23.0020.1493",
        "Đo hoạt độ ALT (GPT)",
        "1",
        21500,
        (Result("ALT", "ALT (GPT)", "U/L", 8, 90),),
    ),
    Service(
        "18.0119.0028",
        "Chụp Xquang ngực thẳng",
        "2",
        65400,
        (
            Result(
                "",
                "X-quang ngực thẳng",
                "",
                0,
                0,
                "Bóng tim không to. Hai phế trường sáng, không thấy tổn thương nhu mô.",
            ),
        ),
    ),
    Service(
        "18.0001.0001",
        "Siêu âm ổ bụng",
        "2",
        43900,
        (
            Result(
                "",
                "Siêu âm ổ bụng tổng quát",
                "",
                0,
                0,
                "Gan không to, nhu mô đều. Túi mật không sỏi. Hai thận không ứ nước.",
            ),
        ),
    ),
    Service("02.0085.0126", "Thay băng vết thương chiều dài dưới 15cm", "8", 57600),
)
# Supplies (XML3 rows with MA_VAT_TU).
SUPPLIES = (
    ("N03.05.030", "Bơm tiêm nhựa liền kim 5ml", "Cái", 900),
    ("N02.01.070", "Bông y tế thấm nước", "Gói", 5600),
)
DEPARTMENTS = ("K01", "K02", "K03", "K19", "K26", "K33")
NOTES = (
    "Bệnh nhân tỉnh, tiếp xúc tốt. Mạch {pulse} lần/phút, huyết áp {sys}/{dia} mmHg.",
    "Sốt nhẹ, ho ít đờm. Phổi rì rào phế nang rõ, không rale.",
    "Ăn uống được, đại tiểu tiện bình thường. Tiếp tục điều trị theo y lệnh.",
    "Đỡ đau, vết mổ khô, không chảy dịch. Mạch {pulse} lần/phút.",
)
DOCTORS = ("0012345/HCM-CCHN", "0023456/HNO-CCHN", "003987/BYT-CCHN", "0004567/DNA-CCHN")
ETHNICITIES = ("01", "01", "01", "04", "02")  # 01 Kinh, 02 Tày, 04 Hoa
JOBS = ("00000", "00001", "00003", "00012", "00021")
