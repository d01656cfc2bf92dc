"""ardoise-collector netboot: image extraction and checks, the initrd addition, seats,
the scripts and files served, and tokens bound to the MAC that booted."""

from __future__ import annotations

import hashlib
import os
import subprocess
import io
from pathlib import Path

import pycdlib
import pytest
from starlette.testclient import TestClient

from agent.errors import ConfigError
from server_stub import stations
from server_stub.cli import main as collector_main
from server_stub.db import Database, migrate
from server_stub.errors import Unauthorized
from server_stub.netboot import image, initrd
from server_stub.netboot.cli import prepare
from server_stub.netboot.seats import read_seats
from server_stub.netboot.service import build_app

CONTENT = {
    "live/vmlinuz": b"kernel" * 1000,
    "live/initrd.img": b"initrd" * 1000,
    "live/10-base.squashfs": bytes(range(256)) * 4099,  # not a multiple of 4: cpio padding
    "live/20-ardoise.squashfs": b"agent-layer" * 333,
}
CONFIG = "collector:\n  url: http://10.0.2.2:8080\n  allow_insecure_http: true\nlot: LOT-NB\non_finish: poweroff\n"
MAC = "52-54-00-12-34-56"


def make_iso(tmp: Path, content=CONTENT, manifest_sums=None) -> Path:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09")
    iso.add_directory("/LIVE", rr_name="live")
    for i, (name, data) in enumerate(content.items()):
        iso.add_fp(io.BytesIO(data), len(data), f"/LIVE/F{i}.;1", rr_name=name.split("/")[1])
    path = tmp / "ardoise-9.9-amd64.iso"
    iso.write(str(path))
    iso.close()
    sums = manifest_sums if manifest_sums is not None else {n: hashlib.sha256(d).hexdigest() for n, d in content.items()}
    lines = ["# Ardoise live image manifest", "agent_version: 9.9"] + [f"sha256: {n} {h}" for n, h in sums.items()]
    (tmp / "ardoise-9.9-amd64.manifest.txt").write_text("\n".join(lines) + "\n")
    return path


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out[name] = (mode, data[pos:pos + size])
        pos += size
        pos += -pos % 4


def test_extract_checks_every_file_against_the_manifest(tmp_path):
    files = image.extract(make_iso(tmp_path), tmp_path / "out")
    assert files.version == "9.9"
    for name, data in CONTENT.items():
        assert files.path(name).read_bytes() == data
    assert files.layers == ["live/10-base.squashfs", "live/20-ardoise.squashfs"]


def test_the_initramfs_is_padded_so_that_netboot_cpio_starts_on_a_4_byte_boundary(tmp_path):
    # The EFI stub may load the two initrds back to back; the kernel reads a plain cpio only
    # at a 4-byte boundary ("invalid magic at start of compressed archive" otherwise).
    odd = {**CONTENT, "live/initrd.img": b"zstd-initramfs" * 71 + b"!"}  # 995 bytes
    files = image.extract(make_iso(tmp_path, odd), tmp_path / "out")
    served = files.path("live/initrd.img").read_bytes()
    assert len(served) % 4 == 0 and len(served) - len(odd["live/initrd.img"]) == 1
    assert served == odd["live/initrd.img"] + b"\0"


def test_extract_refuses_a_file_that_does_not_match(tmp_path):
    sums = {n: hashlib.sha256(d).hexdigest() for n, d in CONTENT.items()}
    sums["live/20-ardoise.squashfs"] = "0" * 64
    with pytest.raises(ConfigError, match="20-ardoise.squashfs .*does not match"):
        image.extract(make_iso(tmp_path, manifest_sums=sums), tmp_path / "out")


def test_extract_refuses_a_manifest_without_sums(tmp_path):
    sums = {n: hashlib.sha256(d).hexdigest() for n, d in CONTENT.items() if n != "live/vmlinuz"}
    with pytest.raises(ConfigError, match="no sha256 line for live/vmlinuz"):
        image.extract(make_iso(tmp_path, manifest_sums=sums), tmp_path / "out")


def test_cpio_holds_both_layers_and_the_live_boot_hook(tmp_path):
    files = image.extract(make_iso(tmp_path), tmp_path / "out")
    entries = read_cpio(initrd.write_cpio(files, tmp_path / "nb.cpio").read_bytes())
    assert entries["ardoise-live/live/10-base.squashfs"][1] == CONTENT["live/10-base.squashfs"]
    assert entries["ardoise-live/live/20-ardoise.squashfs"][1] == CONTENT["live/20-ardoise.squashfs"]
    mode, hook = entries[initrd.HOOK_PATH]
    assert mode == 0o100755
    need = initrd.required_ram_mib(files)
    assert need == 704  # 1 MiB of layers + 640, rounded up to 64
    assert f"need={need}\n" in hook.decode() and "find_livefs ()" in hook.decode()
    assert entries["ardoise-live"][0] == 0o040755


