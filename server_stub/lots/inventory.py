"""The donor's declared inventory, read from the spreadsheet they actually send.

Donors export from Excel or LibreOffice, in French or English, so the file may be CSV
separated by commas or semicolons (French Excel uses ';' because ',' is the decimal
mark), encoded in UTF-8 with or without a BOM or in Windows-1252 (Excel's "CSV" on a
French Windows), or an XLSX workbook. Column names are matched loosely (case, accents,
spaces and punctuation ignored) against the English and French names in ``ALIASES``.

A row that cannot be a device (no serial and no asset tag, a serial declared twice, too
many cells) is never dropped silently: it comes back in ``Inventory.problems`` with its
line number, for the person importing to fix. Entirely empty rows are skipped: they
declare nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from agent.i18n import T_, Text
from server_stub.errors import Malformed, TooLarge

# A 5,000-device inventory is well under 1 MiB as CSV; 20 MiB leaves room for wide sheets.
MAX_BYTES = 20 << 20
# XLSX is a ZIP: its declared uncompressed size is checked before openpyxl inflates it.
MAX_XLSX_UNCOMPRESSED = 200 << 20
MAX_ROWS = 100_000
MAX_CELL = 200  # a serial, a tag or a model name; longer is not one
HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common

FIELDS = ("serial", "asset_tag", "model", "type", "manufacturer")


def header_key(text: str) -> str:
    """Case, accents, spaces and punctuation removed: "N° de série " -> "nodeserie"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("°", "o").replace("º", "o"))
    return "".join(ch for ch in decomposed.casefold() if ch.isalnum())


def _build_aliases() -> dict[str, str]:
    """Normalised header (see ``header_key``) -> field, from French and English names."""
    names = {
        "serial": ("numero de serie", "n° de série", "n° série", "n de serie", "n serie", "num serie", "num de serie",
                   "numero serie", "serie", "serial", "serial number", "serial no", "s/n", "sn", "service tag"),
        "asset_tag": ("numero d'inventaire", "n° inventaire", "n° d'inventaire", "n inventaire", "n d'inventaire",
                      "num inventaire", "inventaire", "numero d'immobilisation", "n° immobilisation", "immobilisation",
                      "etiquette", "asset tag", "asset", "asset number", "asset id", "inventory number", "inventory tag", "tag"),
        "model": ("modele", "model", "designation", "reference", "product"),
        "type": ("type", "type d'equipement", "type de materiel", "categorie", "device type", "category", "kind"),
        "manufacturer": ("marque", "fabricant", "constructeur", "manufacturer", "make", "brand", "vendor"),
    }
    return {header_key(n): f for f, ns in names.items() for n in ns}


ALIASES = _build_aliases()


@dataclass(frozen=True)
class DeclaredDevice:
    """One device the donor declared: its line in the file and what the row says."""

    line: int
    serial: str | None
    asset_tag: str | None
    model: str | None = None
    type: str | None = None
    manufacturer: str | None = None


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def text(self) -> Text:
        """The problem as a reader sees it, in their language (``agent.i18n.localize``)."""
        return T_("line {line}: {problem}", line=self.line, problem=self.message)


@dataclass
class Inventory:
    devices: list[DeclaredDevice]
    problems: list[RowProblem]
    format: str  # "csv" or "xlsx"
    encoding: str | None = None  # "utf-8", "utf-8-sig", "cp1252" (CSV only)
    delimiter: str | None = None  # CSV only
    header_line: int = 1
    columns: dict[str, str] = field(default_factory=dict)  # field -> the header as written

    @property
    def ok(self) -> bool:
        return not self.problems


class InventoryError(Malformed):
    """The file as a whole cannot be read as an inventory (not a row: the file)."""

    kind = "inventory"


