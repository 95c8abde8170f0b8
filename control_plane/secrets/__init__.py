"""Secrets at rest: the process's SecretBox (docs/security.md).

`configure` is called once at start by every process that reads or writes sealed values (the
control plane's API, `migrate`); `box()` is what the domain uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.secrets.box import SealError, SecretBox
from control_plane.secrets.keys import load_box

if TYPE_CHECKING:
    from control_plane.config import Settings

__all__ = ["SealError", "SecretBox", "box", "configure", "install"]

_box: SecretBox | None = None


def install(new: SecretBox) -> SecretBox:
    global _box
    _box = new
    return new


def configure(settings: Settings) -> SecretBox:
    """Loads the process's key as `settings` say (BOOMERANG_SECRET_KEY, else the key file)."""
    return install(
        load_box(
            settings.database_url,
            settings.secret_key,
            settings.secret_key_previous,
            settings.state_dir,
        )
    )


def box() -> SecretBox:
    if _box is None:
        raise RuntimeError("no secret key loaded: call control_plane.secrets.configure at start")
    return _box
