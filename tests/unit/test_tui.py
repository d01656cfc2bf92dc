from __future__ import annotations

import io
import re

from rich.console import Console

from agent import tui


def screen(view: tui.RunView, width: int = 160, height: int = 50, page: int = 0) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO(), color_system=None)
    console.print(tui.render(view, page=page))
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
                 "PROTECTED", "boot medium", "Collector: https://collector.example: connected", "1 on the stick, 0 delivered"):
        assert part in text, part


def test_mid_wipe_screen_shows_method_pass_speed_eta_and_state():
    v = base_view()
    v.update("/dev/sda", state=tui.WIPING, method="overwrite:dod-3pass", phase="write", pass_index=2, pass_count=3,
             bytes_done=200_000_000_000, bytes_total=500_107_862_016, throughput_bps=120e6, eta_s=3725)
    v.update("/dev/nvme0n1", state=tui.VERIFYING, method="nvme-sanitize-crypto", bytes_done=10, bytes_total=100, eta_s=30)
    text = screen(v)
    assert "dod-3pass" in text and "pass 2/3" in text
    assert "120 MB/s" in text and "40% · ETA 1 h 02 min" in text
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
    # The failed drive, the one to act on, comes first.
    assert text.index("/dev/sda") < text.index("/dev/nvme0n1")


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


# --------------------------------------------------------------------------- hostile strings

HOSTILE = ("[/]", "[/x]", "[bold red]FAKE PASSED[/bold red]", "[link=http://evil]x[/link]")


def hostile_view(finished: bool) -> tui.RunView:
    v = tui.RunView()
    v.set_machine(tui.MachineSummary(vendor="[/]", model="[/x]", serial=HOSTILE[2], cpu="[/]", ram="[b]", battery="[/x]",
                                     verdict="reuse [/]", report_id="5f0d7a4e-1111-4000-8000-000000000001"))
    for i, s in enumerate(HOSTILE):
        v.add_disk(tui.DiskRow(f"/dev/sd{'abcd'[i]}", model=s, serial=s, size_bytes=10**9, smart="[/]"))
        v.update(f"/dev/sd{'abcd'[i]}", state=tui.PASSED if finished else tui.WIPING, method=s, detail=s, advice=s,
                 bytes_done=1, bytes_total=2, certificate_id="c")
    v.set_delivery(collector="http://x [/]: [/x]")
    v.say("[/] message")
    if finished:
        v.finish("[/x] note")
    return v


def test_markup_in_hardware_and_network_strings_is_shown_as_typed():
    for finished in (False, True):
        for size in ((80, 25), (120, 40)):
            text = screen(hostile_view(finished), *size)  # MarkupError before: "[/]" closes nothing
            assert "[bold red]FAKE" in text, (finished, size)
            assert "[/x]" in text and "[/]" in text


def test_live_display_survives_a_drawing_error(monkeypatch):
    # The refresh thread gets a renderable even when drawing fails: the run goes on.
    monkeypatch.setattr(tui, "render", lambda v: 1 / 0)
    out = tui._safe_render(tui.RunView())
    assert "screen error" in out.plain


# --------------------------------------------------------------------------- fitting the screen

def many_disks(n: int, *, finished: bool) -> tui.RunView:
    v = base_view()
    v.rows.clear()
    states = (tui.PASSED, tui.FAILED, tui.INTERRUPTED)
    for i in range(n):
        dev = f"/dev/sd{chr(97 + i)}"
        v.add_disk(tui.DiskRow(dev, model="WDC WD10EZEX", serial=f"WD-{i:05d}", size_bytes=10**12, smart="good"))
        if finished:
            st = states[i % 3]
            outcome = {tui.PASSED: "success", tui.FAILED: "failed", tui.INTERRUPTED: "interrupted"}[st]
            v.update(dev, state=st, detail="stopped at 16.0 MB of 67.1 MB: no space left on device",
                     certificate_id=f"cert{i:04d}-x", advice=tui.advice_for(outcome, "good", False))
        else:
            v.update(dev, state=tui.WIPING, method="overwrite:zero", bytes_done=4 * 10**11, bytes_total=10**12,
                     throughput_bps=1.2e8, eta_s=180, pass_index=1, pass_count=1)
    if finished:
        v.finish("Done. Remove the drives marked FAILED; the stick holds every certificate. Press Enter to close this screen.")
    return v


SIZES = ((80, 25), (120, 40))


def test_every_disk_count_fits_and_keeps_the_footer_while_running():
    for n in (1, 3, 8, 20):
        for w, h in SIZES:
            pages = [screen(many_disks(n, finished=False), w, h, page=p) for p in range(3)]
            for text in pages:
                lines = text.rstrip("\n").splitlines()
                assert len(lines) <= h and all(len(l) <= w for l in lines), (n, w, h)
                assert "Certificates:" in lines[-1], (n, w, h)
                assert "40% · ETA 3 min" in text, (n, w, h)
            # Every disk is on some page.
            for i in range(n):
                assert any(f"/dev/sd{chr(97 + i)} " in t for t in pages), (n, w, h, i)


