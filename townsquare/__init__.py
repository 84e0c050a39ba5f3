"""Townsquare: a social platform that stays up."""

__version__ = "0.1.0"
MASTODON_COMPAT_VERSION = "4.5.0"

__all__ = ["MASTODON_COMPAT_VERSION", "__version__"]
