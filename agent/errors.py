"""The one error hierarchy of the agent.

Every error a user can cause (bad device, bad config, unreachable collector, forged
certificate, missing or misbehaving tool) is an ``ArdoiseError``. The CLI prints its
message on one line and exits with its ``exit_code``; nothing below the CLI prints.
"""

from __future__ import annotations


class ArdoiseError(Exception):
    """Base of every error the agent reports to a user."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_json(self) -> dict:
        return {"error": self.kind, "message": self.message, **{k: _jsonable(v) for k, v in self.detail.items()}}

    def __str__(self) -> str:  # one line, always; English, as records and logs keep it
        return " ".join(self.message.split())

    def localized(self) -> str:
        """The one line a person reads, in the agent's language when the message is an
        ``agent.i18n.Text`` (``T_("...")``), else as it is."""
        from agent.i18n import localize

        return " ".join(localize(self.message).split())


def _jsonable(value: object) -> object:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


class UsageError(ArdoiseError):
    """The command line itself is wrong (missing --yes, unknown method...)."""

    exit_code = 2
    kind = "usage"


class ConfigError(ArdoiseError):
    """A config file or kernel command-line key is unknown, malformed or of the wrong type."""

    exit_code = 2
    kind = "config"


class DeviceError(ArdoiseError):
    """A named device is missing, is not a block device, or cannot be opened."""

    exit_code = 3
    kind = "device"


class ProtectedDeviceError(DeviceError):
    """A destructive operation was asked for a device that discover protects."""

    kind = "protected"


class ToolError(ArdoiseError):
    """An external tool failed, timed out, is missing, or printed something unparseable."""

    exit_code = 4
    kind = "tool"


class ToolMissing(ToolError):
    kind = "tool-missing"


class ToolTimeout(ToolError):
    kind = "tool-timeout"


class ToolOutputError(ToolError):
    """The tool ran but its output could not be understood (garbage, truncated JSON...)."""

    kind = "tool-output"


class SanitizeError(ArdoiseError):
    """A sanitize step could not be carried out; the caller falls back or records it."""

    exit_code = 5
    kind = "sanitize"


class MediaError(SanitizeError):
    """An I/O error on the medium itself (bad sectors, device gone)."""

    kind = "media"


class DeviceGone(MediaError):
    """The device disappeared while we were working on it (pulled from a shelf bay)."""

    kind = "device-gone"


class CertificateError(ArdoiseError):
    """A certificate is malformed, forged, inconsistent or signed by an unknown key."""

    exit_code = 6
    kind = "certificate"


class DeliveryError(ArdoiseError):
    """The collector could not be reached or refused what we sent."""

    exit_code = 7
    kind = "delivery"
