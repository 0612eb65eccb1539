"""The bulletin-body sanitizer: no script, event handler or javascript: URL survives."""

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bulletins.markup import render_markdown

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "<script>alert(1)</script>",
                    "<img src=x onerror=alert(1)>",
                    "[x](javascript:alert(1))",
                    "[x](JaVaScRiPt:alert(1))",
                    "[x](java\tscript:alert(1))",
                    "<a href='javascript:alert(1)'>x</a>",
                    "![x](javascript:alert(1))",
                    "<svg onload=alert(1)>",
                    "<iframe src=x>",
                    "[x]: javascript:alert(1)\n\n[x]",
                    "<<script>script>",
                    "&#106;avascript:",
                    '<a href="&#x6A;avascript:alert(1)">x</a>',
                    "`<script>`",
                    "\n\n",
                    "<style>*{}</style>",
                    "<p onmouseover=alert(1)>x</p>",
                    "](",
                    "[",
                    ")",
                ]
            ),  # fmt: skip
        ),
        max_size=12,
    )
)
def test_no_script_event_handler_or_javascript_url_survives_the_sanitizer(parts):
    parser = TagCollector()

    parser.feed(render_markdown("".join(parts)))

    for tag, attrs in parser.tags:
        assert tag not in ("script", "style", "iframe", "svg", "img", "object", "embed")
        for name, value in attrs:
            assert not name.startswith("on")
            url = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert not url.startswith(("javascript:", "vbscript:", "data:")), (name, value)


class TagCollector(HTMLParser):
    """Every start tag and its attributes, entities decoded, as a browser would read them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
