"""Status text: finding mentions, hashtags and links, counting length, rendering safe HTML."""

from townsquare.text.html import render_html, sanitize
from townsquare.text.tokens import Token, hashtags_in, mentioned_usernames, status_length, tokenize

__all__ = [
    "Token",
    "hashtags_in",
    "mentioned_usernames",
    "render_html",
    "sanitize",
    "status_length",
    "tokenize",
]
