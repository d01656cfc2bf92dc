"""Ardoise: a live-USB agent that audits donated computers, sanitizes their disks per
NIST SP 800-88 and signs one erasure certificate per disk."""

__version__ = "0.1.0"
