"""Reference collector for Ardoise erasure certificates (a real service despite its name)."""
