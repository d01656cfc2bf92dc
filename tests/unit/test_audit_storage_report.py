"""The storage state and controllers in the signed audit report, and the schema that
still accepts reports written before them."""

from __future__ import annotations

import pytest

import certify_samples as S
from agent.certify import envelope
from agent.certify.audit_report import build_audit_payload
from agent.certify.check import check_certificate
from agent.certify.keys import StationKey
from agent.discover import controllers
from agent.records import Disk, StorageController, StorageState


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


def _check(payload, key):
    env = envelope.sign_envelope(payload, envelope.AUDIT_TYPE, key)
    return check_certificate(env, {key.key_id: key.public_key}, payload_type=envelope.AUDIT_TYPE)


def test_unreachable_storage_is_in_the_signed_report_with_the_advice(key):
    audit = S.audit_for(S.overwrite_success())
    vmd = StorageController(slot="0000:00:0e.0", class_code="010400", kind="vmd", vendor_id="8086",
                            device_id="9a0b", driver="vmd")
    audit.storage = controllers.storage_state([vmd], [], [audit.disks[0].disk])
    payload = build_audit_payload(audit, S.config(), key)
    storage = payload["storage"]
    assert storage["state"] == "storage_unreachable"
    assert storage["advice"] == "storage not reachable: set SATA mode to AHCI in the firmware setup (F2 / Del)"
    assert storage["controllers"][0]["problem"].startswith("VMD controller 0000:00:0e.0")
    report = _check(payload, key)
    assert report.valid, report.reasons


def test_no_disk_found_is_a_field_the_collector_can_count(key):
    audit = S.audit_for(S.overwrite_success())
    audit.disks = []
    audit.storage = controllers.storage_state([], [], [Disk(path="/dev/sda", name="sda", target=False)])
    payload = build_audit_payload(audit, S.config(), key)
    assert payload["storage"]["state"] == StorageState.NO_DISK_FOUND == "no_disk_found"
    assert _check(payload, key).valid


def test_a_report_without_storage_stays_valid_and_a_wrong_state_does_not(key):
    payload = build_audit_payload(S.audit_for(S.overwrite_success()), S.config(), key)
    assert "storage" not in payload
    assert _check(payload, key).valid
    payload["storage"] = {"state": "fine", "reasons": [], "controllers": None}
    assert not _check(payload, key).valid
