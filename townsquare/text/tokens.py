"""Splitting plain status text into runs of text, links, mentions and hashtags.

One scanner serves parsing (which accounts and tags does this status name?), length counting and
rendering, so the three always agree about what is a link or a mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Mastodon counts every link as this many characters, whatever its real length.
URL_LENGTH = 23
MAX_TAG_LENGTH = 100

_URL = r"(?P<url>https?://[^\s<>\"'`]+)"
# A mention starts a word: not inside an address or a URL path ("a@b", "/@b").
_MENTION = (
    r"(?<![\w/@.])@(?P<username>[A-Za-z0-9_]{1,30})(?![A-Za-z0-9_])"
    r"(?:@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?))?"
)
# A hashtag is letters, digits and underscores with at least one non-digit ("#1" is not a tag).
_HASHTAG = r"(?<![\w/#&)])#(?P<tag>\w*[^\W\d]\w*)"
_SCANNER = re.compile(f"{_URL}|{_MENTION}|{_HASHTAG}")
_TRAILING = ".,;:!?'\"*"


@dataclass(frozen=True)
class Token:
    kind: Literal["text", "url", "mention", "hashtag"]
    text: str  # the characters as written
    value: str = ""  # url: the address; mention: the username; hashtag: the tag name
    domain: str | None = None  # mention: the domain written after the username, if any


def _trim_url(url: str) -> str:
    """Drop punctuation that ends a sentence rather than the address, and unbalanced ')'."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in _SCANNER.finditer(text):
        start = match.start()
        if start < position:
            continue
        if match.group("url"):
            url = _trim_url(match.group("url"))
            if len(url) <= len("https://") or "://" not in url:
                continue
            end = start + len(url)
            token = Token("url", url, url)
        elif match.group("username"):
            end = match.end()
            token = Token("mention", match.group(0), match.group("username"), match.group("domain"))
        else:
            tag = match.group("tag")
            if len(tag) > MAX_TAG_LENGTH:
                continue
            end = match.end()
            token = Token("hashtag", match.group(0), tag)
        if start > position:
            tokens.append(Token("text", text[position:start]))
        tokens.append(token)
        position = end
    if position < len(text):
        tokens.append(Token("text", text[position:]))
    return tokens


def _is_local(token: Token, local_domain: str) -> bool:
    return token.domain is None or token.domain.lower() == local_domain.lower()


def mentioned_usernames(text: str, local_domain: str) -> list[str]:
    """Lower-cased usernames of local accounts named in ``text``, first mention first."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        if token.kind == "mention" and _is_local(token, local_domain):
            seen.setdefault(token.value.lower(), None)
    return list(seen)


def hashtags_in(text: str) -> list[str]:
    """Hashtag names as first written, one per case-insensitive name."""
    seen: dict[str, str] = {}
    for token in tokenize(text):
        if token.kind == "hashtag":
            seen.setdefault(token.value.lower(), token.value)
    return list(seen.values())


def status_length(text: str) -> int:
    """Length as Mastodon counts it: each link counts as 23 characters."""
    return sum(URL_LENGTH if token.kind == "url" else len(token.text) for token in tokenize(text))
