from __future__ import annotations

from pathlib import Path

import pytest

from agent import config as cfgmod
from agent.config import CollectorConfig, Config, load_config, parse_cmdline
from agent.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_env_state(monkeypatch, tmp_path):
    monkeypatch.delenv("ARDOISE_STATE_DIR", raising=False)


@pytest.fixture
def no_label(tmp_path) -> Path:
    """A /dev/disk/by-label stand-in without an ARDOISE entry."""
    d = tmp_path / "by-label"
    d.mkdir()
    return d


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ardoise.yaml"
    p.write_text(text)
    return p


def load(tmp_path, text, no_label, cmdline=""):
    return load_config(write(tmp_path, text), cmdline=cmdline, by_label=no_label)


def test_default_config_has_no_collector_and_a_local_state_dir():
    cfg = Config.default()
    assert cfg.collector is None
    assert cfg.state_dir == Path("/var/lib/ardoise")
    assert cfg.verify == "sample" and cfg.on_finish == "wait"
    assert cfg.hpa_reset is True and cfg.final_zero_pass is False and cfg.rewipe_certified is False


def test_default_state_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(tmp_path))
    assert Config.default().state_dir == tmp_path


def test_no_file_and_no_partition_gives_defaults(no_label):
    cfg = load_config(None, cmdline="", by_label=no_label)
    assert cfg.collector is None and cfg.source is None
    assert cfg.state_dir == Path("/var/lib/ardoise")


def test_full_config_is_loaded_with_types(tmp_path, no_label):
    cfg = load(
        tmp_path,
        """
collector:
  url: https://collector.example/
  token: one-time
  ca_bundle: ca.pem
operator: {name: Ana, title: Technician, organization: Emmaus, location: Lyon, contact: a@e.org}
lot: LOT-42
customer: Mairie de Lyon
classification: confidential
post_classification: unclassified
validator: {name: Bea, title: Supervisor}
policy:
  nvme: {overwrite: random}
verify: full
exclude_serials: [ABC, 12345]
targets: [/dev/loop3]
state_dir: state
on_finish: poweroff
shelf: true
thresholds: {failing_reallocated_sectors: 10}
hpa_reset: false
final_zero_pass: true
rewipe_certified: true
finish_display_seconds: 5
""",
        no_label,
    )
    assert cfg.collector == CollectorConfig(url="https://collector.example", token="one-time", ca_bundle=str(tmp_path / "ca.pem"))
    assert cfg.operator.name == "Ana" and cfg.operator.contact == "a@e.org"
    assert cfg.lot == "LOT-42"
    assert (cfg.customer, cfg.classification, cfg.post_classification) == ("Mairie de Lyon", "confidential", "unclassified")
    assert cfg.validator.name == "Bea" and cfg.validator.title == "Supervisor"
    assert cfg.policy == {"nvme": {"overwrite": "random"}}
    assert cfg.exclude_serials == ["ABC", "12345"]
    assert cfg.targets == ["/dev/loop3"]
    assert cfg.state_dir == tmp_path / "state"
    assert (cfg.on_finish, cfg.shelf, cfg.verify) == ("poweroff", True, "full")
    assert cfg.thresholds == {"failing_reallocated_sectors": 10}
    assert (cfg.hpa_reset, cfg.final_zero_pass, cfg.rewipe_certified, cfg.finish_display_seconds) == (False, True, True, 5)


def test_empty_file_gives_defaults(tmp_path, no_label):
    cfg = load(tmp_path, "", no_label)
    assert cfg.collector is None and cfg.source == str(tmp_path / "ardoise.yaml")


