"""Lots: what a donor handed over, what became of each device, and the proof of it.

The domain logic here is pure (typed records in, typed records out): ``inventory`` reads
the donor's spreadsheet, ``reconcile`` matches it with audit reports, certificates and
destruction records, ``report`` builds and signs the lot report, ``bundle`` streams the
donor's ZIP. Storage and pages map their rows onto these records (docs/lots.md).
"""
