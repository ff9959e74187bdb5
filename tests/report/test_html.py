"""The claims report's HTML page: tables, headings and lists render, and text is escaped."""

from __future__ import annotations

from html.parser import HTMLParser

from minibatch_momentum.report.html import markdown_to_html

MD = """# Claims: summary

Some **bold** text with `code` and a <script>alert(1)</script> tag,
continued on a second line.

| claim | check | band |
|---|---|---|
| C1 | eff <= 0.5 (**no**) | a \\| b |
|  | -1.5 is a slope | >= 0.5 |

- **C1**: a statement
- **C2**: another
-1 starts a paragraph
"""


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.cells, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_markdown_report_renders_to_html():
    page = markdown_to_html(MD)
    p = _Collect()
    p.feed(page)
    assert p.tags.count("table") == 1 and p.tags.count("li") == 2 and "h1" in p.tags
    assert p.cells[:3] == ["claim", "check", "band"]
    assert p.cells[3:6] == ["C1", "eff <= 0.5 (no)", "a | b"]
    assert "script" not in p.tags and "&lt;script&gt;" in page
    assert "<p>-1 starts a paragraph</p>" in page
