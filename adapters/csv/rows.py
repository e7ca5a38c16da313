"""Reading the export's CSV files: encoding and delimiter, rows with their line numbers, and
an index on disk that finds every row of one patient without holding the files in memory.

The files need not be sorted: each file other than the patients' is read once into a
temporary SQLite file keyed by patient, then the patients' file is read row by row and each
patient's rows are fetched from it. Memory stays bounded by one patient's rows; disk use is
about the size of the export.
"""

import csv
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.csv.mapping import CsvMapping, Table

Row = dict[str, str]


def sniff(header: str) -> str:
    """Return the delimiter of a header line: `;` or `,` (or tab), whichever splits it most."""
    return max(";,\t", key=header.count)


def read(path: Path, mapping: CsvMapping) -> Iterator[tuple[int, Row]]:
    """Yield each row of a CSV file with the line it starts on, columns by header name."""
    with path.open(encoding=mapping.encoding, newline="") as f:
        header = f.readline()
        delimiter = mapping.delimiter or sniff(header)
        names = [n.strip() for n in next(csv.reader([header], delimiter=delimiter))]
        reader = csv.reader(f, delimiter=delimiter)
        line = 2
        for cells in reader:
            if any(c.strip() for c in cells):
                yield line, dict(zip(names, cells, strict=False))
            line = reader.line_num + 2


class Index:
    """The rows of every non-patient table, by patient, in a temporary SQLite file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute("CREATE TABLE rows (patient TEXT, tbl INTEGER, line INTEGER, data TEXT)")
        db.execute("CREATE INDEX rows_patient ON rows (patient, tbl, line)")
        db.execute("CREATE TABLE owners (tbl TEXT, key TEXT, patient TEXT)")
        db.execute("CREATE INDEX owners_key ON owners (tbl, key)")
        db.execute("CREATE TABLE seen (patient TEXT PRIMARY KEY)")

    def add(self, table: Table, position: int, patient: str, line: int, row: Row) -> None:
        """Keep a row under its patient, and its key for the rows that link to it."""
        self.db.execute(
            "INSERT INTO rows VALUES (?, ?, ?, ?)",
            (patient, position, line, json.dumps(row, ensure_ascii=False)),
        )
        self.db.execute(
            "INSERT INTO owners VALUES (?, ?, ?)", (table.name, table.key_of(row), patient)
        )

    def owner(self, table: str, key: str) -> str | None:
        """Return the patient a row of `table` with this key belongs to, if there is one."""
        found = self.db.execute(
            "SELECT patient FROM owners WHERE tbl = ? AND key = ? LIMIT 1", (table, key)
        ).fetchone()
        return str(found[0]) if found else None

    def rows_of(self, patient: str) -> Iterator[tuple[int, int, Row]]:
        """Yield (table position, line, row) of one patient's rows, table by table."""
        self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (patient,))
        for position, line, data in self.db.execute(
            "SELECT tbl, line, data FROM rows WHERE patient = ? ORDER BY tbl, line", (patient,)
        ):
            yield position, line, json.loads(data)

    def orphans(self) -> Iterator[tuple[int, int, str]]:
        """Yield (table position, line, patient key) of rows whose patient never came."""
        yield from self.db.execute(
            "SELECT tbl, line, patient FROM rows WHERE patient NOT IN (SELECT patient FROM seen)"
            " ORDER BY tbl, line"
        )


@contextmanager
def index() -> Iterator[Index]:
    """Open an empty Index in a temporary file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ehrhub-csv-") as folder:
        db = sqlite3.connect(Path(folder) / "index.sqlite")
        try:
            yield Index(db)
        finally:
            db.close()