def read_inventory(data: bytes) -> Inventory:
    """The declared devices and the row problems of a CSV or XLSX file's bytes."""
    if len(data) > MAX_BYTES:
        raise TooLarge(T_("the inventory file is larger than {mib} MiB", mib=MAX_BYTES >> 20))
    if data.startswith(b"PK\x03\x04"):
        return _from_rows(_xlsx_rows(data), format="xlsx")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InventoryError(T_("this is an old Excel .xls file: save it as .xlsx or as CSV"))
    text, encoding = decode_text(data)
    delimiter = _pick_delimiter(text)
    rows = _csv_rows(text, delimiter)
    inv = _from_rows(rows, format="csv")
    inv.encoding, inv.delimiter = encoding, delimiter
    return inv


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): a BOM decides; else strict UTF-8; else Windows-1252.

    Windows-1252 bytes above 0x7F almost never form valid UTF-8 sequences ("é" is 0xE9,
    a UTF-8 lead byte wanting two continuation bytes), so strict UTF-8 first is safe."""
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)  # Excel's "Unicode text" export (tab-separated)
    else:
        encodings = ("utf-8", "cp1252")
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text, enc
    raise InventoryError(T_("the file is neither UTF-8 nor Windows-1252 text, nor an XLSX workbook"))


def _pick_delimiter(text: str) -> str:
    """The separator under which the header row names the most known columns."""
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    best, best_score = ",", -1
    for delim in (";", ",", "\t"):
        score = 0
        for row in csv.reader(io.StringIO(head), delimiter=delim):
            score = max(score, len({ALIASES[k] for k in map(header_key, row) if k in ALIASES}))
        if score > best_score:
            best, best_score = delim, score
    return best


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, cells): a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InventoryError(T_("line {line}: not readable as CSV ({error})", line=reader.line_num, error=str(exc))) from None


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise InventoryError(T_("the file starts like an XLSX workbook but is not a readable ZIP")) from None
    if total > MAX_XLSX_UNCOMPRESSED:
        raise TooLarge(T_("the workbook unpacks to more than {mib} MiB", mib=MAX_XLSX_UNCOMPRESSED >> 20))
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - the server extra installs it
        raise InventoryError("XLSX needs openpyxl (pip install 'ardoise[server]'); or send CSV") from None
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken workbook
        raise InventoryError(T_("the XLSX workbook cannot be read ({error})", error=type(exc).__name__)) from None
    try:
        ws = wb.worksheets[0]
        # values_only rows come in sheet order from the first used row; empty rows in
        # between are yielded too, so the counter stays the spreadsheet's row number.
        first = ws.min_row or 1
        for n, values in enumerate(ws.iter_rows(values_only=True), start=first):
            yield n, [_cell_text(v) for v in values]
    finally:
        wb.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a serial typed as a number: 12345.0 is "12345"
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)


def normalise(identifier: str | None) -> str:
    """A serial or asset tag as compared: letters and digits only, case ignored
    ("wd-wcc 4n" is "WDWCC4N"), because donors' sheets and DMI strings differ in exactly
    those (spaces, dashes, case), never in the letters and digits themselves."""
    if not identifier:
        return ""
    return "".join(ch for ch in unicodedata.normalize("NFKC", identifier).upper() if ch.isalnum())


def _clean(value: str) -> str | None:
    text = " ".join(value.split())  # non-breaking and doubled spaces from copy-paste
    return text or None


def _find_header(rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str | None], dict[str, str]]:
    for _ in range(HEADER_SEARCH_ROWS):
        try:
            line, cells = next(rows)
        except StopIteration:
            break
        mapping: list[str | None] = []
        named: dict[str, str] = {}
        for cell in cells:
            f = ALIASES.get(header_key(cell))
            if f is not None and f not in named:
                named[f] = cell.strip()
                mapping.append(f)
            else:
                mapping.append(None)
        if "serial" in named or "asset_tag" in named:
            return line, mapping, named
    raise InventoryError(T_("no column named serial / numéro de série or asset tag / numéro d'inventaire in the "
                            "first {rows} rows", rows=HEADER_SEARCH_ROWS))


def _from_rows(rows: Iterable[tuple[int, list[str]]], *, format: str) -> Inventory:
    it = iter(rows)
    header_line, mapping, named = _find_header(it)
    devices: list[DeclaredDevice] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for line, cells in it:
        if len(devices) + len(problems) >= MAX_ROWS:
            raise TooLarge(T_("more than {rows} rows: split the inventory into several lots", rows=MAX_ROWS))
        if not any(c.strip() for c in cells):
            continue
        overflow = [c for c in cells[len(mapping):] if c.strip()]
        if overflow:
            problems.append(RowProblem(line, T_("{cells} cells where the header has {columns} (a separator inside "
                                                "an unquoted value?)", cells=len(cells), columns=len(mapping))))
            continue
        values: dict[str, str | None] = dict.fromkeys(FIELDS)
        for f, cell in zip(mapping, cells):
            if f is not None:
                values[f] = _clean(cell)
        problem = _row_problem(values)
        if problem is None:
            problem = _duplicate(values, line, seen)
        if problem is not None:
            problems.append(RowProblem(line, problem))
            continue
        devices.append(DeclaredDevice(line=line, **values))  # type: ignore[arg-type]
    return Inventory(devices, problems, format, header_line=header_line, columns=named)


# The inventory's columns as a row problem names them (the page says them in French).
_COLUMN_WORDS = {"serial": T_("serial number"), "asset_tag": T_("asset tag"), "model": T_("model"),
                 "type": T_("type"), "manufacturer": T_("manufacturer")}


def _row_problem(values: dict[str, str | None]) -> str | None:
    if not values["serial"] and not values["asset_tag"]:
        return T_("no serial number and no asset tag: the device cannot be matched")
    for f, v in values.items():
        if v is None:
            continue
        if len(v) > MAX_CELL:
            return T_("{column} is longer than {limit} characters", column=_COLUMN_WORDS[f], limit=MAX_CELL)
        if not v.isprintable():
            return T_("{column} has a control character", column=_COLUMN_WORDS[f])
    return None


def _duplicate(values: dict[str, str | None], line: int, seen: dict[tuple[str, str], int]) -> str | None:
    keys = [(f, normalise(values[f])) for f in ("serial", "asset_tag") if values[f]]
    for f, k in keys:
        if (f, k) in seen:
            return T_("{column} {value} is already declared on line {line}", column=_COLUMN_WORDS[f], value=values[f],
                      line=seen[(f, k)])
    for key in keys:
        seen[key] = line
    return None
