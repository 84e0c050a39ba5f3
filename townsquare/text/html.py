"""Rendering status text to the HTML that Mastodon clients display.

Everything the author typed is escaped; the only markup is what this module writes (paragraphs,
line breaks, links, mentions, hashtags), and a final pass through an allow-list sanitiser makes
sure that stays true even if a bug slips into the rendering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from urllib.parse import quote

import nh3

from townsquare.text.tokens import Token, tokenize

# How much of a link's address (after the scheme and "www.") is shown before an ellipsis.
SHOWN_URL_CHARS = 30
_URL_PREFIX = re.compile(r"^https?://(?:www\.)?", re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")

ALLOWED_TAGS = {"p", "br", "a", "span"}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "rel", "target", "translate"},
    "span": {"translate"},
}
ALLOWED_CLASSES = {
    "a": {"u-url", "mention", "hashtag"},
    "span": {"h-card", "invisible", "ellipsis"},
}


def sanitize(html: str) -> str:
    """Keep only the markup statuses may carry; everything else is dropped or escaped."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes={"http", "https"},
        link_rel=None,
        strip_comments=True,
    )


def _link(url: str) -> str:
    prefix = _URL_PREFIX.match(url)
    scheme = prefix.group(0) if prefix else ""
    rest = url[len(scheme) :]
    shown, hidden = rest[:SHOWN_URL_CHARS], rest[SHOWN_URL_CHARS:]
    shown_class = "ellipsis" if hidden else ""
    return (
        f'<a href="{escape(url)}" rel="nofollow noopener" translate="no" target="_blank">'
        f'<span class="invisible">{escape(scheme)}</span>'
        f'<span class="{shown_class}">{escape(shown)}</span>'
        f'<span class="invisible">{escape(hidden)}</span></a>'
    )


def _mention(username: str, base_url: str) -> str:
    url = f"{base_url}/@{quote(username)}"
    return (
        f'<span class="h-card" translate="no"><a href="{escape(url)}" class="u-url mention">'
        f"@<span>{escape(username)}</span></a></span>"
    )


def _hashtag(tag: str, base_url: str) -> str:
    url = f"{base_url}/tags/{quote(tag.lower())}"
    return (
        f'<a href="{escape(url)}" class="mention hashtag" rel="tag">#<span>{escape(tag)}</span></a>'
    )


def _render_token(
    token: Token, usernames: Mapping[str, str], local_domain: str, base_url: str
) -> str:
    if token.kind == "url":
        return _link(token.value)
    if token.kind == "hashtag":
        return _hashtag(token.value, base_url)
    if token.kind == "mention":
        local = token.domain is None or token.domain.lower() == local_domain.lower()
        username = usernames.get(token.value.lower())
        if local and username is not None:
            return _mention(username, base_url)
    return escape(token.text)


def render_html(
    text: str, *, usernames: Mapping[str, str], local_domain: str, base_url: str
) -> str:
    """``text`` as HTML paragraphs.

    ``usernames`` maps lower-cased usernames of existing local accounts to their spelling;
    mentions of anyone else stay plain text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        return ""
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        lines = [
            "".join(_render_token(t, usernames, local_domain, base_url) for t in tokenize(line))
            for line in paragraph.split("\n")
        ]
        paragraphs.append(f"<p>{'<br />'.join(lines)}</p>")
    return sanitize("".join(paragraphs))
