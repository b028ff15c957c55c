"""Errors of score-file delivery to Slate's SFTP (``slate.delivery``); each message says what to change."""

from __future__ import annotations


class DeliveryError(RuntimeError):
    """Base class of every delivery error."""


class DeliveryConfigError(DeliveryError):
    """The ``slate_sftp`` connection or the remote folder is not set up as delivery requires."""


class HostKeyError(DeliveryError):
    """The SFTP server's host key is unknown or differs from the key pinned in the connection."""


class DeliveryAuthError(DeliveryError):
    """The SFTP server refused the connection's credentials."""


class LocalFileError(DeliveryError):
    """A local chunk is missing or no longer matches its manifest."""


class ChunkDeliveryError(DeliveryError):
    """A chunk could not be delivered within the allowed attempts."""


class DeliveryTimeout(DeliveryError, TimeoutError):
    """The SFTP server accepted the connection but did not answer within ``Settings.sftp_timeout`` (retryable)."""
