"""The label stock workshops print on."""

from __future__ import annotations

from dataclasses import dataclass

from server_stub.errors import Malformed


@dataclass(frozen=True)
class LabelSize:
    code: str
    width_mm: float
    height_mm: float
    zpl: bool  # a stock Zebra printers take (the ZPL renderer lays it out)


# 62 mm continuous tape is what Brother QL printers use; 100 mm of it holds the QR code and
# the specifications in a size a customer reads at arm's length. 50x30 mm die-cut labels and
# 4x6 in shipping labels are what Zebra and Dymo desktop printers are loaded with.
SIZES: dict[str, LabelSize] = {
    "62mm": LabelSize("62mm", 62.0, 100.0, zpl=False),
    "50x30": LabelSize("50x30", 50.0, 30.0, zpl=True),
    "4x6": LabelSize("4x6", 101.6, 152.4, zpl=True),
}


def size_of(code: str) -> LabelSize:
    try:
        return SIZES[code]
    except KeyError:
        raise Malformed(f"size must be one of {', '.join(SIZES)}") from None
