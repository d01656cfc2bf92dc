"""The media-aware policy: for each disk, an ordered plan of ways to sanitize it.

``make_plan`` reads what the drive actually offers (``probe``: nvme id-ctrl, hdparm -I,
sg_opcodes, hdparm -N / --dco-identify, sysfs discard limits) and turns it into a
``SanitizePlan`` with the default table of DESIGN.md "Sanitization policy", which the
config may override per media type (``policy:`` in ardoise.yaml). Every candidate that
is not offered is kept in ``plan.skipped`` with the reason, so the record can say e.g.
"NVMe sanitize unsupported (sanicap 0)". The reasoning for each NIST category is in
docs/policy.md.

Override keys, per media type (hdd, ssd, nvme, flash, virtual, unknown):
  steps: [method, ...]   allowed firmware methods in preference order ("overwrite" for
                         the overwrite fallback; leaving it out means no fallback)
  overwrite: <method>    the overwrite method (zero, random, two-pass, dod-3pass, ...)
  verify: full|sample|none
  unfreeze: true|false   suspend-to-RAM to unfreeze a frozen ATA drive (default true)
  unfreeze_seconds: N    how long the suspend lasts (default 5)
  secure_discard: true|false   blkdiscard --secure after the overwrite (flash, default true)
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import commands
from agent.commands import CommandLog
from agent.errors import ArdoiseError, ConfigError
from agent.records import Category, Disk, HiddenAreas, Media, PlanStep, SanitizePlan, Transport
from agent.sanitize import ata, discard, emmc, hpa, nvme, scsi, sed
from agent import i18n
from agent.i18n import T_

OVERWRITE = "overwrite"

# Firmware methods, in the default order of preference (most thorough first).
NVME_METHODS = ("nvme-sanitize-crypto", "nvme-sanitize-block", "nvme-format-crypto", "nvme-format-user-data")
ATA_METHODS = (
    "ata-sanitize-crypto",
    "ata-sanitize-block",
    "ata-sanitize-overwrite",
    "ata-security-erase-enhanced",
    "ata-security-erase",
)
SCSI_METHODS = ("scsi-sanitize-crypto", "scsi-sanitize-block", "scsi-sanitize-overwrite")
FIRMWARE_METHODS = (*NVME_METHODS, *ATA_METHODS, *SCSI_METHODS)

_DEFAULT_OVERWRITE = {Media.FLASH: "two-pass"}
_OVERRIDE_KEYS = {"steps", "overwrite", "verify", "unfreeze", "unfreeze_seconds", "secure_discard"}

CRYPTO = "Cryptographic Erase"
BLOCK = "Block Erase"
OVERWRITE_TECHNIQUE = "Overwrite"


@dataclass
class Policy:
    """The effective policy for one media type: defaults, then the config's overrides."""

    steps: list[str] | None = None  # None = every method, default order
    overwrite: str = "zero"
    verify: str | None = None
    unfreeze: bool = True
    unfreeze_seconds: int = 5
    secure_discard: bool = True


