"""Organisations, people, their roles, their sessions, and what each may see and do."""
