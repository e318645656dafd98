import pytest

from rag_core.front_matter import parse_front_matter, split_front_matter
from rag_core.markdown import Fence, fence_opening, parse_document, parse_heading


def test_front_matter_scalars_and_lists() -> None:
    block = "\n".join(
        [
            "id: nodes",
            'title: "Nodes: the basics"',
            "sidebar_label: 'It''s a node'",
            "sidebar_position: 3",
            "weight: 2.5",
            "draft: false",
            "hide_title: True",
            "image: ~",
            "# a comment line",
            "tags: [ros2, 'a, b', \"c\", 7]",
            "keywords:",
            "  - node",
            "  - rclpy   # trailing comment",
            "description: plain text # and a comment",
        ]
    )
    assert parse_front_matter(block) == {
        "id": "nodes",
        "title": "Nodes: the basics",
        "sidebar_label": "It's a node",
        "sidebar_position": 3,
        "weight": 2.5,
        "draft": False,
        "hide_title": True,
        "image": None,
        "tags": ("ros2", "a, b", "c", 7),
        "keywords": ("node", "rclpy"),
        "description": "plain text",
    }


def test_front_matter_block_scalars_and_continuations() -> None:
    block = "literal: |\n  line one\n  line two\nfolded: >\n  one\n  two\n\n  three\nlong: starts here\n  and goes on\nunindented:\n- a\n- b\n"
    assert parse_front_matter(block) == {
        "literal": "line one\nline two",
        "folded": "one two\nthree",
        "long": "starts here and goes on",
        "unindented": ("a", "b"),
    }


@pytest.mark.parametrize(
    "block",
    [
        "nested:\n  child: 1\n  other: [x\n",
        "just some words",
        ":\n::\n- orphan item\n",
        'title: "unclosed',
        "tags: [a, [b, c]]",
        "last_update:\n  date: 2024-01-01\n  author: me",
        "\t\tindented: value",
        "key:value-without-space",
        "x: {a: 1}",
        "",
    ],
)
def test_odd_front_matter_never_raises(block: str) -> None:
    parsed = parse_front_matter(block)
    assert isinstance(parsed, dict)
    assert "child" not in parsed and "date" not in parsed  # nested keys do not leak


def test_nested_mapping_is_skipped_and_later_keys_survive() -> None:
    parsed = parse_front_matter("last_update:\n  date: 2024-01-01\ntitle: After\n")
    assert parsed == {"title": "After"}


def test_odd_scalars_degrade_to_strings() -> None:
    parsed = parse_front_matter('title: "unclosed\nmap: {a: 1}\nversion: 1.2.3\n')
    assert parsed == {"title": '"unclosed', "map": "{a: 1}", "version": "1.2.3"}


def test_front_matter_must_be_at_the_very_start_and_closed() -> None:
    assert split_front_matter("\n---\ntitle: x\n---\nbody")[0] is None
    assert split_front_matter("---\ntitle: x\nbody without a close")[0] is None
    assert split_front_matter("---\n---\nbody") == ("", "body")
    assert split_front_matter("---\ntitle: x\n---\nbody") == ("title: x\n", "body")


def test_document_metadata_text_and_title_from_front_matter() -> None:
    doc = parse_document(
        "docs/week3/nodes.md", "---\ntitle: Custom\ntags: [a]\n---\n\n# Heading\n\nBody.\n"
    )
    assert doc.title == "Custom"
    assert doc.metadata == {"title": "Custom", "tags": ("a",)}
    assert doc.text == "# Heading\n\nBody."


def test_title_falls_back_to_h1_outside_fences_then_to_the_stem() -> None:
    fenced = "```python\n# not a title\n```\n\n# Real Title {#real}\n"
    assert parse_document("docs/a.md", fenced).title == "Real Title"
    assert parse_document("docs/ros2-nodes-topics.md", "## Only h2\n").title == "Ros2 nodes topics"
    assert parse_document("docs/03_setup_guide.md", "").title == "Setup guide"
    assert parse_document("docs/week1/index.md", "text").title == "Week1"