@pytest.mark.parametrize(
    "text, named",
    [
        ("colector: {url: http://x}\n", "unknown key colector"),
        ("collector: {url: http://x, tokn: a}\n", "unknown key collector.tokn"),
        ("operator: {nom: Ana}\n", "unknown key operator.nom"),
        ("validator: {name: [x]}\n", "validator.name must be a string"),
        ("shelf: maybe\n", "shelf must be true or false"),
        ("finish_display_seconds: soon\n", "finish_display_seconds must be an integer"),
        ("finish_display_seconds: -3\n", "finish_display_seconds must be an integer"),
        ("on_finish: halt\n", "on_finish must be one of poweroff/reboot/wait"),
        ("verify: none\n", "verify must be one of full/sample"),
        ("targets: /dev/sdb\n", "targets must be a list of strings"),
        ("exclude_serials: [[a]]\n", "exclude_serials must be a list of strings"),
        ("collector: http://x\n", "collector must be a mapping"),
        ("collector: {token: abc}\n", "collector.url is required"),
        ("collector: {url: ftp://x}\n", "collector.url must start with https://"),
        ("collector: {url: http://x, retries: many}\n", "collector.retries must be an integer"),
        ("policy: {floppy: {}}\n", "unknown key policy.floppy"),
        ("policy: {nvme: overwrite}\n", "policy.nvme must be a mapping"),
        ("thresholds: 3\n", "thresholds must be a mapping"),
        ("lot: [a]\n", "lot must be printable text"),
        ("- a\n- b\n", "must be a mapping of keys"),
    ],
)
def test_each_bad_key_is_named_in_one_line(tmp_path, no_label, text, named):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text, no_label)
    message = str(err.value)
    assert named in message
    assert "\n" not in message


def test_every_problem_is_reported_at_once(tmp_path, no_label):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "shelf: 3\nbogus: 1\noperator: {nom: x}\n", no_label, cmdline="ardoise.verify=all")
    msg = str(err.value)
    for part in ("shelf must be", "unknown key bogus", "unknown key operator.nom", "verify must be"):
        assert part in msg
    assert err.value.exit_code == 2


def test_invalid_yaml_names_the_line(tmp_path, no_label):
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load(tmp_path, "lot: a\n  bad: [\n", no_label)


def test_missing_file_is_a_config_error(tmp_path, no_label):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", cmdline="", by_label=no_label)


def test_cmdline_overrides_file_with_typed_values(tmp_path, no_label):
    cfg = load(
        tmp_path,
        "collector: {url: http://a, token: t}\nshelf: false\n",
        no_label,
        cmdline="quiet root=/dev/sda1 ardoise.collector.url=https://b:8443 ardoise.shelf=yes "
        "ardoise.finish_display_seconds=7 ardoise.exclude_serials=S1,S2 ardoise.lot='LOT 9' "
        "ardoise.policy.hdd.overwrite=two-pass ardoise.rewipe_certified",
    )
    assert cfg.collector.url == "https://b:8443" and cfg.collector.token == "t"
    assert cfg.shelf is True
    assert cfg.finish_display_seconds == 7
    assert cfg.exclude_serials == ["S1", "S2"]
    assert cfg.lot == "LOT 9"
    assert cfg.policy == {"hdd": {"overwrite": "two-pass"}}
    assert cfg.rewipe_certified is True


def test_cmdline_alone_can_configure_a_collector(no_label):
    cfg = load_config(None, cmdline="ardoise.collector.url=https://10.0.0.1:8443", by_label=no_label)
    assert cfg.collector.url == "https://10.0.0.1:8443"


@pytest.mark.parametrize("url", ["http://10.0.2.2:8080", "http://collector.example.org", "http://[fe80::1]/", "http://127.0.0.1.example.org"])
def test_http_collector_on_another_machine_is_refused_unless_allowed(tmp_path, no_label, url):
    with pytest.raises(ConfigError, match="in clear.*allow_insecure_http"):
        load(tmp_path, f"collector: {{url: '{url}'}}\n", no_label)
    cfg = load(tmp_path, f"collector: {{url: '{url}', allow_insecure_http: true}}\n", no_label)
    assert cfg.collector.url == url.rstrip("/") and cfg.collector.allow_insecure_http is True
    # The kernel command line can allow it too (a PXE entry on the workshop's own network).
    cfg = load_config(None, cmdline=f"ardoise.collector.url={url} ardoise.collector.allow_insecure_http=true", by_label=no_label)
    assert cfg.collector.allow_insecure_http is True


