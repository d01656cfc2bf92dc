"""``ardoise-collector netboot``: check the inputs, extract the image, serve."""

from __future__ import annotations

import functools
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.config import load_config
from agent.errors import ConfigError, UsageError
from server_stub.netboot import image, initrd, tftp
from server_stub.netboot.seats import read_seats
from server_stub.netboot.service import Netboot, build_app


def netboot_config(path: Path, scratch: Path) -> tuple[bytes, str | None]:
    """The agent's config for the laptops, checked as the agent will check it, as served."""
    # by_label: an empty directory, so checking the file never looks at this server's own
    # disks for an ARDOISE data partition.
    cfg = load_config(path, cmdline="", by_label=scratch)
    if cfg.collector is None:
        raise ConfigError(f"{path}: a network boot needs collector.url: the laptops keep their certificates "
                          "in RAM only, until the collector has them")
    if cfg.collector.token:
        raise ConfigError(f"{path}: remove collector.token: this file is served to every machine on the network; "
                          "the netboot service gives each boot its own one-time token")
    return path.read_bytes(), cfg.lot


def prepare(iso: Path, config: Path, seats: Path | None, work: Path,
            mint_token: Callable[[str | None, str], str]) -> Netboot:
    """``mint_token(lot, mac)`` makes a one-time enrollment token for that lot, bound to that MAC."""
    if not iso.is_file():
        raise ConfigError(f"{iso}: no such image (build it with build_image.sh)")
    empty = work / "no-labels"
    empty.mkdir(parents=True, exist_ok=True)
    served_config, lot = netboot_config(config, empty)
    seat_map = read_seats(seats) if seats else {}
    files = image.extract(iso, work / "files")
    cpio = initrd.write_cpio(files, work / "netboot.cpio")
    return Netboot(files, cpio, served_config, initrd.required_ram_mib(files),
                   functools.partial(mint_token, lot), seat_map, lot)


def public_url(args) -> str | None:
    """The address the laptops reach this service at, written into the TFTP files."""
    if args.url:
        if not re.fullmatch(r"http://[A-Za-z0-9.:\[\]-]+", args.url):
            raise UsageError(f"--url {args.url}: expected http://HOST:PORT (no path), as the laptops reach this service")
        return args.url
    if args.host in ("0.0.0.0", "::", ""):
        if args.tftp_root:
            raise UsageError("--tftp-root needs --url http://SERVER:PORT (or --host set to that address): the "
                             "files it writes tell the laptops where this service is")
        return None
    return f"http://{args.host}:{args.port}"


def run_netboot(args, open_db) -> int:
    import uvicorn

    from server_stub import stations

    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.token_ttl_hours <= 0:
        raise UsageError("--token-ttl-hours must be positive")
    base_url = public_url(args)
    work = Path(tempfile.mkdtemp(prefix="ardoise-netboot-", dir=args.work_dir or "/var/tmp"))
    try:
        db = open_db(args)

        workshop = stations.workshop_for(db, args.workshop, None)

        def mint(lot: str | None, mac: str) -> str:
            return stations.create_token(db, lot, args.token_ttl_hours, workshop_id=workshop, mac=mac).token

        nb = prepare(Path(args.iso), Path(args.config), Path(args.seats) if args.seats else None, work, mint)
        print(f"ardoise-collector netboot: Ardoise {nb.files.version} at http://{args.host}:{args.port}/boot.ipxe; "
              f"each laptop needs {nb.need_ram_mib} MiB of RAM; {len(nb.seats)} seat(s); "
              f"lot {nb.lot or '(none)'}", file=sys.stderr)
        if args.tftp_root:
            dest = tftp.export(nb, Path(args.tftp_root), base_url)
            print(f"ardoise-collector netboot: Secure Boot files and GRUB menu in {dest} (TFTP), "
                  f"pointing at {base_url}", file=sys.stderr)
        uvicorn.run(build_app(nb), host=args.host, port=args.port, log_level="info", server_header=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