def policy_for(media: Media, config: Any = None) -> Policy:
    pol = Policy(overwrite=_DEFAULT_OVERWRITE.get(media, "zero"))
    if media == Media.FLASH:
        pol.verify = "full"  # DESIGN.md: flash gets full verification
    overrides = (getattr(config, "policy", None) or {}).get(media.value) or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"policy.{media.value} must be a mapping")
    for key, value in overrides.items():
        if key not in _OVERRIDE_KEYS:
            raise ConfigError(
                f"unknown key policy.{media.value}.{key} (known: {', '.join(sorted(_OVERRIDE_KEYS))})"
            )
    if "steps" in overrides:
        steps = overrides["steps"]
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ConfigError(f"policy.{media.value}.steps must be a list of method names")
        unknown = [s for s in steps if s not in (*FIRMWARE_METHODS, OVERWRITE)]
        if unknown:
            raise ConfigError(
                f"policy.{media.value}.steps: unknown method {unknown[0]!r} "
                f"(known: {', '.join((*FIRMWARE_METHODS, OVERWRITE))})"
            )
        pol.steps = list(steps)
    if "overwrite" in overrides:
        from agent.sanitize import methods

        try:
            methods.get_method(str(overrides["overwrite"]))
        except Exception as exc:  # noqa: BLE001 - turned into the config's one-line error
            raise ConfigError(f"policy.{media.value}.overwrite: {exc}") from None
        pol.overwrite = str(overrides["overwrite"])
    if "verify" in overrides:
        if overrides["verify"] not in ("full", "sample", "none"):
            raise ConfigError(f"policy.{media.value}.verify must be full, sample or none")
        pol.verify = overrides["verify"]
    for key in ("unfreeze", "secure_discard"):
        if key in overrides:
            if not isinstance(overrides[key], bool):
                raise ConfigError(f"policy.{media.value}.{key} must be true or false")
            setattr(pol, key, overrides[key])
    if "unfreeze_seconds" in overrides:
        value = overrides["unfreeze_seconds"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 600:
            raise ConfigError(f"policy.{media.value}.unfreeze_seconds must be an integer from 1 to 600")
        pol.unfreeze_seconds = value
    return pol


# --------------------------------------------------------------------------- probing


@dataclass
class Capabilities:
    """What was read from the drive, and what could not be read (with why)."""

    nvme: nvme.NvmeCaps | None = None
    nvme_log: nvme.SanitizeLog | None = None
    ata: ata.AtaInfo | None = None
    scsi: scsi.ScsiSanitizeCaps | None = None
    hidden: HiddenAreas | None = None
    discard: discard.DiscardCaps | None = None
    locked_password: str | None = None  # our journaled password, when the drive has one set
    sed: sed.SedInfo | None = None  # TCG state: sedutil-cli --query, else nvme Level 0 / ATA IDENTIFY word 48
    # A PSID revert needs sedutil-cli (nothing else on the image sends a TCG Revert).
    psid_revert_possible: bool = True
    emmc: emmc.ExtCsd | None = None  # an eMMC user area's EXT_CSD, when mmc-utils is present
    problems: list[str] = field(default_factory=list)
    commands: CommandLog = field(default_factory=CommandLog)


def firmware_reachable(disk: Disk) -> str | None:
    """None when firmware commands can reach the drive, else why not."""
    if disk.transport in (Transport.LOOP, Transport.RAM, Transport.FILE):
        return T_("{transport} device: no drive firmware behind it, overwrite only", transport=disk.transport.value)
    if disk.raid_volume:
        return T_("a volume of the RAID controller {controller}: firmware sanitize commands would reach the "
                  "controller, not the drives behind it; the volume is overwritten (Clear of what it addresses)",
                  controller=disk.raid_volume)
    if disk.transport == Transport.VIRTIO:
        return T_("virtio disk: the hypervisor exposes no sanitize commands, overwrite only")
    if disk.transport == Transport.USB:
        bridge = disk.usb_bridge
        name = (bridge.name if bridge else None) or "unknown bridge"
        ids = f" {bridge.vendor_id}:{bridge.product_id}" if bridge and bridge.vendor_id else ""
        return T_("behind a USB bridge ({bridge}): bridges block or mistranslate firmware sanitize commands, "
                  "overwrite only", bridge=f"{name}{ids}")
    if disk.media == Media.FLASH:
        return T_("flash card, stick or eMMC: no purge command reachable, Clear at best")
    return None


def probe(disk: Disk, *, state_dir=None, hidden_only: bool = False) -> Capabilities:
    """Read the drive's sanitize capabilities through the command gateway."""
    caps = Capabilities()
    log = caps.commands
    if disk.transport == Transport.MMC or disk.media == Media.FLASH:
        caps.discard = discard.capability(disk)
    if disk.transport == Transport.MMC and not hidden_only and not disk.force_ro and _is_emmc(disk):
        caps.emmc = _read_extcsd(disk, caps)
    if firmware_reachable(disk) is not None:
        return caps
    if not hidden_only:
        caps.psid_revert_possible = commands.which("sedutil-cli") is not None
        caps.sed = _read_sed(disk, caps)
        if caps.sed is not None and caps.sed.locked:
            return caps  # a locked range: nothing else will be sent to this drive
    if disk.transport == Transport.NVME:
        if hidden_only:
            return caps
        try:
            caps.nvme = nvme.read_caps(nvme.controller_of(disk.path), log)
        except ArdoiseError as exc:
            caps.problems.append(T_("NVMe capabilities not readable: {error}", error=str(exc)))
            return caps
        if caps.sed is None and sed.nvme_security_supported(caps.nvme.oacs):
            caps.sed = _read_nvme_level0(caps.nvme.controller, caps)
            if caps.sed is not None and caps.sed.locked:
                return caps  # a locked range: nothing else will be sent to this drive
        if caps.nvme.sanicap & 0x7:
            try:
                caps.nvme_log = nvme.read_sanitize_log(caps.nvme.controller, log)
            except ArdoiseError as exc:
                caps.problems.append(T_("NVMe sanitize log not readable (no time estimate): {error}", error=str(exc)))
    elif disk.transport == Transport.SATA or (disk.transport in (Transport.SCSI, Transport.UNKNOWN) and disk.media in (Media.HDD, Media.SSD)):
        try:
            caps.ata = ata.read_identify(disk.path, log)
        except ArdoiseError as exc:
            if disk.transport != Transport.SATA and not hidden_only:
                # A SCSI disk of unknown kind that does not speak ATA (a SAS drive that
                # discover could not place): ask SCSI instead.
                try:
                    caps.scsi = scsi.read_caps(disk.path, log)
                    return caps
                except ArdoiseError:
                    pass
            caps.problems.append(T_("ATA identify not readable: {error}", error=str(exc)))
            return caps
        if caps.sed is None and not hidden_only:
            caps.sed = _read_ata_tcg(disk, caps)
        if caps.ata.hpa_feature or caps.ata.dco_feature:
            caps.hidden = hpa.detect(disk.path, log)
        if state_dir is not None and caps.ata.security.enabled:
            caps.locked_password = ata.PasswordJournal(state_dir).load(disk.identity)
    elif disk.transport == Transport.SAS and not hidden_only:
        try:
            caps.scsi = scsi.read_caps(disk.path, log)
        except ArdoiseError as exc:
            caps.problems.append(T_("SCSI opcodes not readable: {error}", error=str(exc)))
    return caps


def _is_emmc(disk: Disk) -> bool:
    """The kernel's card type: "MMC" for an eMMC (or an MMC card), "SD" for an SD card."""
    try:
        return Path(f"/sys/block/{disk.name}/device/type").read_text().strip() == "MMC"
    except OSError:
        return False


def _read_extcsd(disk: Disk, caps: Capabilities) -> emmc.ExtCsd | None:
    if commands.which("mmc") is None:
        caps.problems.append(T_("mmc-utils is not installed: eMMC Sanitize cannot be offered"))
        return None
    try:
        result = caps.commands.add(commands.run(["mmc", "extcsd", "read", disk.path], timeout=60, check=True))
    except ArdoiseError as exc:
        caps.problems.append(T_("eMMC EXT_CSD not readable: {error}", error=str(exc)))
        return None
    return emmc.parse_extcsd(result.stdout)


def _read_sed(disk: Disk, caps: Capabilities) -> sed.SedInfo | None:
    """The drive's TCG state from ``sedutil-cli --query`` where the image has sedutil (it
    is not packaged in Debian 12); None without it."""
    if disk.transport not in (Transport.NVME, Transport.SATA, Transport.SAS, Transport.SCSI):
        return None
    if commands.which("sedutil-cli") is None:
        return None
    try:
        result = commands.run(["sedutil-cli", "--query", disk.path], timeout=60)
    except ArdoiseError as exc:
        caps.problems.append(T_("TCG state not readable: {error}", error=str(exc)))
        return None
    caps.commands.add(result)
    return sed.parse_query(result.stdout)


def _read_nvme_level0(controller: str, caps: Capabilities) -> sed.SedInfo | None:
    """Without sedutil, an NVMe controller that has Security Send/Receive is asked with
    nvme-cli itself: which security protocols it supports, then, when TCG (01h) is one,
    its Level 0 Discovery (the SSC and the Locking feature, as sedutil --query reads them)."""
    base = ["nvme", "security-recv", controller]
    try:
        listed = caps.commands.add(commands.run(
            [*base, "--secp=0", "--spsp=0", "--nssf=0", "--size=16", "--al=16"], timeout=30, check=True))
        if sed.TCG_PROTOCOL not in sed.security_protocols(sed.parse_nvme_hexdump(listed.stdout)):
            return None
        level0 = caps.commands.add(commands.run(
            [*base, "--secp=1", "--spsp=1", "--nssf=0", "--size=2048", "--al=2048"], timeout=30, check=True))
    except ArdoiseError as exc:
        caps.problems.append(T_(
            "the controller supports Security Send/Receive (OACS bit 0): it may be a self-encrypting drive; "
            "its TCG state could not be read: {error}", error=str(exc)))
        return None
    info = sed.parse_level0(sed.parse_nvme_hexdump(level0.stdout))
    if info is None:
        caps.problems.append(T_("the controller lists the TCG security protocol but its Level 0 Discovery names "
                                "no SSC: it may be a self-encrypting drive whose locking state was not read"))
    return info


def _read_ata_tcg(disk: Disk, caps: Capabilities) -> sed.SedInfo | None:
    """Without sedutil, an ATA drive's TCG support from its raw IDENTIFY words (word 48):
    it tells that the drive is self-encrypting, not its SSC nor its locking state."""
    try:
        words = ata.read_identify_words(disk.path, caps.commands)
    except ArdoiseError as exc:
        caps.problems.append(T_("IDENTIFY words not readable, TCG support unknown: {error}", error=str(exc)))
        return None
    return sed.from_ata_identify(words)


# --------------------------------------------------------------------------- planning


def _overwrite_step(method: str, reason: str, *, secure_discard: bool = False) -> PlanStep:
    options: dict[str, Any] = {"method": method}
    if secure_discard:
        options["secure_discard"] = True
    return PlanStep(
        method=f"overwrite:{method}",
        category=Category.CLEAR,
        technique=OVERWRITE_TECHNIQUE,
        reason=reason,
        tool="ardoise",
        options=options,
    )


def _media_of(disk: Disk, caps: Capabilities) -> Media:
    """SATA disks whose kind discover could not tell: the rotation rate from IDENTIFY decides."""
    if disk.media in (Media.UNKNOWN,) and caps.ata is not None and caps.ata.rotational is not None:
        return Media.HDD if caps.ata.rotational else Media.SSD
    return disk.media


def plan_from_capabilities(
    disk: Disk, caps: Capabilities, *, config: Any = None, verify: str | None = None
) -> SanitizePlan:
    """The pure part of the policy: capabilities in, ordered plan out."""
    media = _media_of(disk, caps)
    pol = policy_for(media, config)
    default_verify = getattr(config, "verify", None) or "sample"
    plan = SanitizePlan(disk=disk, steps=[], verify=verify or pol.verify or default_verify)
    plan.hidden_areas = caps.hidden
    plan.notes.extend(caps.problems)
    candidates: list[PlanStep] = []
    skipped: list[PlanStep] = []

    _plan_emmc(disk, plan)
    sed_decision = sed.decide(caps.sed, disk.serial, getattr(config, "psid", None),
                              can_revert=caps.psid_revert_possible)
    if caps.sed is not None and caps.sed.is_sed:
        plan.notes.append(sed_decision.reason)
    if sed_decision.action == "fail":
        # A locked range can be neither overwritten nor verified: FAILED before any write.
        plan.refused = sed_decision.reason
        return plan
    if sed_decision.action == "psid-revert":
        # The PSID itself stays in the config: the plan (printed by `ardoise plan`, kept in
        # the journal) names only the serial it is filed under.
        plan.steps.append(PlanStep(
            "tcg-psid-revert", Category.PURGE, "Cryptographic Erase",
            f"{sed_decision.reason}: the drive regenerates its media encryption keys (TCG Revert of the "
            "Admin SP with the PSID); verified by Level 0 Discovery and a sampled read-back",
            "sedutil-cli", {"psid_for": disk.serial},
        ))
        plan.steps.append(_overwrite_step(
            pol.overwrite, "fallback if the revert is not verified: overwrite of the unlocked drive (NIST Clear)"))
        return plan

    blocked = firmware_reachable(disk)
    if blocked:
        plan.notes.append(blocked)
    if disk.usb_bridge is not None:
        b = disk.usb_bridge
        plan.notes.append(T_("USB bridge: {name} (vendor {vendor}, product {product})", name=b.name or "?",
                             vendor=b.vendor_id or "?", product=b.product_id or "?"))

    if caps.nvme is not None:
        _plan_nvme(caps, candidates, skipped)
    if caps.ata is not None:
        _plan_ata(disk, media, caps, pol, plan, candidates, skipped)
    if caps.scsi is not None:
        _plan_scsi(disk, caps, candidates, skipped)

    if caps.hidden is not None:
        _plan_hidden(caps, config, pol, plan)
    if caps.emmc is not None:
        _plan_emmc_user_area(caps, candidates, skipped)

    # Config overrides: keep only the allowed firmware methods, in the configured order.
    allow_overwrite = True
    if pol.steps is not None:
        order = {name: i for i, name in enumerate(pol.steps)}
        for step in candidates:
            if step.method not in order:
                skipped.append(_skip(step, f"left out by policy.{media.value}.steps in the config"))
        candidates = sorted((s for s in candidates if s.method in order), key=lambda s: order[s.method])
        allow_overwrite = OVERWRITE in order

    plan.steps.extend(candidates)
    if allow_overwrite:
        if candidates:
            reason = T_("fallback if every firmware method fails: overwrite reaches only the addressable blocks (NIST Clear)")
        elif blocked:
            reason = blocked
        else:
            reason = T_("no firmware sanitize command offered by this drive: overwrite (NIST Clear)")
        secure = bool(caps.discard and caps.discard.secure_candidate and pol.secure_discard)
        plan.steps.append(_overwrite_step(pol.overwrite, reason, secure_discard=secure))
        if caps.discard is not None:
            if secure:
                plan.notes.append(T_("secure discard after the overwrite: {reason}", reason=caps.discard.reason))
            elif pol.secure_discard:
                plan.notes.append(T_("no secure discard: {reason}", reason=caps.discard.reason))
            else:
                plan.notes.append(T_("no secure discard: disabled in the config"))
    if media == Media.FLASH:
        plan.notes.append(T_("flash media: the certificate says Clear; Purge is not available for this device"))
    plan.skipped.extend(skipped)
    return plan


def _plan_emmc_user_area(caps: Capabilities, out: list[PlanStep], skipped: list[PlanStep]) -> None:
    """Discard of the whole user area, then eMMC Sanitize: Clear (docs/policy.md, eMMC)."""
    assert caps.emmc is not None
    step = PlanStep(
        "mmc-discard-sanitize", Category.CLEAR, "eMMC Sanitize",
        "eMMC: discard of the whole user area, then eMMC Sanitize (EXT_CSD SEC_FEATURE_SUPPORT bit 6) to purge "
        "the unmapped blocks; verified by canaries and read-back; NIST Clear (no Purge for embedded flash in "
        "SP 800-88 Rev. 1)", "mmc",
    )
    if not caps.emmc.sanitize_supported:
        skipped.append(_skip(step, "EXT_CSD SEC_FEATURE_SUPPORT bit 6 is clear: this eMMC has no Sanitize"))
    elif caps.discard is None or not caps.discard.discard:
        skipped.append(_skip(step, "the user area accepts no discard"))
    else:
        out.append(step)


def _plan_emmc(disk: Disk, plan: SanitizePlan, dev_root: str = "/dev") -> None:
    """An eMMC boot partition is made writable first; a user area's RPMB is named as not
    addressable (authenticated writes with a key the host does not have)."""
    if disk.force_ro:
        plan.prepare.append(PlanStep(
            "mmc-boot-writable", None,  # type: ignore[arg-type]
            "", f"eMMC boot partition held read-only by force_ro: cleared so that {disk.name} is sanitized too",
            None, {"force_ro": f"/sys/block/{disk.name}/force_ro"},
        ))
    elif disk.transport == Transport.MMC and os.path.exists(f"{dev_root}/{disk.name}rpmb"):
        plan.notes.append(T_("{name}rpmb (RPMB): not addressable by the host (authenticated writes only), "
                             "not sanitized", name=disk.name))


def _skip(step: PlanStep, reason: str) -> PlanStep:
    return PlanStep(step.method, step.category, step.technique, reason, step.tool, dict(step.options))


def _plan_nvme(caps: Capabilities, out: list[PlanStep], skipped: list[PlanStep]) -> None:
    c = caps.nvme
    assert c is not None
    for action, supported, method, technique in (
        ("crypto", c.sanitize_crypto, "nvme-sanitize-crypto", CRYPTO),
        ("block", c.sanitize_block, "nvme-sanitize-block", BLOCK),
    ):
        step = PlanStep(
            method=method,
            category=Category.PURGE,
            technique=technique,
            reason="",
            tool="nvme",
            options={"controller": c.controller, "action": action},
        )
        if supported:
            estimate = caps.nvme_log.estimates.get(action) if caps.nvme_log else None
            step.options["estimate_s"] = estimate
            step.reason = (
                f"SANICAP bit {0 if action == 'crypto' else 1} set ({c.describe()}): NVMe Sanitize "
                f"{technique.lower()} reaches every block, spare area included (NIST Purge)"
            )
            out.append(step)
        else:
            step.reason = T_("unsupported: SANICAP {sanicap} does not offer {action} sanitize", sanicap=f"0x{c.sanicap:x}",
                             action=action)
            skipped.append(step)
    fmt_crypto = PlanStep(
        "nvme-format-crypto", Category.PURGE, CRYPTO, "", "nvme", {"controller": c.controller, "ses": 2}
    )
    if c.format_crypto:
        fmt_crypto.reason = T_("FNA bit 2 set ({caps}): Format NVM SES=2 destroys the media encryption key (NIST Purge)",
                               caps=c.describe())
        out.append(fmt_crypto)
    else:
        why = T_("Format NVM unsupported (OACS bit 1 clear)") if not c.format_supported \
            else T_("FNA bit 2 clear: no crypto erase by format")
        fmt_crypto.reason = T_("unsupported: {why} ({caps})", why=why, caps=c.describe())
        skipped.append(fmt_crypto)
    fmt_user = PlanStep(
        "nvme-format-user-data", Category.PURGE, BLOCK, "", "nvme", {"controller": c.controller, "ses": 1}
    )
    if c.format_supported:
        fmt_user.reason = (
            f"OACS bit 1 set ({c.describe()}): Format NVM SES=1 (user data erase) of every namespace "
            "(NIST Purge once canaries and read-back confirm it)"
        )
        out.append(fmt_user)
    else:
        fmt_user.reason = T_("unsupported: Format NVM not offered (OACS bit 1 clear, {caps})", caps=c.describe())
        skipped.append(fmt_user)


def _plan_ata(
    disk: Disk,
    media: Media,
    caps: Capabilities,
    pol: Policy,
    plan: SanitizePlan,
    out: list[PlanStep],
    skipped: list[PlanStep],
) -> None:
    info = caps.ata
    assert info is not None
    flash = media != Media.HDD
    san = info.sanitize
    for action, supported, technique in (
        ("crypto", san.crypto, CRYPTO),
        ("block", san.block, BLOCK),
        ("overwrite", san.overwrite, OVERWRITE_TECHNIQUE),
    ):
        step = PlanStep(f"ata-sanitize-{action}", Category.PURGE, technique, "", "hdparm", {"action": action})
        if action == "overwrite" and flash:
            step.reason = T_("not used on flash: SANITIZE OVERWRITE wears the cells and cannot reach spare blocks better "
                             "than block erase")
            if supported:
                skipped.append(step)
                continue
        if supported and san.supported:
            step.reason = f"ATA SANITIZE {action} offered (hdparm -I: {'CRYPTO_SCRAMBLE_EXT' if action == 'crypto' else action.upper() + '_EXT'}): NIST Purge"
            out.append(step)
        else:
            step.reason = T_("unsupported: the drive does not list the SANITIZE {command} command", command=action.upper())
            skipped.append(step)

    sec = info.security
    enhanced = PlanStep(
        "ata-security-erase-enhanced",
        Category.CLEAR if flash else Category.PURGE,
        OVERWRITE_TECHNIQUE if not flash else BLOCK,
        "",
        "hdparm",
        {"enhanced": True, "timeout_s": ata.erase_timeout(info, True)},
    )
    normal = PlanStep(
        "ata-security-erase",
        Category.CLEAR,
        OVERWRITE_TECHNIQUE if not flash else BLOCK,
        "",
        "hdparm",
        {"enhanced": False, "timeout_s": ata.erase_timeout(info, False)},
    )
    security_blocker = None
    if not sec.supported:
        security_blocker = "unsupported: no ATA Security feature set"
    elif sec.count_expired:
        security_blocker = "refused by the drive until power-cycled: security count expired"
    elif sec.enabled and caps.locked_password is None:
        security_blocker = (
            "security is enabled with a password Ardoise did not set"
            + (" and the drive is locked: it cannot be written here" if sec.locked else "")
        )
    elif sec.frozen and not pol.unfreeze:
        security_blocker = "drive is frozen and unfreezing is disabled in the config (policy.*.unfreeze)"

    est = (lambda m: f", drive estimate {m} min" if m else "")
    if security_blocker:
        for step in (enhanced, normal):
            step.reason = security_blocker
            skipped.append(step)
    else:
        if sec.enhanced_supported:
            enhanced.reason = (
                "ENHANCED SECURITY ERASE UNIT"
                + (
                    ": on flash NIST counts it as Clear (vendor-defined, spare blocks not guaranteed)"
                    if flash
                    else ": rewrites reallocated sectors too (NIST Purge for ATA hard drives)"
                )
                + est(sec.enhanced_erase_minutes)
            )
            out.append(enhanced)
        else:
            enhanced.reason = T_("unsupported: the drive reports no enhanced erase")
            skipped.append(enhanced)
        normal.reason = (
            "SECURITY ERASE UNIT (normal): only LBA 0 to native max, not reallocated sectors (NIST Clear)"
            + est(sec.erase_minutes)
        )
        out.append(normal)

    needs_unfreeze = sec.frozen and pol.unfreeze and not security_blocker
    hidden_needs = caps.hidden is not None and hpa.has_hidden_area(caps.hidden) and sec.frozen and pol.unfreeze
    recover = sec.enabled and caps.locked_password is not None
    # Order matters: a frozen drive refuses UNLOCK, DISABLE PASSWORD and SET MAX alike, so
    # the unfreeze comes first; hpa-reset is appended after these by _plan_hidden.
    if needs_unfreeze or hidden_needs or (recover and sec.frozen):
        plan.prepare.append(
            PlanStep(
                "unfreeze",
                None,  # type: ignore[arg-type] - a preparation achieves no category
                "",
                f"drive is frozen (the BIOS freeze lock blocks security commands and SET MAX): "
                f"suspend-to-RAM for {pol.unfreeze_seconds} s, then read the state again",
                "rtcwake",
                {"seconds": pol.unfreeze_seconds, "enabled": pol.unfreeze},
            )
        )
    if recover:
        plan.prepare.append(
            PlanStep(
                "ata-security-recover",
                None,  # type: ignore[arg-type]
                "",
                "security is enabled with the password journaled by an interrupted Ardoise run: "
                + ("unlock, then disable it" if sec.locked else "disable it"),
                "hdparm",
                {"locked": sec.locked},
            )
        )
    elif sec.locked:
        plan.notes.append(T_("drive is locked with an unknown password: nothing can be written until it is unlocked"))


def _plan_scsi(disk: Disk, caps: Capabilities, out: list[PlanStep], skipped: list[PlanStep]) -> None:
    c = caps.scsi
    assert c is not None
    flash = disk.media != Media.HDD
    for action, technique in (("crypto", CRYPTO), ("block", BLOCK), ("overwrite", OVERWRITE_TECHNIQUE)):
        step = PlanStep(f"scsi-sanitize-{action}", Category.PURGE, technique, "", "sg_sanitize", {"action": action})
        if not c.reported:
            step.reason = T_("unknown: the drive does not answer REPORT SUPPORTED OPERATION CODES")
            skipped.append(step)
        elif not c.supports(action):
            step.reason = T_("unsupported: sg_opcodes lists no SANITIZE {action} service action", action=action)
            skipped.append(step)
        elif action == "overwrite" and flash:
            step.reason = T_("not used on flash: overwrite sanitize wears the cells for no gain over block erase")
            skipped.append(step)
        elif action != "overwrite" and not flash and action == "block":
            step.reason = T_("block erase is a flash operation; not used on a hard drive")
            skipped.append(step)
        else:
            step.reason = T_("SCSI SANITIZE {action} offered (sg_opcodes, opcode 48h): NIST Purge", action=action)
            out.append(step)


def _plan_hidden(caps: Capabilities, config: Any, pol: Policy, plan: SanitizePlan) -> None:
    areas = caps.hidden
    assert areas is not None
    if areas.note:
        plan.notes.append(areas.note)
    if not hpa.has_hidden_area(areas):
        return
    hidden = (areas.native_max_sectors or 0) - (areas.visible_sectors_before or 0)
    what = "DCO" if areas.dco_restricted else "HPA"
    if getattr(config, "hpa_reset", True):
        plan.prepare.append(
            PlanStep(
                "hpa-reset",
                None,  # type: ignore[arg-type]
                "",
                f"{what} hides {hidden} sectors ({areas.visible_sectors_before} visible of "
                f"{areas.native_max_sectors}): reset to native max so they are sanitized too",
                "hdparm",
                {"native_max_sectors": areas.native_max_sectors, "dco": bool(areas.dco_restricted)},
            )
        )
    else:
        plan.notes.append(T_("{what} hides {hidden} sectors and hpa_reset is off: they will not be sanitized, "
                             "so the disk cannot be reported sanitized", what=what, hidden=hidden))


def _sibling_namespaces(disk: Disk) -> list[str]:
    """Other namespace block devices of the same NVMe controller (a sanitize or a
    format of all namespaces erases them too)."""
    try:
        ctrl = os.path.basename(nvme.controller_of(disk.path))
    except Exception:  # noqa: BLE001 - not an NVMe path
        return []
    names = [os.path.basename(p) for p in glob.glob(f"/sys/class/nvme/{ctrl}/{ctrl}n*")]
    return sorted(f"/dev/{n}" for n in names if f"/dev/{n}" != disk.path)


def _guard_siblings(disk: Disk, plan: SanitizePlan) -> None:
    siblings = _sibling_namespaces(disk)
    if not siblings:
        return
    from agent.discover import disk_for_path

    protected = []
    for path in siblings:
        try:
            other = disk_for_path(path)
        except Exception:  # noqa: BLE001 - unreadable sibling: assume protected
            protected.append(f"{path} (unreadable)")
            continue
        if not other.target:
            protected.append(f"{path} ({'; '.join(other.reasons)})")
    if not protected:
        plan.notes.append(T_("controller-wide commands also erase {devices}: all are targets", devices=", ".join(siblings)))
        return
    keep = []
    for step in plan.steps:
        if step.method.startswith("nvme-"):
            plan.skipped.append(_skip(step, f"the controller also holds protected namespaces: {', '.join(protected)}"))
        else:
            keep.append(step)
    plan.steps = keep


def make_plan(disk: Disk, *, config: Any = None, method: str | None = None, verify: str | None = None) -> SanitizePlan:
    """The plan for one disk. ``method`` given: a one-step overwrite plan with that method
    (hidden areas are still reset first on ATA drives, since an overwrite cannot reach them)."""
    if not disk.target:
        reason = i18n.join("; ", disk.reasons) if disk.reasons else T_("protected")
        return SanitizePlan(disk=disk, steps=[], verify=verify or "none", not_target=T_("not a target: {reason}", reason=reason))
    state_dir = getattr(config, "state_dir", None)
    caps = probe(disk, state_dir=state_dir, hidden_only=method is not None)
    if method is not None:
        from agent.sanitize import methods

        methods.get_method(method)  # UsageError for an unknown name, before anything runs
        media = _media_of(disk, caps)
        pol = policy_for(media, config)
        plan = SanitizePlan(
            disk=disk,
            steps=[_overwrite_step(method, f"method {method} requested explicitly")],
            verify=verify or pol.verify or getattr(config, "verify", None) or "sample",
        )
        plan.hidden_areas = caps.hidden
        plan.notes.extend(caps.problems)
        _plan_emmc(disk, plan)
        if caps.hidden is not None:
            _plan_hidden(caps, config, pol, plan)
            if caps.ata is not None and caps.ata.security.frozen and hpa.has_hidden_area(caps.hidden) and pol.unfreeze:
                plan.prepare.insert(
                    0,
                    PlanStep("unfreeze", None, "", "drive is frozen: SET MAX needs it unfrozen", "rtcwake",  # type: ignore[arg-type]
                             {"seconds": pol.unfreeze_seconds}),
                )
        return plan
    plan = plan_from_capabilities(disk, caps, config=config, verify=verify)
    if disk.transport == Transport.NVME:
        _guard_siblings(disk, plan)
    return plan
