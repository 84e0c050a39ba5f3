"""Status text to HTML: links, mentions and hashtags come out as Mastodon renders them, and
nothing an author types can become markup."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from townsquare.text import hashtags_in, mentioned_usernames, render_html, status_length


def render(text: str, usernames: dict[str, str] | None = None) -> str:
    return render_html(
        text,
        usernames=usernames or {"alice": "Alice"},
        local_domain="testserver",
        base_url="http://testserver",
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


def _elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    collector = _Collector()
    collector.feed(html)
    return collector.elements


def test_paragraphs_and_line_breaks() -> None:
    assert render("one\ntwo\n\n\nthree") == "<p>one<br>two</p><p>three</p>"
    assert render("") == ""
    assert render("\n\n") == ""


def test_mentions_of_local_accounts_only() -> None:
    html = render("hi @alice and @alice@testserver, not @nobody or @alice@elsewhere.org")
    assert html.count('class="u-url mention"') == 2
    assert (
        '<a href="http://testserver/@Alice" class="u-url mention">@<span>Alice</span></a>' in html
    )
    assert "@nobody" in html
    assert "@alice@elsewhere.org" in html
    assert mentioned_usernames("@a @A x@b @c@testserver @d@other", "testserver") == ["a", "c"]


def test_hashtags() -> None:
    html = render("#Café and #1 and a#b")
    assert (
        '<a href="http://testserver/tags/caf%C3%A9" class="mention hashtag" rel="tag">'
        "#<span>Café</span></a>"
    ) in html
    assert "#1" in html and "/tags/1" not in html
    assert hashtags_in("#Tag #tag #other_1 #123") == ["Tag", "other_1"]


def test_long_links_are_shortened_like_mastodon() -> None:
    url = "https://www.example.com/a/rather/long/path/that/goes/on?x=1&y=2"
    html = render(f"see {url}.")
    assert html == (
        '<p>see <a href="https://www.example.com/a/rather/long/path/that/goes/on?x=1&amp;y=2" '
        'rel="nofollow noopener" translate="no" target="_blank">'
        '<span class="invisible">https://www.</span>'
        '<span class="ellipsis">example.com/a/rather/long/path</span>'
        '<span class="invisible">/that/goes/on?x=1&amp;y=2</span></a>.</p>'
    )


def test_parenthesised_link_keeps_its_own_parentheses() -> None:
    html = render("(https://en.wikipedia.org/wiki/Foo_(bar)) and (https://e.org/x)")
    assert 'href="https://en.wikipedia.org/wiki/Foo_(bar)"' in html
    assert 'href="https://e.org/x"' in html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        'https://example.com/"onmouseover="alert(1)',
        "https://example.com/<script>alert(1)</script>",
        "javascript:alert(1)",
        "<p style='x'>&lt;b&gt;</p>",
        "@alice<script>",
        "#tag<img src=x>",
        "<!-- comment --><svg onload=alert(1)>",
    ],
)
def test_markup_typed_by_authors_is_inert(attack: str) -> None:
    elements = _elements(render(attack))
    for tag, attributes in elements:
        assert tag in ("p", "br", "a", "span"), tag
        for name, value in attributes:
            assert name in ("href", "rel", "target", "translate", "class"), name
            if name == "href":
                assert (value or "").startswith(("http://", "https://")), value
    # Only the paragraph, or a link this renderer made, may be markup.
    assert {tag for tag, _ in elements} <= {"p", "a", "span"}


def test_length_counts_links_as_23() -> None:
    assert status_length("hello") == 5
    assert status_length("https://example.com/" + "a" * 200) == 23
    assert status_length("a https://x.org b") == 2 + 23 + 2


def test_rendering_is_deterministic() -> None:
    text = "Hi @alice #tag https://example.com/x\n\nbye"
    assert render(text) == render(text)
