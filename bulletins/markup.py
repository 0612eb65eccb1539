"""Bulletin bodies are Markdown rendered to HTML, then sanitized with nh3 (an allow-list)."""

import re
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


def render_markdown(text):
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


class _PlainText(HTMLParser):
    """Rendered Markdown back to plain text: a line per paragraph, heading and list item, a
    link's address after its text."""

    BLOCKS = {"p", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "ul", "ol", "table", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.lists = []
        self.link = None
        self.in_pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("ul", "ol"):
            self.lists.append(0 if tag == "ol" else None)
        elif tag == "li":
            self.parts.append("\n" + self._marker())
        elif tag in ("br", "tr"):
            self.parts.append("\n")
        elif tag in ("td", "th"):
            if self.parts and not self.parts[-1].strip():
                self.parts.pop()
            self.parts.append(" | ")
        elif tag == "a":
            self.link = (dict(attrs).get("href") or "", len(self.parts))
        elif tag == "pre":
            self.in_pre += 1

    def _marker(self):
        if not self.lists or self.lists[-1] is None:
            return "- "
        self.lists[-1] += 1
        return f"{self.lists[-1]}. "

    def handle_endtag(self, tag):
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "a" and self.link:
            href, start = self.link
            text = "".join(self.parts[start:]).strip()
            if href and href.removeprefix("mailto:").removeprefix("tel:") != text:
                self.parts.append(f" ({href})")
            self.link = None
        elif tag == "pre":
            self.in_pre -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data):
        self.parts.append(data if self.in_pre else re.sub(r"\s+", " ", data))

    def text(self):
        lines = [
            line.strip().removeprefix("| ").strip() for line in "".join(self.parts).split("\n")
        ]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def plain_text(text):
    """A bulletin body as plain text, for where Markdown would show as `**` (CAP, e-mail text):
    the same parse as the page, so what is bold on screen is simply text here."""
    parser = _PlainText()
    parser.feed(render_markdown(text))
    parser.close()
    return parser.text()