@pytest.mark.parametrize("url", ["https://collector.example.org", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.3.2.1"])
def test_https_and_loopback_http_collectors_need_no_permission(tmp_path, no_label, url):
    assert load(tmp_path, f"collector: {{url: '{url}'}}\n", no_label).collector.url == url


@pytest.mark.parametrize(
    "word, named",
    [
        ("ardoise.sheIf=1", "unknown key sheIf"),
        ("ardoise.collector.uri=http://x", "unknown key collector.uri"),
        ("ardoise.shelf=perhaps", "shelf must be true or false"),
        ("ardoise.finish_display_seconds=x", "finish_display_seconds must be an integer"),
        ("ardoise.on_finish=halt", "on_finish must be one of"),
        ("ardoise.lot", "lot needs a value"),
    ],
)
def test_bad_cmdline_keys_are_named(word, named):
    _, problems = parse_cmdline(f"quiet {word}")
    assert any(named in p for p in problems), problems


def test_words_without_ardoise_prefix_are_ignored():
    assert parse_cmdline("BOOT_IMAGE=/vmlinuz ardoisex=1 quiet") == ({}, [])


def test_state_dir_is_the_data_partition_when_mounted(tmp_path, monkeypatch):
    # A real mounted filesystem would need root; a fake mounts table keeps the logic honest.
    dev = tmp_path / "sdz1"
    dev.write_text("")
    label = tmp_path / "by-label"
    label.mkdir()
    (label / "ARDOISE").symlink_to(dev)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (mnt / "ardoise.yaml").write_text("lot: FROM-STICK\n")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/root / ext4 rw 0 0\n{dev} {mnt} vfat rw 0 0\n")
    # mountpoint_of only trusts sources under /dev/; point it at our stand-in device.
    real = cfgmod.mountpoint_of
    monkeypatch.setattr(
        cfgmod, "mountpoint_of", lambda device, mounts_file=None: mnt if Path(device).resolve() == dev else real(device)
    )
    cfg = load_config(None, cmdline="", by_label=label)
    assert cfg.lot == "FROM-STICK"
    assert cfg.source == str(mnt / "ardoise.yaml")
    assert cfg.data_partition == mnt
    assert cfg.state_dir == mnt / "ardoise"


def test_mountpoint_of_reads_escaped_mounts_table(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/null /media/my\\040stick vfat rw 0 0\n")
    assert cfgmod.mountpoint_of("/dev/null", str(mounts)) == Path("/media/my stick")
    assert cfgmod.mountpoint_of("/dev/zero", str(mounts)) is None


def test_environment_state_dir_wins_over_partition(tmp_path, monkeypatch, no_label):
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(tmp_path / "s"))
    cfg = load(tmp_path, "lot: x\n", no_label)
    assert cfg.state_dir == tmp_path / "s"


@pytest.mark.parametrize(
    "text, named",
    [
        ("policy: {hdd: {passes: 3}}\n", "policy.hdd.passes"),
        ("policy: {ssd: {overwrite: dod-7pass-imaginary}}\n", "policy.ssd.overwrite"),
        ("thresholds: {max_bogus_hours: 3}\n", "max_bogus_hours"),
    ],
)
def test_keys_of_other_stages_are_checked_at_load(tmp_path, no_label, text, named):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text, no_label)
    assert named in str(err.value) and "\n" not in str(err.value)


def uncomment_example(text: str) -> str:
    """Turn '#key: value' lines (not '# prose') into YAML."""
    import re

    key = re.compile(r"^#(\s*[a-z_]+:( |$))")
    return "\n".join(line[1:] if key.match(line) else line for line in text.splitlines())


def test_the_example_config_shipped_on_the_stick_is_valid(tmp_path, no_label):
    example = Path(__file__).resolve().parents[2] / "image" / "ardoise.yaml.example"
    cfg = load_config(example, cmdline="", by_label=no_label)
    assert cfg.collector is None and cfg.on_finish == "wait" and cfg.verify == "sample"
    # Uncommenting every optional section must still give a valid config.
    full = load(tmp_path, uncomment_example(example.read_text()), no_label)
    assert full.collector.url == "https://collector.example.org"
    assert full.collector.ca_bundle == str(tmp_path / "workshop-ca.pem")
    assert full.policy == {"hdd": {"overwrite": "random"}, "flash": {"verify": "full"}}
    assert full.lot == "LOT-2026-11" and full.thresholds == {"battery_repair_health_percent": 60}


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("lot: A\nshelf: true\nlot: B\n", "'lot'", 3),
        ("collector:\n  url: https://a.example\n  url: https://b.example\n", "'url'", 3),
        ("collector:\n  url: https://a.example\nverify: full\ncollector:\n  url: https://b.example\n", "'collector'", 4),
    ],
)
def test_a_key_given_twice_is_refused_naming_it(tmp_path, no_label, text, key, line):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text, no_label)
    assert f"key {key} is given twice" in str(err.value) and f"line {line}," in str(err.value)


