"""agent.i18n: where the language comes from, and what a French reader expects to read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent import i18n
from agent.config import load_config
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_french_dates_are_in_words_in_the_configured_zone_and_name_it():
    instant = datetime(2026, 12, 1, 18, 26, 40, tzinfo=timezone.utc)
    assert i18n.when(instant, "fr", "Europe/Paris") == "1 décembre 2026 à 19:26 (heure de Paris)"
    # The JSON's UTC string gives the same words; summer time is applied by the zone.
    assert i18n.when("2026-07-14T08:05:00Z", "fr") == "14 juillet 2026 à 10:05 (heure de Paris)"
    assert i18n.when(instant, "fr", "Indian/Reunion") == "1 décembre 2026 à 22:26 (heure de La Réunion)"
    assert i18n.when(instant, "fr", "UTC") == "1 décembre 2026 à 18:26 (UTC)"
    assert i18n.when(instant, "en", "Europe/Paris") == "December 1, 2026 at 19:26 (Paris time)"
    assert i18n.when(None, "fr") == "—"


def test_naive_datetimes_from_the_database_are_utc():
    assert i18n.when(datetime(2026, 12, 1, 18, 26), "fr") == "1 décembre 2026 à 19:26 (heure de Paris)"


def test_sizes_use_the_readers_decimal_mark_and_byte_symbol_with_the_same_units_as_english():
    assert i18n.size(67_100_000, "fr") == "67,1 Mo"
    assert i18n.size(67_100_000, "en") == "67.1 MB"
    assert i18n.size(67_108_864, "fr", binary=True) == "64,0 Mio"
    assert i18n.size(67_108_864, "en", binary=True) == "64.0 MiB"
    assert i18n.size(1_000_204_886_016, "fr") == "1,0 To"
    assert i18n.size(512, "fr") == "512 o"
    assert i18n.size(None, "fr") == "—"


def test_nist_terms_keep_their_names_with_a_french_gloss():
    assert i18n.nist_category("clear", "fr") == "« Effacement (Clear) »"
    assert i18n.nist_category("purge", "fr") == "« Purge »"
    assert i18n.nist_category("destroy", "fr") == "« Destruction (Destroy) »"
    assert i18n.nist_category("purge", "en") == "Purge"
    assert i18n.nist_category(None, "fr", empty="aucune") == "aucune"
    assert i18n.outcome_label("failed", "fr") == "échec"
    assert i18n.outcome_label("interrupted", "fr") == "interrompu"
    assert i18n.phase_label("write", "fr") == "écriture"
    assert i18n.verification_label("sample", "passed", "fr") == ("par échantillons", "réussie")
    assert i18n.verification_label("full", "failed", "en") == ("full", "failed")


@pytest.mark.parametrize("env, cmdline, expected", [
    ({"LANG": "fr_FR.UTF-8"}, "", "fr"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "fr_BE.UTF-8"}, "", "fr"),
    ({"LANG": "fr_FR.UTF-8", "LC_ALL": "C"}, "", "en"),  # LC_ALL wins, and C is English
    ({"LANG": "fr_FR.UTF-8", "LC_ALL": ""}, "", "fr"),  # an empty variable is unset
    ({"LANG": "de_DE.UTF-8"}, "", "en"),  # no German catalog yet
    ({}, "", "en"),
    ({"LANG": "en_GB.UTF-8"}, "boot=live ardoise.language=fr quiet", "fr"),  # the boot menu wins
])
def test_the_agents_language_before_config(env, cmdline, expected):
    assert i18n.from_environment(env, cmdline) == expected


def test_accept_language_is_ranked_by_quality():
    assert i18n.parse_accept_language("en-US;q=0.5, fr-FR, de;q=0.9, *;q=0.1") == ["fr-FR", "de", "en-US"]
    assert i18n.negotiate(i18n.parse_accept_language("de-DE,fr;q=0.8,en;q=0.5")) == "fr"
    assert i18n.negotiate(i18n.parse_accept_language("fr;q=0, en")) == "en"
    assert i18n.negotiate(i18n.parse_accept_language("garbage;;q=x")) == "en"


def test_config_language_and_timezone_keys(tmp_path):
    cfg_file = tmp_path / "ardoise.yaml"
    cfg_file.write_text("language: fr\ntimezone: America/Guadeloupe\n")
    cfg = load_config(cfg_file, cmdline="")
    assert (cfg.language, cfg.timezone) == ("fr", "America/Guadeloupe")
    # The boot menu's kernel word overrides the stick's file, like every key.
    assert load_config(cfg_file, cmdline="ardoise.language=en").language == "en"
    assert load_config(tmp_path / "ardoise.yaml", cmdline="").timezone == "America/Guadeloupe"
    cfg_file.write_text("language: xx\ntimezone: Mars/Olympus\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file, cmdline="")
    assert "language must be one of en/fr (got 'xx')" in str(err.value)
    assert "timezone must be a time zone" in str(err.value)
    cfg_file.write_text("")
    assert load_config(cfg_file, cmdline="").timezone == "Europe/Paris"


def test_use_config_switches_the_agents_language_and_keeps_it_when_unset():
    try:
        i18n.use_language("en")

        class Cfg:
            language, timezone = "fr", "Europe/Paris"

        i18n.use_config(Cfg())
        assert i18n._("yes") == "oui"
        Cfg.language = None
        i18n.use_config(Cfg())
        assert i18n.current().code == "fr"
    finally:
        i18n.use_language("en")


def _ardoise(*args, env_extra: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    env.update(PYTHONPATH=str(REPO), ARDOISE_STATE_DIR=str(tmp_path / "state"), **env_extra)
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)


def test_french_locale_gives_a_french_one_line_error_for_a_bad_certificate(tmp_path):
    bad = tmp_path / "pas-un-certificat.json"
    bad.write_text("ceci n'est pas du JSON")
    _ardoise("key", "show", env_extra={}, tmp_path=tmp_path)  # a station key to verify against
    r = _ardoise("verify", str(bad), env_extra={"LANG": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert r.returncode == 6
    lines = r.stderr.strip().splitlines()
    assert lines == [f"{bad} : INVALIDE : le fichier n'est pas du JSON : ce n'est pas un certificat Ardoise"], r.stderr
    english = _ardoise("verify", str(bad), env_extra={"LANG": "en_US.UTF-8"}, tmp_path=tmp_path)
    assert f"{bad}: INVALID: not-json:" in english.stderr


def test_french_locale_translates_argparse_and_usage_errors(tmp_path):
    r = _ardoise("wipe", env_extra={"LANG": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("usage : ardoise wipe")
    assert "ardoise wipe : erreur : arguments obligatoires manquants : DEV" in r.stderr
    target = tmp_path / "disk.img"
    target.write_bytes(b"\0" * 4096)
    r = _ardoise("wipe", "--allow-file", str(target), env_extra={"LC_ALL": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"ardoise: l'effacement détruit tout le contenu de {target} : ajoutez --yes pour confirmer"


def test_errors_stay_english_in_records_and_json_and_are_translated_on_screen():
    from agent.errors import DeviceError

    exc = DeviceError(i18n.T_("{path} is not a block device", path="/dev/null"))
    try:
        i18n.use_language("fr")
        assert str(exc) == "/dev/null is not a block device"  # what a record or a log keeps
        assert exc.to_json()["message"] == "/dev/null is not a block device"
        assert exc.localized() == "/dev/null n'est pas un périphérique bloc"
        nested = i18n.T_("{path} is a device-mapper/RAID volume; name the disks it is built on ({members})",
                         path="/dev/dm-0", members=i18n.T_("its member disks"))
        assert i18n.localize(nested).endswith("indiquez les disques qui le composent (ses disques membres)")
        assert i18n.localize("plain text") == "plain text"
    finally:
        i18n.use_language("en")
    assert exc.localized() == "/dev/null is not a block device"


def test_french_error_for_a_device_that_is_not_a_disk(tmp_path):
    r = _ardoise("disks", "/dev/null", env_extra={"LANG": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert (r.returncode, r.stderr) == (3, "ardoise: /dev/null n'est pas un périphérique bloc\n")
    r = _ardoise("disks", "/dev/null", "--json", env_extra={"LANG": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert r.stderr == "ardoise: /dev/null n'est pas un périphérique bloc\n"


def test_the_image_asks_the_agent_for_its_language(tmp_path):
    # agent-session runs ``python3 -m agent.i18n`` to choose the console keymap.
    r = _ardoise_module("agent.i18n", env_extra={"LANG": "fr_FR.UTF-8"}, tmp_path=tmp_path)
    assert r.stdout == "fr\n"
    r = _ardoise_module("agent.i18n", env_extra={"LANG": "C"}, tmp_path=tmp_path)
    assert r.stdout == "en\n"


def _ardoise_module(module: str, *, env_extra: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    env.update(PYTHONPATH=str(REPO), ARDOISE_STATE_DIR=str(tmp_path / "state"), **env_extra)
    return subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60)


# English words of our help texts that the French ones must not contain (not the ones
# French shares: file, version, arguments, usage, audit, plan, mode, partition…), nor
# subcommand names (show). Command names,
# --verify choices and method names (wipe, verify, none, random, pattern…) are words of the
# command line, the same in every language, and are left out.
ENGLISH_HELP = set("""
the and of with for from only every each print send list write read default files certificate
certificates after when then else this these needs also more one all disk device devices whole which why
report signed check keep accept regular where lives named now output its state directory shelf stop inserted
running drives spooled collector delivery public signing first use creates zeros pass overwrite instead
sanitize sanitization target targets program number exit message help positional
""".split())


@pytest.mark.parametrize("command", ["", "disks", "audit", "plan", "wipe", "run", "verify", "upload", "key"])
def test_french_help_has_no_english_prose(command, monkeypatch, capsys):
    from agent.cli import main

    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    monkeypatch.setattr(i18n, "from_environment", lambda env=None, cmdline=None: "fr")  # ignore the host's cmdline
    try:
        with pytest.raises(SystemExit) as done:
            main([command, "--help"] if command else ["--help"])
    finally:
        i18n.use_language("en")
    assert done.value.code == 0
    out = capsys.readouterr().out
    words = {w for w in re.findall(r"[\w'-]+", out) if w.islower() and w in ENGLISH_HELP}
    assert not words, f"ardoise {command} --help: English left: {sorted(words)}\n{out}"
    assert out.startswith("usage : ardoise")
    # The same check finds English in the English help: it is not toothless.
    monkeypatch.setattr(i18n, "from_environment", lambda env=None, cmdline=None: "en")
    with pytest.raises(SystemExit):
        main([command, "--help"] if command else ["--help"])
    english = {w for w in re.findall(r"[\w'-]+", capsys.readouterr().out) if w in ENGLISH_HELP}
    assert len(english) >= 3, english


def test_speaking_renders_for_one_reader_without_changing_the_process_language():
    import threading

    seen = {}

    def reader(code):
        with i18n.speaking(i18n.Language.get(code)):
            seen[code] = [i18n._("yes")]
            barrier.wait(5)  # both readers are inside their block at once
            seen[code].append(i18n.current().size(67_100_000))

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=reader, args=(c,)) for c in ("fr", "en")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"fr": ["oui", "67,1 Mo"], "en": ["yes", "67.1 MB"]}
    assert i18n._("yes") == "yes" and i18n.current().code == "en"


def test_disk_reasons_are_french_on_screen_and_english_in_json(tmp_path):
    image = tmp_path / "disque.img"
    image.write_bytes(b"\0" * 65536)
    table = _ardoise("disks", "--allow-file", str(image), env_extra={"LANG": "fr_FR.UTF-8", "COLUMNS": "250"},
                     tmp_path=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "nommé explicitement ; aucune règle de protection ne s'applique" in table.stdout
    assert "POURQUOI" in table.stdout and "64,0 ko" not in table.stdout and "65,5 ko" in table.stdout
    as_json = _ardoise("disks", "--allow-file", str(image), "--json", env_extra={"LANG": "fr_FR.UTF-8"},
                       tmp_path=tmp_path)
    assert '"named explicitly; no protection rule applies"' in as_json.stdout


def test_a_protected_device_is_refused_in_french_with_its_reasons():
    from agent.errors import ProtectedDeviceError

    reasons = [i18n.T_("mounted: {mountpoints}", mountpoints="/"), i18n.T_("active swap")]
    exc = ProtectedDeviceError(i18n.T_("refusing to write {device}: protected ({reasons})", device="/dev/sda",
                                       reasons=i18n.join("; ", reasons)), device="/dev/sda", reasons=reasons)
    assert str(exc) == "refusing to write /dev/sda: protected (mounted: /; active swap)"
    assert exc.to_json()["reasons"] == ["mounted: /", "active swap"]
    try:
        i18n.use_language("fr")
        assert exc.localized() == ("écriture refusée sur /dev/sda : disque protégé "
                                   "(monté : /; zone d'échange (swap) active)")
    finally:
        i18n.use_language("en")


@pytest.mark.parametrize("command", ["", "org", "user", "lot", "lot close", "lot import", "user create"])
def test_french_collector_help_has_no_english_prose(command, monkeypatch, capsys):
    from server_stub.cli import main

    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    try:
        with pytest.raises(SystemExit) as done:
            main([*command.split(), "--help"])
    finally:
        i18n.use_language("en")
    assert done.value.code == 0
    out = capsys.readouterr().out
    # Subcommand names are words of the command line, the same in every language.
    words = {w for w in re.findall(r"[\w'-]+", out) if w.islower() and w in ENGLISH_HELP - {"list", "check"}}
    assert not words, f"ardoise-collector {command} --help: English left: {sorted(words)}\n{out}"
    assert out.startswith("usage : ardoise-collector")


def test_collector_messages_follow_lang_and_stay_english_without_it(tmp_path):
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'c.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}

    def run(lang: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server_stub.cli", *args, "--db", db], capture_output=True,
                              text=True, timeout=60, env={**env, "LANG": lang})

    r = run("fr_FR.UTF-8", "org", "create", "Atelier Nord", "--kind", "workshop")
    assert r.returncode == 0 and "structure Atelier Nord (workshop) créée" in r.stderr, r.stderr
    r = run("fr_FR.UTF-8", "lot", "create", "LOT-1", "--received", "demain")
    assert r.returncode == 2 and "--received : 'demain' n'est pas une date (AAAA-MM-JJ)" in r.stderr, r.stderr
    r = run("C.UTF-8", "lot", "create", "LOT-1", "--workshop", "Atelier Nord", "--received", "2026-11-20")
    assert r.returncode == 0 and "lot LOT-1 created, open" in r.stderr, r.stderr


def test_a_stored_sentence_made_from_a_template_is_shown_in_the_readers_language():
    from agent.certify.pdf import reason_text

    fr = i18n.Language.get("fr")
    with i18n.speaking(fr):
        assert reason_text("self-encrypting drive (Opal 2.15), no locked range: sanitized as usual") == (
            "disque auto-chiffrant (Opal 2.15), aucune plage verrouillée : effacé comme d'habitude")
        # The value inside is looked up too: a reason inside a reason.
        assert reason_text("hidden area not sanitized: every planned step failed: the disk is not sanitized") == (
            "zone cachée non effacée : toutes les étapes prévues ont échoué : le disque n'est pas effacé")
        # A template made mostly of placeholders ("{where}: {error}") would match any
        # sentence: an unknown one stays as stored.
        assert reason_text("firmware said: no") == "firmware said: no"
    assert i18n.from_template("virtio disk: the hypervisor exposes no sanitize commands, overwrite only",
                              i18n.Language.get("en")) is None


def test_record_codes_are_words_in_french_and_identifiers_in_english():
    assert i18n.method_label("overwrite:zero", "en") == "overwrite:zero"
    assert i18n.method_label("overwrite:zero", "fr") == "réécriture, une passe de zéros"
    assert i18n.method_label("overwrite:pattern:DEAD", "fr") == "réécriture du motif répété 0xdead"
    assert i18n.method_label("some-future-method", "fr") == "some-future-method"  # unknown: as signed
    assert i18n.method_short_label("overwrite:zero", "en") == "zero"
    assert i18n.method_short_label("overwrite:zero", "fr") == "zéros"
    assert (i18n.media_label("virtual", "fr"), i18n.transport_label("loop", "fr")) == ("disque virtuel", "périphérique loop")
    assert i18n.technique_label("Overwrite", "fr") == "réécriture"
    assert i18n.pattern_label("0x55", "fr") == "0x55"
