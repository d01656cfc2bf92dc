from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from agent.certify import keys
from agent.errors import CertificateError, ConfigError


def test_station_key_is_created_on_first_use_readable_by_owner_only(tmp_path):
    state = tmp_path / "state"
    key = keys.StationKey.load_or_create(state)
    path = state / keys.PRIVATE_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert keys.StationKey.load_or_create(state).key_id == key.key_id


def test_key_id_is_sha256_of_the_raw_public_key(tmp_path):
    key = keys.StationKey.load_or_create(tmp_path)
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert key.key_id == hashlib.sha256(raw).hexdigest()


def test_public_key_is_written_beside_the_private_key_and_loads_by_file_or_dir(tmp_path):
    key = keys.StationKey.load_or_create(tmp_path)
    pub = tmp_path / keys.PUBLIC_KEY_FILE
    assert pub.read_text() == key.public_pem
    assert list(keys.load_public_keys(pub)) == [key.key_id]
    other = keys.StationKey.generate()
    d = tmp_path / "trusted"
    d.mkdir()
    (d / "a.pem").write_text(key.public_pem)
    (d / "b.pem").write_text(other.public_pem)
    (d / "README").write_text("not a key")
    assert set(keys.load_public_keys(d)) == {key.key_id, other.key_id}


def test_concurrent_first_use_yields_one_key(tmp_path):
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(keys.StationKey.load_or_create(tmp_path).key_id)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [keys.PRIVATE_KEY_FILE, keys.PUBLIC_KEY_FILE]


def test_garbage_key_files_are_refused_with_one_line(tmp_path):
    (tmp_path / keys.PRIVATE_KEY_FILE).write_text("garbage")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        keys.StationKey.load_or_create(tmp_path)
    bad = tmp_path / "x.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(CertificateError, match="not a PEM Ed25519 key"):
        keys.load_public_keys(bad)
    with pytest.raises(CertificateError, match="does not exist"):
        keys.load_public_keys(tmp_path / "nope.pem")


def test_rsa_key_is_not_accepted_as_a_station_key(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "rsa.pem").write_bytes(pem)
    with pytest.raises(CertificateError, match="not an Ed25519 key"):
        keys.load_public_keys(tmp_path / "rsa.pem")
