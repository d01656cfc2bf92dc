"""The HTTP side of ``ardoise-collector netboot``: scripts, boot files, config, tokens.

Files are served by Starlette's FileResponse: streamed in chunks from disk, with HTTP range
requests (``Range: bytes=a-b``, 206), so 40 laptops fetching 150 MB each hold a few
chunks of memory per connection, not the files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from server_stub.netboot import ipxe
from server_stub.netboot.image import BootFiles
from server_stub.netboot.seats import normalize_mac
from server_stub.progress import TokenBucket

log = logging.getLogger("ardoise.netboot")
NO_STORE = {"Cache-Control": "no-store"}
# Each boot script mints a token (a database row): one address may ask for a few in a row
# (a laptop rebooted, iPXE retrying), not flood the table.
MINT_RATE_PER_S = 0.2
MINT_BURST = 5


@dataclass
class Netboot:
    files: BootFiles
    cpio: Path
    config_yaml: bytes  # the agent's config as served: it carries no token (checked at start)
    need_ram_mib: int
    mint_token: Callable[[str], str]  # MAC -> a fresh one-time enrollment token bound to it
    seats: dict[str, str] = field(default_factory=dict)
    lot: str | None = None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def build_app(nb: Netboot) -> Starlette:
    served = {name: nb.files.path(name) for name in nb.files.sizes}
    served["netboot.cpio"] = nb.cpio
    minting = TokenBucket(MINT_RATE_PER_S, MINT_BURST)

    async def first(request: Request) -> Response:
        return PlainTextResponse(ipxe.first_script(nb.files.version), headers=NO_STORE)

    async def machine(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("ipxe", "words"):
            return PlainTextResponse("not found\n", status_code=404)
        mac = normalize_mac(request.path_params["mac"])
        if mac is None:
            return PlainTextResponse("#!ipxe\necho Ardoise: no MAC address in the boot URL\nexit 1\n",
                                     status_code=400, headers=NO_STORE)
        mem = request.query_params.get("mem", "")
        if kind == "ipxe" and re.fullmatch(r"\d{1,9}", mem) and int(mem) < nb.need_ram_mib:
            log.warning("boot refused: %s has %s MiB of RAM, the network boot needs %d", mac, mem, nb.need_ram_mib)
            return PlainTextResponse(ipxe.refuse_ram_script(int(mem), nb.need_ram_mib), headers=NO_STORE)
        wait = minting.take(request.client.host if request.client else "?")
        if wait:
            # iPXE takes any error as a failed chain: boot.ipxe waits 10 s and asks again.
            return PlainTextResponse("too many boot requests from this address\n", status_code=429,
                                     headers={**NO_STORE, "Retry-After": str(int(wait) + 1)})
        seat = nb.seats.get(mac)
        token = nb.mint_token(mac)
        log.info("boot: %s%s, one-time enrollment token minted for it", mac, f" (seat {seat})" if seat else "")
        boot = ipxe.MachineBoot(_base_url(request), nb.files.version, mac, seat, token)
        return PlainTextResponse(ipxe.boot_words(boot) if kind == "words" else ipxe.machine_script(boot),
                                 headers=NO_STORE)

    async def config(request: Request) -> Response:
        return Response(nb.config_yaml, media_type="text/plain; charset=utf-8", headers=NO_STORE)

    async def file(request: Request) -> Response:
        path = served.get(request.path_params["name"])
        if path is None:
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(path, media_type="application/octet-stream", stat_result=os.stat(path))

    return Starlette(routes=[
        Route("/boot.ipxe", first),
        Route("/boot/{mac}.{kind:str}", machine),
        Route("/ardoise.yaml", config),
        Route("/{name:path}", file),
    ])
