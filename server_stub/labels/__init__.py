"""Printed labels, one per machine: a QR code to the machine's record at the collector and
what a buyer asks first (model, CPU, RAM, storage, battery, erasure result, date).

- ``data.label_data(audit, certificates, base_url) -> LabelData``: the one place that reads
  an audit report and its certificates for a label;
- ``pdf.label_pdf(labels, size, language)``: a PDF of one page per label, at the label's size;
- ``zpl.label_zpl(labels, size, language)``: the same as ZPL II for Zebra printers;
- ``routes``: ``GET /audits/{id}/label`` and ``GET /labels?lot=``.
"""
