"""Delivery: the spool on the stick, the collector client, uploads and live progress."""