def test_text_values_that_look_like_numbers_stay_the_text_typed(tmp_path, no_label):
    cfg = load(tmp_path, "lot: 12\ncustomer: 0012\nclassification: yes\nexclude_serials: [0123, 4.50]\n"
               "collector:\n  url: https://c.example\n  token: 123456\noperator:\n  name: 7\n", no_label)
    assert cfg.lot == "12" and cfg.customer == "0012" and cfg.classification == "yes"
    assert cfg.exclude_serials == ["0123", "4.50"]
    assert cfg.collector.token == "123456" and cfg.operator.name == "7"
    # Only text keys: numbers stay numbers where a number is meant, and null stays null.
    cfg = load(tmp_path, "lot: ~\nfinish_display_seconds: 10\ncollector:\n  url: https://c.example\n  retries: 3\n", no_label)
    assert cfg.lot is None and cfg.finish_display_seconds == 10 and cfg.collector.retries == 3


@pytest.mark.parametrize("lot", ["''", "'  '", "' LOT-1'", "\"LOT\\e[2J\"", "'" + "L" * 201 + "'"])
def test_a_lot_name_the_collector_would_refuse_is_refused_at_start(tmp_path, no_label, lot):
    with pytest.raises(ConfigError, match="lot must be printable text of 1 to 200 characters"):
        load(tmp_path, f"lot: {lot}\n", no_label)


def test_a_lot_name_with_a_slash_or_accents_is_fine(tmp_path, no_label):
    assert load(tmp_path, "lot: Dons/Lyon été 2026\n", no_label).lot == "Dons/Lyon été 2026"


def test_netboot_keys_from_the_kernel_line(tmp_path):
    from agent.config import load_config

    cfg = load_config(None, cmdline="boot=live ardoise-netboot=http://x ardoise.seat=12 ardoise.hold_until_delivered",
                      by_label=tmp_path)
    assert cfg.seat == "12" and cfg.hold_until_delivered is True
    assert load_config(None, cmdline="", by_label=tmp_path).hold_until_delivered is False


def test_local_macs_reads_nics_and_skips_loopback(tmp_path):
    from agent.deliver.client import local_macs

    for nic, mac in (("lo", "00:00:00:00:00:00"), ("eth0", "52:54:00:12:34:56"), ("wlan0", "AA:BB:CC:DD:EE:FF")):
        (tmp_path / nic).mkdir()
        (tmp_path / nic / "address").write_text(mac + "\n")
    assert local_macs(tmp_path) == ["52-54-00-12-34-56", "aa-bb-cc-dd-ee-ff"]
    assert local_macs(tmp_path / "missing") == []


def test_a_secure_boot_network_boot_gets_its_token_and_seat_from_the_session_file(tmp_path, no_label, monkeypatch):
    """Signed GRUB boots a static menu: the session leaves this boot's words in RAM."""
    import agent.config as config_module

    words = tmp_path / "netboot-words"
    words.write_text("ardoise.collector.token=tok-1 ardoise.seat=4\n")
    monkeypatch.setattr(config_module, "NETBOOT_WORDS", words)
    (tmp_path / "a.yaml").write_text("collector: {url: http://10.0.0.1:8080, allow_insecure_http: true}\n")
    cfg = load_config(tmp_path / "a.yaml", by_label=no_label)
    assert cfg.collector.token == "tok-1" and cfg.seat == "4"
