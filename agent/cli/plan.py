"""`ardoise plan [DEV...] [--json]`: the sanitization plan per disk, with the reason for
every step, every method left out, and every protected disk (no steps, and why)."""

from __future__ import annotations

from agent import discover, i18n
from agent.cli.output import emit_json, show
from agent.i18n import _
from agent.records import SanitizePlan, to_dict


def register(sub) -> None:
    p = sub.add_parser(
        "plan",
        help=_("show the sanitization plan per disk, with reasons"),
        description=_(
            "Read each disk's sanitize capabilities (nvme id-ctrl, hdparm -I, sg_opcodes, HPA/DCO) "
            "and show the ordered plan: first choice, fallbacks, and why. Nothing is written."
        ),
    )
    p.add_argument("devices", nargs="*", metavar="DEV", help=_("only these devices (default: every disk)"))
    p.add_argument("--json", action="store_true", help=_("JSON list of plans on stdout"))
    p.add_argument("--config", metavar="FILE", help=_("config file (policy overrides, exclude_serials, hpa_reset)"))
    p.add_argument("--method", metavar="M", help=_("plan a one-step overwrite with this method instead"))
    p.add_argument("--allow-file", action="store_true", help=_("accept regular files as DEV (demos, tests)"))
    p.set_defaults(func=run)


def plans_for(devices: list[str], *, config, method: str | None = None, allow_file: bool = False) -> list[SanitizePlan]:
    from agent.sanitize.policy import make_plan

    exclude = list(getattr(config, "exclude_serials", None) or [])
    if devices:
        disks = [discover.disk_for_path(d, allow_file=allow_file, exclude_serials=exclude) for d in devices]
    else:
        disks = discover.list_disks(exclude_serials=exclude)
    return [make_plan(d, config=config, method=method) for d in disks]


def run(args) -> int:
    from agent.config import load_config

    config = load_config(args.config)
    i18n.use_config(config)
    plans = plans_for(args.devices, config=config, method=args.method, allow_file=args.allow_file)
    if args.json:
        emit_json([plan_json(p) for p in plans])
    else:
        for p in plans:
            print_plan(p)
    return 0


def plan_json(plan: SanitizePlan) -> dict:
    """The plan with a one-line summary first, so a reader sees the decision at a glance."""
    data = to_dict(plan)
    if plan.not_target:
        summary = plan.not_target
    elif plan.steps:
        first = plan.steps[0]
        summary = f"{first.method} ({first.category.value})"
        if len(plan.steps) > 1:
            summary += ", then " + ", then ".join(s.method for s in plan.steps[1:])
    else:
        summary = "no sanitize step possible"
    return {"device": plan.disk.path, "target": plan.disk.target, "summary": summary, **data}


def print_plan(plan: SanitizePlan, out=None) -> None:
    d = plan.disk
    ident = " ".join(x for x in (d.model, d.serial) if x) or d.identity
    show(f"{d.path}  {d.transport.value}/{d.media.value}  {ident}", file=out)
    if plan.not_target:
        show(f"  {i18n.localize(plan.not_target)}", file=out)
        show(file=out)
        return
    for prep in plan.prepare:
        show("  " + _("first: {method} - {reason}").format(method=prep.method, reason=i18n.localize(prep.reason)),
             file=out)
    for i, step in enumerate(plan.steps, 1):
        show(f"  {i}. {step.method} [{step.category.value}] - {i18n.localize(step.reason)}", file=out)
    for step in plan.skipped:
        show(f"  -  {step.method}: {i18n.localize(step.reason)}", file=out)
    show("  " + _("verify: {how}").format(how=plan.verify), file=out)
    for note in plan.notes:
        show("  " + _("note: {note}").format(note=i18n.localize(note)), file=out)
    show(file=out)
