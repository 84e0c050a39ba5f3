"""Timeline pages as JSON bytes, assembled from pieces each status renders once per version.

Most of what a status shows is the same for every reader: everything but the reader's own
marks (favourited, reblogged, bookmarked, pinned) and the author's account entity, which
changes with every new status or follower. A status is therefore rendered once into a
*template*: its JSON bytes with a hole where the marks go and one where the account goes
(a reblog holds the original's entity, with holes of its own). A page is the templates
joined, each hole filled with the reader's marks (read fresh with every page) and the account
entity's bytes (kept with the account row they were made from, read with every page).

A template is kept (in the worker's :class:`~townsquare.statuses.cache.EntityCache`) with its
*version*: every column of the status row the entity shows (and of the reblogged status's
row), read by the page's own query. Counters, an edit, a new content warning change the row
and so the version; the next page renders the status again. Deleted statuses are never looked
up. Entries expire like the rest of the cache, after ``MAX_AGE`` seconds.

Statuses whose entity depends on the reader beyond these marks are not templated: those with
a poll (the reader's votes) or a quote (whether the reader may see the quoted status). They
are rendered whole for each request, as every other list of statuses is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

# The reader's marks, in the order the entity lists them ("muted" is always false here: muting
# a conversation is not supported).
_MARKS = {
    (f, r, b, p): b'"favourited":%s,"reblogged":%s,"muted":false,"bookmarked":%s,"pinned":%s'
    % tuple(b"true" if mark else b"false" for mark in (f, r, b, p))
    for f in (False, True)
    for r in (False, True)
    for b in (False, True)
    for p in (False, True)
}
_MARK_KEYS = ("favourited", "reblogged", "muted", "bookmarked", "pinned")
_LATER_MARK_KEYS = frozenset(_MARK_KEYS[1:])


@dataclass(frozen=True, slots=True)
class MarksHole:
    """Where the reader's marks on ``status_id`` go."""

    status_id: int


@dataclass(frozen=True, slots=True)
class AccountHole:
    """Where the entity of ``account_id`` goes."""

    account_id: int


Piece = bytes | MarksHole | AccountHole


@dataclass(frozen=True, slots=True)
class Template:
    """A status entity as JSON bytes with holes; ``whole`` is False for statuses rendered for
    each reader instead (a poll, a quote)."""

    pieces: tuple[Piece, ...]
    whole: bool = True
    # The statuses whose marks it shows (a reblog's and its original's), the accounts it shows.
    marked: tuple[int, ...] = ()
    accounts: tuple[int, ...] = ()


# Statuses with a poll or a quote: rendered per reader, every time.
PER_READER = Template(pieces=(), whole=False)


class Marks(Protocol):
    """The reader's marks on a page's statuses."""

    favourited: set[int]
    reblogged: set[int]
    bookmarked: set[int]
    pinned: set[int]


def template_of(entity: dict[str, Any]) -> Template:
    """The template of a status entity rendered without a reader (all marks false)."""
    pieces: list[Piece] = []
    _emit(entity, pieces)
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return Template(
        tuple(merged),
        marked=tuple(p.status_id for p in merged if isinstance(p, MarksHole)),
        accounts=tuple(p.account_id for p in merged if isinstance(p, AccountHole)),
    )


def _emit(entity: dict[str, Any], out: list[Piece]) -> None:
    out.append(b"{")
    first = True
    for key, value in entity.items():
        if key in _LATER_MARK_KEYS:
            continue
        if not first:
            out.append(b",")
        first = False
        if key == "favourited":
            out.append(MarksHole(int(entity["id"])))
        elif key == "account":
            out += [b'"account":', AccountHole(int(value["id"]))]
        elif key == "reblog" and value is not None:
            out.append(b'"reblog":')
            _emit(value, out)
        else:
            out.append(orjson.dumps(key) + b":" + orjson.dumps(value))
    out.append(b"}")


def fill(template: Template, marks: Marks, accounts: dict[int, bytes], out: list[bytes]) -> None:
    """Append the template's bytes, holes filled, to ``out``."""
    for piece in template.pieces:
        if isinstance(piece, bytes):
            out.append(piece)
        elif isinstance(piece, MarksHole):
            i = piece.status_id
            out.append(
                _MARKS[
                    (
                        i in marks.favourited,
                        i in marks.reblogged,
                        i in marks.bookmarked,
                        i in marks.pinned,
                    )
                ]
            )
        else:
            out.append(accounts[piece.account_id])


def json_array(items: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"