@pytest.mark.parametrize(
    ("document_id", "front_matter", "route"),
    [
        ("docs/week3/ros2-nodes-topics.md", "", "/docs/week3/ros2-nodes-topics"),
        ("docs/intro.md", "", "/docs/intro"),
        ("docs/week1/index.md", "", "/docs/week1"),
        ("docs/week1/README.mdx", "", "/docs/week1"),
        ("docs/week1/Readme.md", "", "/docs/week1"),
        ("docs/guides/guides.md", "", "/docs/guides"),
        ("README.md", "", "/README"),
        ("docs/01-basics/02_nodes.md", "", "/docs/basics/nodes"),
        ("docs/2024-01-release.md", "", "/docs/2024-01-release"),
        ("docs/week3/x.md", "slug: /custom", "/docs/custom"),
        ("docs/week3/x.md", "slug: /", "/docs"),
        ("docs/week3/x.md", "slug: other/place", "/docs/week3/other/place"),
        ("docs/week3/x.md", "slug: ../up", "/docs/up"),
        ("docs/week3/x.md", "id: renamed", "/docs/week3/renamed"),
        ("docs/week3/index.md", "id: renamed", "/docs/week3"),
        ("docs/week3/x.md", "id: renamed\nslug: /wins", "/docs/wins"),
        ("guide.md", "slug: /top", "/top"),
        ("notes.txt", "", "/notes"),
    ],
)
def test_routes(document_id: str, front_matter: str, route: str) -> None:
    text = f"---\n{front_matter}\n---\nBody\n" if front_matter else "Body\n"
    assert parse_document(document_id, text).route == route


def test_mdx_imports_exports_and_comments_are_dropped() -> None:
    text = "\n".join(
        [
            "import Tabs from '@theme/Tabs';",
            "import {",
            "  A,",
            "  B,",
            "} from './parts';",
            "export const meta = {",
            "  author: 'me',",
            "};",
            "",
            "# Title",
            "",
            "Keep <!-- hidden --> this.{/* mdx note */}",
            "<!--",
            "multi-line comment",
            "-->",
            "import the package before you start.",
            "<Tabs><TabItem value='a'>tab</TabItem></Tabs>",
            "",
            "```xml",
            "<!-- kept inside code -->",
            "import os from 'os';",
            "```",
        ]
    )
    doc = parse_document("docs/page.mdx", text)
    assert "Tabs from" not in doc.text and "./parts" not in doc.text and "author" not in doc.text
    assert "hidden" not in doc.text and "mdx note" not in doc.text and "multi-line" not in doc.text
    assert "Keep  this." in doc.text
    assert "import the package before you start." in doc.text
    assert "<Tabs><TabItem value='a'>tab</TabItem></Tabs>" in doc.text
    assert "<!-- kept inside code -->\nimport os from 'os';" in doc.text
    assert doc.text.startswith("# Title")


def test_plain_text_title_and_no_front_matter_processing() -> None:
    doc = parse_document("notes/release.txt", "Release notes\n\n---\nnot: front matter\n")
    assert doc.title == "Release notes"
    assert doc.metadata == {}
    assert "not: front matter" in doc.text
    sentence = parse_document("notes/release-log.txt", "This is a sentence.\nMore.\n")
    assert sentence.title == "Release log"


def test_crlf_and_bom_are_normalised() -> None:
    doc = parse_document("docs/a.md", "\ufeff---\r\ntitle: T\r\n---\r\nLine one\r\nLine two\r\n")
    assert doc.title == "T"
    assert doc.text == "Line one\nLine two"


def test_fences_and_headings() -> None:
    assert fence_opening("```python title=x.py") == Fence("`", 3)
    assert fence_opening("  ~~~~") == Fence("~", 4)
    assert fence_opening("``` not`a fence") is None
    assert fence_opening("``") is None
    assert Fence("`", 4).closes("`````") and not Fence("`", 4).closes("```")
    assert not Fence("`", 3).closes("~~~")
    assert parse_heading("## Nodes ##") == (2, "Nodes")
    assert parse_heading("#hashtag") is None
    assert parse_heading("    # indented code") is None
    assert parse_heading("####### seven") is None


def test_an_unbalanced_export_swallows_no_more_than_its_paragraph() -> None:
    doc = parse_document("docs/a.mdx", "export const broken = {\n  a: 1,\n\nStill here.\n")
    assert doc.text == "Still here."
