"""The final screen's QR code opens the machine's report at the collector when one is
configured, else carries the report's id and digest (issue 12)."""

from __future__ import annotations

import io

from rich.console import Console

from agent import tui
from agent.certify.envelope import envelope_digest
from agent.config import CollectorConfig
from agent.run import run_unattended
from agent.run.stages import _sign_audit
from test_run_pipeline import FakeStages, cfg, disk  # noqa: F401 - cfg is a fixture


def run(cfg) -> tuple[tui.RunView, bytes]:
    fake = FakeStages([disk(1)])
    stages = fake.stages()
    signed: list[bytes] = []

    def sign_audit(audit, config, key):
        report_id, data = _sign_audit(audit, config, key)  # the real signer
        signed.append(data)
        return report_id, data

    stages.sign_audit = sign_audit
    view = tui.RunView()
    run_unattended(cfg, stages=stages, view=view)
    return view, signed[0]


def screen(view: tui.RunView) -> str:
    # 120x40: the offline code (id and digest) is too tall for 80x25 beside the verdicts,
    # where the screen leaves it out rather than push the verdicts off (tests/unit/test_tui.py).
    console = Console(record=True, width=120, height=40, file=io.StringIO(), color_system=None)
    console.print(tui.render(view))
    return console.export_text()


def test_final_qr_opens_the_report_at_the_configured_collector(cfg):
    # A collector nothing listens on: the run spools and finishes, the QR still names the page.
    cfg.collector = CollectorConfig(url="http://127.0.0.1:9", retries=1, backoff_s=0.01, timeout_s=0.5)
    view, _ = run(cfg)
    assert view.machine.qr_data == f"http://127.0.0.1:9/audits/{view.machine.report_id}"
    assert tui.qr_text(view.machine.qr_data).splitlines()[3] in screen(view)


def test_final_qr_without_a_collector_holds_the_report_id_and_digest(cfg):
    view, envelope = run(cfg)
    assert view.machine.qr_data == f"ardoise-audit:{view.machine.report_id};sha256={envelope_digest(envelope)}"
    assert tui.qr_text(view.machine.qr_data).splitlines()[3] in screen(view)
