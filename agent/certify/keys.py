"""The station's Ed25519 signing key and the public keys a verifier trusts.

The key is created on first use in the state directory (the stick's ARDOISE partition in
the live image), readable by root only. Its id is the hex SHA-256 of the raw 32-byte public
key, so anyone holding the PEM can recompute it with openssl (see docs/certificate.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.bounded import KEY_MAX, read_bounded
from agent.errors import CertificateError, ConfigError

PRIVATE_KEY_FILE = "station-key.pem"
PUBLIC_KEY_FILE = "station-key.pub.pem"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True)
class StationKey:
    """A loaded signing key. ``sign`` is the only operation that needs the private half."""

    private_key: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    @classmethod
    def generate(cls) -> "StationKey":
        """An in-memory key (tests, throwaway stations); never written anywhere."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, state_dir: str | os.PathLike) -> "StationKey":
        return cls.from_file(Path(state_dir) / PRIVATE_KEY_FILE)

    @classmethod
    def from_file(cls, path: Path, what: str = "station key") -> "StationKey":
        """An Ed25519 private key from an unencrypted PEM file (the station's, or the
        collector's receipt key: ``what`` names it in the one-line errors)."""
        try:
            data = read_bounded(path, KEY_MAX)
        except FileNotFoundError:
            raise ConfigError(f"no {what} at {path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(f"{what} {path} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{what} {path} is not an Ed25519 key")
        return cls(key, path)

    @classmethod
    def load_or_create(cls, state_dir: str | os.PathLike) -> "StationKey":
        """Load the station key, creating it (dir 0700, file 0600) the first time."""
        directory = Path(state_dir)
        path = directory / PRIVATE_KEY_FILE
        if path.exists():
            return cls.load(directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The data partition may be FAT (no modes); chmod is best effort there.
            os.chmod(directory, 0o700)
        except OSError as exc:
            if not directory.is_dir():
                raise ConfigError(f"cannot create state directory {directory}: {exc.strerror}") from None
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = directory / f".{PRIVATE_KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                # link() fails if another process created the key meanwhile: theirs wins,
                # so two agents starting together never end up with two keys.
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:
                # Filesystems without hard links (FAT): rename, which is atomic too.
                if not path.exists():
                    os.replace(tmp, path)
        except OSError as exc:
            raise ConfigError(f"cannot write station key in {directory}: {exc.strerror}") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        station = cls.load(directory)
        _write_public(directory / PUBLIC_KEY_FILE, station.public_pem)
        return station


def _write_public(path: Path, pem: str) -> None:
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        tmp.write_text(pem)
        os.replace(tmp, path)
    except OSError:
        pass  # a convenience copy; the private key file is the source of truth


def load_public_key(data: bytes, *, source: str = "key") -> Ed25519PublicKey:
    """A public key from PEM: a public key, or a private key whose public half is used."""
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateError(f"{source} is not a PEM Ed25519 key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CertificateError(f"{source} is not an Ed25519 key")
    return key


def load_public_keys(path: str | os.PathLike) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by key id, from one PEM file or every ``*.pem`` file of a directory."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".pem" and f.is_file())
        if not files:
            raise CertificateError(f"no .pem key files in {p}")
    elif p.exists():
        files = [p]
    else:
        raise CertificateError(f"key file {p} does not exist")
    keys: dict[str, Ed25519PublicKey] = {}
    for f in files:
        try:
            data = read_bounded(f, KEY_MAX)
        except OSError as exc:
            raise CertificateError(f"cannot read key file {f}: {exc.strerror}") from None
        key = load_public_key(data, source=str(f))
        keys[key_id(key)] = key
    return keys