def test_seats_file(tmp_path):
    f = tmp_path / "seats.csv"
    f.write_text("MAC,seat\n52:54:00:12:34:56,1\n# spare\nAA-BB-CC-DD-EE-FF, 12\n")
    assert read_seats(f) == {MAC: "1", "aa-bb-cc-dd-ee-ff": "12"}
    f.write_text("52:54:00:12:34:56,1\n52-54-00-12-34-56,2\n")
    with pytest.raises(ConfigError, match="already seat 1"):
        read_seats(f)
    f.write_text("not-a-mac,1\n")
    with pytest.raises(ConfigError, match=":1: 'not-a-mac' is not a MAC address"):
        read_seats(f)
    f.write_text("52:54:00:12:34:56,1 2\n")
    with pytest.raises(ConfigError, match="seat '1 2'"):
        read_seats(f)


@pytest.fixture
def served(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(db)
    cfg = tmp_path / "ardoise.yaml"
    cfg.write_text(CONFIG)
    seats = tmp_path / "seats.csv"
    seats.write_text(f"{MAC},7\n")
    minted: list[tuple[str | None, str, str]] = []

    def mint(lot, mac):
        t = stations.create_token(db, lot, 1.0, workshop_id=stations.workshop_for(db, None, None), mac=mac).token
        minted.append((lot, mac, t))
        return t

    nb = prepare(make_iso(tmp_path), cfg, seats, tmp_path / "work", mint)
    return TestClient(build_app(nb), base_url="http://10.0.2.2:8070"), nb, db, minted


def test_first_script_chains_by_mac(served):
    client, *_ = served
    r = client.get("/boot.ipxe")
    assert r.status_code == 200 and r.text.startswith("#!ipxe\n")
    assert "chain --autofree boot/${netX/mac:hexhyp}.ipxe?mem=${memsize}" in r.text
    assert r.headers["cache-control"] == "no-store"


def test_each_boot_request_mints_its_own_token_with_the_seat(served):
    client, nb, db, minted = served
    one = client.get(f"/boot/{MAC}.ipxe?mem=").text
    two = client.get(f"/boot/{MAC.replace('-', ':')}.ipxe").text
    assert [m[:2] for m in minted] == [("LOT-NB", MAC), ("LOT-NB", MAC)]
    assert minted[0][2] != minted[1][2]
    assert f"ardoise.collector.token={minted[0][2]}" in one and f"ardoise.collector.token={minted[1][2]}" in two
    assert "ardoise.seat=7" in one and "seat 7" in one
    assert "kernel http://10.0.2.2:8070/live/vmlinuz boot=live components" in one
    assert "initrd http://10.0.2.2:8070/netboot.cpio" in one
    assert "ardoise-netboot=http://10.0.2.2:8070" in one
    # No token in anything served to every machine.
    assert "token" not in client.get("/ardoise.yaml").text
    assert client.get("/ardoise.yaml").text == CONFIG


def test_a_secure_boot_machine_asks_for_its_token_and_seat_by_mac(served):
    client, nb, db, minted = served
    r = client.get("/boot/52:54:00:12:34:56.words")
    assert r.status_code == 200 and len(minted) == 1 and minted[0][1] == MAC
    assert r.text == f"ardoise.collector.token={minted[0][2]} ardoise.seat=7\n"
    assert r.headers["cache-control"] == "no-store"
    assert client.get(f"/boot/{MAC}.grub").status_code == 404


def test_the_secure_boot_files_go_to_the_tftp_tree_without_a_token(served, tmp_path):
    from server_stub.netboot import tftp

    client, nb, db, minted = served
    dest = tftp.export(nb, tmp_path / "tftp", "http://192.168.1.5:8070")
    assert (dest / "vmlinuz").read_bytes() == CONTENT["live/vmlinuz"]
    assert (dest / "initrd.img").read_bytes() == CONTENT["live/initrd.img"]
    assert (dest / "netboot.cpio").read_bytes() == nb.cpio.read_bytes()
    menu = (dest / "grub.cfg").read_text()
    assert "linux /ardoise/vmlinuz boot=live components" in menu
    assert "ardoise-netboot=http://192.168.1.5:8070 ardoise.hold_until_delivered" in menu
    assert "initrd /ardoise/initrd.img /ardoise/netboot.cpio" in menu
    assert "token" not in menu and minted == []


def test_too_little_ram_is_refused_before_any_download(served):
    client, nb, db, minted = served
    r = client.get(f"/boot/{MAC}.ipxe?mem=512")
    assert "NOT ENOUGH RAM" in r.text and f"needs {nb.need_ram_mib} MiB" in r.text and "poweroff" in r.text
    assert "kernel" not in r.text and minted == []
    assert "kernel" in client.get(f"/boot/{MAC}.ipxe?mem={nb.need_ram_mib}").text


def test_token_minting_is_rate_limited_per_address(served):
    client, nb, db, minted = served
    answers = [client.get(f"/boot/{MAC}.ipxe").status_code for _ in range(7)]
    assert answers == [200] * 5 + [429] * 2 and len(minted) == 5


def test_a_boot_url_without_a_mac_is_refused(served):
    client, *_ = served
    r = client.get("/boot/nope.ipxe")
    assert r.status_code == 400 and "no MAC address" in r.text


def test_files_are_served_with_ranges(served):
    client, *_ = served
    whole = client.get("/live/10-base.squashfs")
    assert whole.status_code == 200 and whole.content == CONTENT["live/10-base.squashfs"]
    part = client.get("/live/10-base.squashfs", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == CONTENT["live/10-base.squashfs"][1000:2000]
    assert client.get("/netboot.cpio").content.startswith(b"070701")
    assert client.get("/../c.db").status_code == 404
    assert client.get("/live/other").status_code == 404


def test_a_token_bound_to_a_mac_enrolls_only_a_machine_with_that_nic(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(db)
    token = stations.create_token(db, "LOT", 1.0, workshop_id=stations.workshop_for(db, None, None),
                                   mac="52:54:00:12:34:56").token
    pem = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    no_proof = lambda *a: None  # noqa: E731 - the proof is tested with the API
    with pytest.raises(Unauthorized, match="unknown enrollment token"):
        stations.enroll(db, token, pem, None, proof=no_proof)
    with pytest.raises(Unauthorized, match="unknown enrollment token"):
        stations.enroll(db, token, pem, None, proof=no_proof, macs=["52-54-00-99-99-99"])
    e = stations.enroll(db, token, pem, None, proof=no_proof, macs=["52-54-00-99-99-99", MAC])
    assert e.created and e.lot == "LOT"


def test_cli_refuses_a_config_with_a_token(tmp_path, capsys):
    cfg = tmp_path / "ardoise.yaml"
    cfg.write_text(CONFIG.replace("allow_insecure_http: true\n", "allow_insecure_http: true\n  token: ardenr_x\n"))
    iso = make_iso(tmp_path)
    rc = collector_main(["netboot", "--iso", str(iso), "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'c.db'}",
                         "--work-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "remove collector.token" in err and "Traceback" not in err
    rc = collector_main(["netboot", "--iso", str(tmp_path / "none.iso"), "--config", str(cfg),
                         "--db", f"sqlite:///{tmp_path / 'c.db'}", "--work-dir", str(tmp_path)])
    assert rc != 0 and "no such image" in capsys.readouterr().err


def _run_hook(tmp_path, mem_kib: int, need: int = 832) -> subprocess.CompletedProcess:
    """Source the live-boot hook in sh with its system paths pointed into tmp_path and
    poweroff, sleep and mount stubbed, as live-boot would, then call find_livefs."""
    live = tmp_path / "ardoise-live"
    (live / "live").mkdir(parents=True, exist_ok=True)
    (tmp_path / "meminfo").write_text(f"MemTotal:       {mem_kib} kB\nMemFree:        1000 kB\n")
    hook = tmp_path / "hook.sh"
    hook.write_text(initrd.HOOK.replace("@NEED_MIB@", str(need)))
    console = tmp_path / "console"
    script = (
        f"poweroff() {{ echo \"$*\" > {tmp_path / 'poweroff'}; exit 0; }}\n"
        "sleep() { :; }\n"
        'mount() { echo "mount $*" >&2; }\n'
        f". {hook}\n"
        "find_livefs 0\n"
    )
    env = {"PATH": os.environ["PATH"], "ARDOISE_NB_LIVE": str(live), "ARDOISE_NB_MEMINFO": str(tmp_path / "meminfo"),
           "ARDOISE_NB_CONSOLES": str(console), "ARDOISE_NB_SYSRQ": str(tmp_path / "sysrq"),
           "mountpoint": str(tmp_path / "medium")}
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)


def test_boot_hook_refuses_too_little_ram_on_screen_then_powers_off(tmp_path):
    r = _run_hook(tmp_path, mem_kib=700 * 1024)
    said = (tmp_path / "console").read_text()
    assert "NOT ENOUGH RAM" in said and "ardoise-netboot: refused: 700 MiB RAM < 832 MiB" in said
    assert (tmp_path / "poweroff").read_text() == "-f\n"
    assert "mount" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "sysrq").exists()


def test_boot_hook_shows_the_layers_to_live_boot(tmp_path):
    r = _run_hook(tmp_path, mem_kib=900 * 1024)
    assert r.returncode == 0, r.stderr
    assert f"mount --bind {tmp_path / 'ardoise-live'} {tmp_path / 'medium'}" in r.stderr
    assert r.stdout == f"{tmp_path / 'medium'}\n"  # live-boot reads the medium from stdout
    assert not (tmp_path / "console").exists() and not (tmp_path / "poweroff").exists()


def test_tftp_files_without_the_address_the_laptops_reach_are_refused_in_one_line(tmp_path, capsys):
    iso = make_iso(tmp_path)
    cfg = tmp_path / "a.yaml"
    cfg.write_text(CONFIG)
    base = ["netboot", "--iso", str(iso), "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'c.db'}",
            "--work-dir", str(tmp_path), "--tftp-root", str(tmp_path / "tftp")]
    for extra, word in (([], "--tftp-root needs --url"), (["--url", "http://a/b"], "expected http://HOST:PORT")):
        rc = collector_main(base + extra)
        err = capsys.readouterr().err
        assert rc != 0 and word in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "tftp").exists()
