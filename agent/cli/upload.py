"""`ardoise upload [--config FILE]`: send the spooled certificates and audit reports now."""

from __future__ import annotations

from agent import i18n
from agent.cli.output import emit_json, say
from agent.config import load_config
from agent.errors import ConfigError, DeliveryError
from agent.i18n import T_, _


def register(sub) -> None:
    p = sub.add_parser(
        "upload",
        help=_("send the spooled certificates to the collector now"),
        description=_(
            "Send every certificate and audit report of the spool that the collector has not "
            "acknowledged yet. A file is marked delivered only after the collector answers 201 "
            "or 200, and is kept as the local copy. Exit 0 when everything is delivered."
        ),
    )
    p.add_argument("--config", metavar="FILE", help=_("config file (default: ardoise.yaml on the ARDOISE partition)"))
    p.add_argument("--retry-rejected", action="store_true", help=_("also resend files the collector rejected before"))
    p.add_argument("--json", action="store_true", help=_("print the delivery report as JSON on stdout"))
    p.set_defaults(func=run)


def run(args) -> int:
    from agent.certify.keys import StationKey
    from agent.deliver.client import CollectorClient
    from agent.deliver.spool import Spool
    from agent.deliver.upload import deliver_pending

    config = load_config(args.config)
    i18n.use_config(config)
    if config.collector is None:
        raise ConfigError(T_("no collector configured (set collector.url in ardoise.yaml or ardoise.collector.url=)"))
    spool = Spool.for_state_dir(config.state_dir)
    key = StationKey.load_or_create(config.state_dir)
    client = CollectorClient(config.collector, config.state_dir, key)
    report = deliver_pending(spool, client, include_rejected=args.retry_rejected)
    counts = spool.counts()
    if report.error and not (report.delivered or report.duplicates or report.rejected) and not args.json:
        raise DeliveryError(report.error)  # nothing happened: one line says why
    if args.json:
        emit_json(
            {
                "delivered": report.delivered,
                "already_delivered": report.duplicates,
                "rejected": [{"file": f, "reason": r} for f, r in report.rejected],
                "pending": report.pending,
                "error": report.error,
                "spool": {"spooled": counts.spooled, "delivered": counts.delivered, "rejected": counts.rejected},
            }
        )
    say(
        "ardoise: " + _("{delivered} delivered, {duplicates} already at the collector, {rejected} rejected, "
                        "{pending} pending").format(delivered=len(report.delivered), duplicates=len(report.duplicates),
                                                    rejected=len(report.rejected), pending=len(report.pending))
    )
    for name, reason in report.rejected:
        say("ardoise: " + _("rejected {file}: {reason}").format(file=name, reason=reason))
    if report.error:
        raise DeliveryError(report.error)
    if report.rejected or counts.rejected:
        raise DeliveryError(T_("{n} file(s) rejected by the collector; see above, or --retry-rejected",
                               n=counts.rejected))
    return 0
