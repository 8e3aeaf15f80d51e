"""The small hygiene issue 14 asked for, kept by a test rather than by a one-off sweep: a reason beside every
`type: ignore`, `noqa` and ruff ignore, a reason for every warning let through, no measured figure in a comment
or docstring (figures go in docs/performance.md, where they can be measured again), and the README's links
inside the repo. Each was swept once (issue 14) and had drifted since: this test is what keeps them."""

from __future__ import annotations

import io
import re
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schema", "channels", "routing", "contactcenter", "bench", "tests")
# The code the service runs: its comments and docstrings say why, never how fast.
SERVICE_PACKAGES = ("schema", "channels", "routing", "contactcenter")

# A type-ignore or noqa pragma, then its reason: after a dash, or in a comment of its own.
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?:\[[^\]]*\])?(?P<rest>.*)$")
NOQA = re.compile(r"#\s*noqa(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$")
REASON = re.compile(r"^\s*(?:#|—|-{1,2})\s*\S")

# A measurement: a duration in (micro/milli)seconds, a rate per second, a ratio or a share.
FIGURE = re.compile(
    r"\d[\d,.]*\s*(?:ms|µs|us|milliseconds|microseconds)\b"
    r"|\d[\d,.]*\s+(?:[a-z]+\s+)?(?:a|per)\s+second\b"
    r"|\d[\d,.]*\s*\u00d7"  # the multiplication sign
    r"|\d[\d,.]*\s*%",
    re.IGNORECASE,
)


def _sources(packages: tuple[str, ...]) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def _comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    """Each comment, and each string alone on its line(s) (a docstring), with the line it starts on."""
    found: list[tuple[int, str]] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))
    for previous, token in zip([None, *tokens], tokens, strict=False):
        alone = previous is None or previous.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE, tokenize.NL)
        if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and alone):
            found.append((token.start[0], token.string))
    return found


def test_every_type_ignore_and_noqa_says_why() -> None:
    bare = []
    for path in _sources(PACKAGES):
        for number, comment in _comments_and_docstrings(path):
            if not comment.startswith("#"):
                continue
            for pattern in (TYPE_IGNORE, NOQA):
                found = pattern.search(comment)
                if found and not REASON.match(found["rest"]):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {comment}")
    assert bare == []


def test_every_ruff_ignore_and_let_through_warning_says_why() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    lines = text.splitlines()
    config = tomllib.loads(text)
    lint = config["tool"]["ruff"]["lint"]
    per_file = lint.get("per-file-ignores", {})
    ignored = [*lint.get("ignore", []), *(code for codes in per_file.values() for code in codes)]
    warnings = config["tool"]["pytest"]["ini_options"]["filterwarnings"]
    assert warnings[0] == "error"
    unexplained = []
    for entry in [*ignored, *warnings[1:]]:
        # The entry's line carries a comment, or the line above it is one.
        at = next(n for n, line in enumerate(lines) if f'"{entry}"' in line)
        if "#" not in lines[at].split(f'"{entry}"', 1)[1] and not lines[at - 1].lstrip().startswith("#"):
            unexplained.append(entry)
    assert unexplained == []


def test_no_measured_figure_in_the_service_comments_or_docstrings() -> None:
    figures = [
        f"{path.relative_to(ROOT)}:{number}: {match.group(0)}"
        for path in _sources(SERVICE_PACKAGES)
        for number, text in _comments_and_docstrings(path)
        for match in FIGURE.finditer(text)
    ]
    assert figures == []


def test_the_readme_links_only_to_files_of_the_repo() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    outside = [
        target
        for target in targets
        if "://" in target
        or target.startswith(("/", ".."))
        or not (ROOT / target.split("#", 1)[0]).resolve().is_relative_to(ROOT)
        or not (ROOT / target.split("#", 1)[0]).exists()
    ]
    assert outside == []
