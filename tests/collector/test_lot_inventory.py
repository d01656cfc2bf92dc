"""The declared inventory, from the files donors actually send (CSV of every common
flavour, XLSX), with bad rows reported by line and never dropped."""

from __future__ import annotations

import io
import zipfile

import pytest

from server_stub.errors import TooLarge
from server_stub.lots.inventory import DeclaredDevice, InventoryError, header_key, normalise, read_inventory

ROWS_FR = [
    ("PF1ABCDE", "INV-2024-0001", "ThinkPad T480", "Portable", "Lenovo"),
    ("5CG8123XYZ", "INV-2024-0002", "EliteBook 840 G5 – élève", "Portable", "HP"),
    ("", "INV-2024-0003", "Latitude 5490", "Portable", "Dell"),
]


def _write(header, rows, sep, encoding, bom, *, quoting, eol) -> bytes:
    import csv

    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=sep, lineterminator=eol, quoting=quoting)
    w.writerow(header)
    w.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode(encoding)


def _libreoffice_csv(header, rows, sep, encoding, bom=False) -> bytes:
    """LibreOffice with "Quote all text cells": every cell quoted, LF line ends."""
    import csv

    return _write(header, rows, sep, encoding, bom, quoting=csv.QUOTE_ALL, eol="\n")


def _excel_csv(header, rows, sep, encoding, bom=False) -> bytes:
    """Excel: quotes only around cells holding the separator or a quote, CRLF line ends."""
    import csv

    return _write(header, rows, sep, encoding, bom, quoting=csv.QUOTE_MINIMAL, eol="\r\n")


FR_HEADER = ["N° de série", "Numéro d'inventaire", "Modèle", "Type", "Marque"]
EN_HEADER = ["Serial Number", "Asset Tag", "Model", "Type", "Manufacturer"]


@pytest.mark.parametrize("maker", [_libreoffice_csv, _excel_csv])
@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("cp1252", False)])
@pytest.mark.parametrize("header", [FR_HEADER, EN_HEADER])
def test_csv_of_every_flavour_reads_the_same_devices(maker, sep, encoding, bom, header):
    rows = [r[:3] + ("Ordinateur portable, 14\"" if sep == "," else "Portable",) + r[4:] for r in ROWS_FR]
    inv = read_inventory(maker(header, rows, sep, encoding, bom))
    assert inv.problems == []
    assert inv.delimiter == sep
    assert inv.encoding == ("utf-8-sig" if bom else encoding)
    assert [d.serial for d in inv.devices] == ["PF1ABCDE", "5CG8123XYZ", None]
    assert inv.devices[1].model == "EliteBook 840 G5 – élève"
    assert inv.devices[2] == DeclaredDevice(line=4, serial=None, asset_tag="INV-2024-0003", model="Latitude 5490",
                                            type=rows[2][3], manufacturer="Dell")


def test_windows_1252_accents_are_read_as_accents():
    data = _excel_csv(["N° série", "Modèle"], [("ABC1", "Portable élève")], ";", "cp1252")
    assert b"\xe9" in data  # really single-byte é
    inv = read_inventory(data)
    assert inv.encoding == "cp1252"
    assert inv.devices[0].model == "Portable élève"
    assert inv.columns == {"serial": "N° série", "model": "Modèle"}


def test_bad_rows_are_reported_by_line_and_not_dropped():
    csv_text = ("Liste du matériel donné par la Région\n"
                "\n"
                "Numéro de série;N° inventaire;Modèle\n"
                "PF1ABCDE;INV1;T480\n"
                ";;Écran sans étiquette\n"
                "pf1-abcde;INV9;T480 again\n"
                ";;\n"
                "XYZ;INV2;T480;extra;cells\n"
                "\"MULTI\nLINE\";INV3;X\n"
                "LAST;INV4;X\n")
    inv = read_inventory(csv_text.encode())
    assert inv.header_line == 3
    assert [(d.line, d.serial) for d in inv.devices] == [(4, "PF1ABCDE"), (9, "MULTI LINE"), (11, "LAST")]
    assert [(p.line, p.message.split(":")[0].split(" ")[0]) for p in inv.problems] == [(5, "no"), (6, "serial"), (8, "5")]
    assert "already declared on line 4" in str(inv.problems[1])
    assert str(inv.problems[0]).startswith("line 5: no serial number and no asset tag")


def test_french_header_xlsx_with_numbers_and_a_gap():
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Inventaire du lot 2026-12 — Région"])
    ws.append(["  NUMERO DE SERIE ", "n° d'inventaire", "modele", "Fabricant", "Commentaire"])
    ws.append(["PF1ABCDE", 1001, "ThinkPad T480", "Lenovo", "écran rayé"])
    ws.append([None, None, None, None, None])
    ws.append([123456789.0, None, "OptiPlex", "Dell", None])
    ws.append([None, None, "sans numéro", None, None])
    buf = io.BytesIO()
    wb.save(buf)
    inv = read_inventory(buf.getvalue())
    assert inv.format == "xlsx" and inv.header_line == 2
    assert [(d.line, d.serial, d.asset_tag, d.manufacturer) for d in inv.devices] == [
        (3, "PF1ABCDE", "1001", "Lenovo"), (5, "123456789", None, "Dell")]
    assert [p.line for p in inv.problems] == [6]


def test_a_file_without_a_serial_or_asset_column_is_refused_in_one_line():
    with pytest.raises(InventoryError, match="no column named serial"):
        read_inventory(b"name;colour\nfoo;red\n")


def test_binary_garbage_and_old_xls_are_refused():
    with pytest.raises(InventoryError, match="neither UTF-8 nor Windows-1252"):
        read_inventory(b"serial\n\x81\x8d\x00\n")
    with pytest.raises(InventoryError, match=r"\.xls"):
        read_inventory(b"\xd0\xcf\x11\xe0" + b"\0" * 100)


def test_an_xlsx_that_unpacks_to_gigabytes_is_refused_before_inflating():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(210):
                f.write(chunk)
    assert len(buf.getvalue()) < 1 << 20
    with pytest.raises(TooLarge, match="unpacks to more than"):
        read_inventory(buf.getvalue())


def test_headers_and_identifiers_are_compared_loosely():
    assert header_key(" N° de Série ") == header_key("no de serie") == "nodeserie"
    assert normalise(" wd-wcc4n 123 ") == normalise("WDWCC4N123") == "WDWCC4N123"
    assert normalise(None) == normalise("--") == ""


def test_excel_unicode_text_export_utf16_tab_separated():
    text = "Numéro de série\tModèle\r\nPF1ABCDE\tThinkPad élève\r\n"
    inv = read_inventory(text.encode("utf-16"))
    assert (inv.encoding, inv.delimiter) == ("utf-16", "\t")
    assert inv.devices[0].model == "ThinkPad élève"
