from __future__ import annotations

import io

from rich.console import Console

from agent import tui


def screen(view: tui.RunView, width: int = 160) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(tui.render(view))
    return console.export_text()


def base_view() -> tui.RunView:
    v = tui.RunView()
    v.set_machine(
        tui.MachineSummary(
            vendor="LENOVO", model="ThinkPad T480", serial="PF1ABCDE", cpu="Intel i5-8350U", ram="8.0 GB",
            battery="71%", verdict="reuse", report_id="5f0d7a4e-1111-4000-8000-000000000001",
        )
    )
    v.add_disk(tui.DiskRow("/dev/nvme0n1", model="SAMSUNG MZVLB256", serial="S4DXNX0M", size_bytes=256_060_514_304, smart="good"))
    v.add_disk(tui.DiskRow("/dev/sda", model="ST500LM021", serial="W3T0ABCD", size_bytes=500_107_862_016, smart="failing"))
    v.add_disk(tui.DiskRow("/dev/sdb", model="SanDisk Cruzer", serial="4C5300", size_bytes=16_000_000_000, state=tui.PROTECTED, detail="boot medium"))
    v.set_delivery(collector="https://collector.example: connected", spooled=1, delivered=0)
    return v


def test_start_screen_shows_machine_rows_and_footer():
    text = screen(base_view())
    for part in ("LENOVO ThinkPad T480", "PF1ABCDE", "Intel i5-8350U", "8.0 GB", "71%", "reuse",
                 "/dev/nvme0n1", "S4DXNX0M", "256 GB", "good", "failing", "waiting",
                 "PROTECTED boot medium", "Collector: https://collector.example: connected", "1 on the stick, 0 delivered"):
        assert part in text, part


def test_mid_wipe_screen_shows_method_pass_speed_eta_and_state():
    v = base_view()
    v.update("/dev/sda", state=tui.WIPING, method="overwrite:dod-3pass", phase="write", pass_index=2, pass_count=3,
             bytes_done=250_000_000_000, bytes_total=500_107_862_016, throughput_bps=120e6, eta_s=3725)
    v.update("/dev/nvme0n1", state=tui.VERIFYING, method="nvme-sanitize-crypto", bytes_done=10, bytes_total=100, eta_s=30)
    text = screen(v)
    assert "dod-3pass" in text and "pass 2/3" in text
    assert "120 MB/s" in text and "1h02m" in text
    assert "wiping" in text and "verifying" in text
    assert "nvme-sanitize-crypto" in text


def test_final_screen_shows_big_verdicts_advice_and_qr():
    v = base_view()
    v.update("/dev/nvme0n1", state=tui.PASSED, detail="Purge by nvme-sanitize-crypto", certificate_id="c-1",
             advice=tui.advice_for("success", "good", True))
    v.update("/dev/sda", state=tui.FAILED, detail="I/O error at LBA 7", certificate_id="c-2",
             advice=tui.advice_for("failed", "failing", True))
    v.finish("Powering off in 30 s")
    text = screen(v)
    assert tui.big_text("PASSED").splitlines()[0] in text
    assert tui.big_text("FAILED").splitlines()[0] in text
    assert "destroy it physically" in text
    assert "ready for reuse" in text
    assert "cert c-2" in text
    assert "report 5f0d7a4e" in text
    assert "▄▄▄▄▄" in text  # the QR code's finder patterns
    assert "Powering off in 30 s" in text
    # The protected boot stick gets no verdict: it was never a candidate.
    assert "/dev/sdb" not in text.split("Verdict")[1].split("Collector")[0]


def test_qr_code_encodes_the_report_id():
    q = tui.qr_text("5f0d7a4e-1111-4000-8000-000000000001")
    lines = q.splitlines()
    assert len(lines) >= 12 and len({len(l) for l in lines}) == 1


def test_log_display_prints_state_changes_and_results_without_a_terminal():
    out = io.StringIO()
    v = tui.RunView()
    tui.LogDisplay(v, stream=out, every=0)
    v.add_disk(tui.DiskRow("/dev/sda", serial="W3T0"))
    v.update("/dev/sda", state=tui.WIPING, method="overwrite:zero")
    v.update("/dev/sda", smart="good")
    v.update("/dev/sda", bytes_done=50, bytes_total=100, pass_index=1, pass_count=1)
    v.update("/dev/sda", state=tui.FAILED, detail="I/O error", advice="remove and destroy")
    v.finish("Done")
    lines = out.getvalue().splitlines()
    assert "ardoise: /dev/sda (W3T0): waiting" in lines
    assert any("wiping overwrite:zero" in l for l in lines)
    assert any("50%" in l for l in lines)
    assert any("RESULT /dev/sda (W3T0): FAILED; remove and destroy" in l for l in lines)
    assert all(l.startswith("ardoise: ") for l in lines)
    assert sum("%" in l for l in lines) == 1  # the SMART verdict update is not a progress line


def test_advice_names_destruction_for_failed_purge_on_failing_drive():
    assert "destroy" in tui.advice_for("failed", "failing", True)
    assert tui.advice_for("success", "good", False).startswith("ready for reuse")
    assert "recycle" in tui.advice_for("success", "failing", False)


def test_final_screen_fits_an_80x25_console_with_two_disks():
    v = base_view()
    for dev, state in (("/dev/nvme0n1", tui.PASSED), ("/dev/sda", tui.FAILED)):
        v.update(dev, state=state, detail="x", certificate_id="c", advice=tui.advice_for(state, "good", False))
    v.finish("Powering off in 30 s")
    text = screen(v, width=80)
    lines = text.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) <= 25, len(lines)
    assert "▄▄▄▄▄" in text and tui.big_text("FAILED").splitlines()[0] in text
