"""Signed erasure certificates: DSSE envelopes over a NIST SP 800-88 record, with a PDF."""
