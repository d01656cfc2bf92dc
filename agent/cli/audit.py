"""`ardoise audit [--json] [--raw] [DEV...]`: the machine, its disks' SMART health, verdicts."""

from __future__ import annotations

import sys

from agent import discover, i18n
from agent.audit import audit_machine
from agent.discover.controllers import check_storage
from agent.cli.disks import human_size
from agent.cli.output import emit_json, say, show
from agent.i18n import _
from agent.records import AuditReport, Transport


def register(sub) -> None:
    p = sub.add_parser(
        "audit",
        help=_("machine report: system, CPU, memory, battery, GPU, NICs, displays, disks' SMART and verdicts"),
        description=_("Audit the machine and its disks (smartctl -x --json), with health verdicts and their reasons."),
    )
    p.add_argument("devices", nargs="*", metavar="DEV", help=_("audit only these disks (default: every disk found)"))
    p.add_argument("--json", action="store_true", help=_("the full AuditReport as JSON on stdout"))
    p.add_argument("--raw", action="store_true", help=_("keep smartctl's full JSON in each disk's smart.raw"))
    p.add_argument("--config", metavar="FILE", help=_("config file (thresholds, exclude_serials)"))
    p.add_argument("--allow-file", action="store_true", help=_("accept regular files as DEV (demos, tests)"))
    p.set_defaults(func=run)


def run(args) -> int:
    from agent.config import load_config

    config = load_config(args.config)
    i18n.use_config(config)
    exclude = list(config.exclude_serials)
    if args.devices:
        disks = [discover.disk_for_path(d, allow_file=args.allow_file, exclude_serials=exclude) for d in args.devices]
    else:
        # The machine's disks: loop and RAM devices found by enumeration are not part of it.
        disks = [
            d for d in discover.list_disks(exclude_serials=exclude) if d.transport not in (Transport.LOOP, Transport.RAM)
        ]
    report = audit_machine(disks, thresholds=config.thresholds, keep_raw=args.raw)
    # Controllers that hide disks, or no disk at all (only when auditing the whole machine).
    listed = discover.list_disks(exclude_serials=exclude) if args.devices else None
    report.storage = check_storage(disks, expect_disks=not args.devices, listed=listed)
    for d in report.disks:
        if d.smart is not None and "smartctl is not installed" in d.smart.messages:
            say("ardoise: " + _("warning: smartctl is not installed: disk health is unknown"))
            break
    if args.json:
        emit_json(report)
    else:
        print_report(report)
    return 0


def _line(label: str, value: object) -> None:
    show(f"{label:<10} {value}")


def print_report(r: AuditReport) -> None:
    m = r.machine
    out = sys.stdout
    if m.dmi:
        ident = " ".join(filter(None, [m.dmi.system_vendor, m.dmi.system_product, m.dmi.system_version]))
        _line(_("System"), _("{ident}  serial {serial}  ({chassis})").format(
            ident=ident or "?", serial=m.dmi.system_serial or "?", chassis=m.dmi.chassis_type or _("chassis ?")))
    else:
        _line(_("System"), _("unknown ({why})").format(why=m.missing.get("dmi", _("no DMI"))))
    if m.cpu:
        aes = _("yes") if m.cpu.aes else _("no")
        _line(_("CPU"), _("{brand}  {cores} cores / {threads} threads  aes={aes}").format(
            brand=m.cpu.brand, cores=m.cpu.cores or "?", threads=m.cpu.threads or "?", aes=aes))
    if m.memory:
        lang = i18n.current()
        total = lang.size(m.memory.total_bytes, binary=True) if m.memory.total_bytes else "?"
        if m.memory.modules:
            sizes = [f"{lang.size(x.size_bytes, binary=True)} {x.type or ''}".strip()
                     for x in m.memory.modules if x.size_bytes]
            detail = "  " + _("{used}/{total} slots: {sizes}").format(
                used=m.memory.slots_used, total=m.memory.slots_total, sizes=", ".join(sizes))
        else:
            detail = "  " + _("(modules: {why})").format(why=m.missing.get("memory.modules", "?"))
        _line(_("Memory"), total + detail)
    for b in m.batteries or []:
        health = f"{b.health_percent} %" if b.health_percent is not None else "?"
        _line(_("Battery"), _("{name}: health {health}  cycles {cycles}").format(
            name=b.name, health=health, cycles=b.cycle_count or "?"))
    if m.batteries is None:
        _line(_("Battery"), _("none ({why})").format(why=m.missing.get("batteries", "")))
    for g in m.gpus or []:
        _line(_("GPU"), " ".join(filter(None, [g.vendor, g.device])) or f"{g.vendor_id}:{g.device_id}")
    for n in m.nics or []:
        _line(_("Network"), f"{n.name} {n.kind} {n.mac}")
    for dsp in m.displays or []:
        _line(_("Display"), f"{dsp.connector}: {dsp.name or dsp.manufacturer} {dsp.diagonal_inches or '?'}\" "
                            f"{dsp.preferred_width}x{dsp.preferred_height}")
    for d in r.disks:
        s = d.smart
        hours = f"{s.power_on_hours} h" if s and s.power_on_hours is not None else "- h"
        _line(
            _("Disk"),
            f"{d.disk.path} {d.disk.model or ''} {human_size(d.disk.size_bytes)} {hours}: "
            f"{d.health.verdict.value} ({'; '.join(i18n.localize(x) for x in d.health.reasons)})",
        )
    if r.storage is not None:
        for c in r.storage.controllers or []:
            name = f" {c.name}" if c.name else ""
            disks = ", ".join(c.disks) or "no disk"
            problem = f"  <- {c.problem}" if c.problem else ""
            _line("Storage", f"{c.slot} {c.kind}{name} (driver {c.driver or 'none'}): {disks}{problem}")
        state = r.storage.state.value.replace("_", " ").upper()
        why = r.storage.advice or "; ".join(r.storage.reasons)
        _line("Storage", state + (f": {why}" if why else ""))
    show(file=out)
    show(_("Verdict: {verdict} - {reasons}").format(verdict=r.verdict.value.upper(), reasons="; ".join(i18n.localize(x) for x in r.reasons)),
         file=out)
