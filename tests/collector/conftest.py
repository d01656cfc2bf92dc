"""Fixtures of the collector tests; the machinery lives in harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import EnrolledStation, pg_schema_or_skip, start_collector, stop_collector  # noqa: E402


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def collector(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collector")
    schema = None
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'collector.db'}"
    else:
        schema = pg_schema_or_skip()
        db_url = schema.url
    c = start_collector(db_url, tmp)
    yield c
    stop_collector(c)
    if schema:
        schema.drop()


@pytest.fixture(scope="module")
def sqlite_collector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collector")
    c = start_collector(f"sqlite:///{tmp / 'collector.db'}", tmp)
    yield c
    stop_collector(c)


@pytest.fixture
def station(collector) -> EnrolledStation:
    return collector.enroll()