def test_final_verdicts_fit_and_every_drive_is_readable_with_its_advice():
    for n in (1, 3, 8, 20):
        for w, h in SIZES:
            pages = [screen(many_disks(n, finished=True), w, h, page=p) for p in range(4)]
            for text in pages:
                lines = text.rstrip("\n").splitlines()
                assert len(lines) <= h and all(len(l) <= w for l in lines), (n, w, h)
                assert "Certificates:" in lines[-1], (n, w, h)
                left = re.sub(r"\s+", " ", re.sub("[█▀▄]", "", text))  # the note wraps beside the QR code
                assert "Press Enter to close this screen." in left, (n, w, h)
                assert "▄▄▄▄▄" in text and "report 5f0d7a4e" in text, (n, w, h)  # the QR code stays
                # Whatever the layout, the advice of each verdict shown is whole.
                for advice in ("remove: retry elsewhere or destroy", "not sanitized: put it back to restart",
                               "ready for reuse"):
                    if advice.split(":")[0] in text:
                        assert advice in left, (n, w, h, advice)
            for i in range(n):
                assert any(f"/dev/sd{chr(97 + i)} WD-{i:05d}" in t or f"/dev/sd{chr(97 + i)}  WD-{i:05d}" in t
                           for t in pages), (n, w, h, i)


def test_interrupted_banner_is_not_wrapped_in_its_box():
    v = many_disks(2, finished=True)
    v.rows["/dev/sda"].state = tui.INTERRUPTED
    text = screen(v, 120, 40)
    assert tui.big_text("INTERRUPTED").splitlines()[0] in text


def test_progress_and_eta_are_one_labelled_phrase():
    from agent import humanize
    assert humanize.eta(180) == "ETA 3 min"
    assert humanize.eta(3725) == "ETA 1 h 02 min"
    assert humanize.eta(None) == "ETA unknown"
    assert humanize.percent(0.404) == "40%"


def test_terminal_control_characters_from_a_drive_never_reach_either_display():
    out = io.StringIO()
    v = tui.RunView()
    tui.LogDisplay(v, stream=out, every=0)
    v.set_machine(tui.MachineSummary(model="T480\x1b[2J", serial="PF1\u202eDESSAP"))
    v.add_disk(tui.DiskRow("/dev/sda", serial="W3T0\x1b[1A\x1b[2KPASSED", model="M\x07"))
    v.update("/dev/sda", state=tui.FAILED, detail="I/O error\x1b]0;x\x07", advice="remove")
    v.finish("done")
    for text in (out.getvalue(), screen(v, 80, 25)):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "W3T0\\x1b[1A\\x1b[2KPASSED" in out.getvalue()  # shown, defused


def test_the_verdict_badge_colours_only_the_verdict_word():
    v = many_disks(3, finished=True)
    console = Console(record=True, width=80, height=25, file=io.StringIO(), color_system="truecolor", force_terminal=True)
    console.print(tui.render(v, page=0))
    reversed_text = "".join(seg.text for seg in console._record_buffer if seg.style and seg.style.reverse)
    assert " FAILED " in reversed_text and " PASSED " in reversed_text
    assert "remove: retry elsewhere" not in reversed_text and "/dev/sd" not in reversed_text


def test_not_delivered_alert_heads_the_final_screen_in_red():
    v = base_view()
    v.finish(None)
    v.alert("NOT DELIVERED: 2 file(s) exist only in this machine's memory")
    console = Console(record=True, width=120, height=50, file=io.StringIO(), color_system="truecolor")
    console.print(tui.render(v, page=0))
    text = console.export_text(clear=False)
    assert "NOT DELIVERED: 2 file(s)" in text and text.index("NOT DELIVERED") < text.index("S4DXNX0M")
    styled = console.export_text(styles=True)
    line = next(ln for ln in styled.splitlines() if "NOT DELIVERED" in ln)
    assert "\x1b[" in line and ("31" in line or "38;2;128;0;0" in line or "41" in line), line
    v.alert(None)
    assert "NOT DELIVERED" not in screen(v)
    lines = io.StringIO()
    log = tui.LogDisplay(tui.RunView(), stream=lines)
    log_view = base_view()
    log_view.listen(log._on_event)
    log_view.alert("NOT DELIVERED: 1 file(s)")
    log_view.finish(None)
    log_view.finish("Powering off in 1 s")
    said = lines.getvalue()
    assert "NOT DELIVERED: 1 file(s)" in said and said.count("RESULT /dev/nvme0n1") == 1
