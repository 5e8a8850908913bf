"""Every relative link and file reference in the README and docs/ points at a file of this checkout, and every
citation of the spec or the golden data in the sources names the file where it really is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *ROOT.glob("*.md"),
               ROOT / "tests" / "golden" / "README.md"])
DOCS = sorted(set(p for p in DOCS if p.is_file()))

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A path into the repository's own folders (docs/X.md, tests/test_x.py, scripts/x.sh, ...).
REPO_DIRS = ("docs", "tests", "scripts", "benchmarks", "export", "ops", "vampnet_ort", ".ci", "cmake")
REPO_PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./-]*[\w-])(?!\.?[\w<*{])" % "|".join(re.escape(d) for d in REPO_DIRS))
# A bare Markdown file name (SPEC.md, APP.md): one of this repository's pages.
BARE_MD = re.compile(r"(?<![\w./-])([A-Za-z][\w-]*\.md)\b")
# Names that are not files of this repository although they look like one.
NOT_OURS = {"CHANGELOG.md"} - {p.name for p in ROOT.glob("*.md")}
# Build outputs (anchored .gitignore entries such as /vampnet_ort/web/vendor/): made by a build step, not committed.
GENERATED = tuple(line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
                  if line.startswith("/") and "*" not in line)


def _is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target)) or target.startswith(("#", "//"))


def _exists(doc: Path, target: str) -> bool:
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return True
    candidates = [doc.parent / path, ROOT / path]
    if "/" not in path:  # a bare page name: the doc's folder, the root, or docs/
        candidates.append(ROOT / "docs" / path)
    return any(c.exists() for c in candidates)


def _references(doc: Path) -> list[tuple[int, str]]:
    refs: list[tuple[int, str]] = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for match in MARKDOWN_LINK.finditer(line):
            if not _is_external(match.group(1)):
                refs.append((number, match.group(1)))
        stripped = MARKDOWN_LINK.sub("", line)
        for match in REPO_PATH.finditer(stripped):
            path = match.group(1).rstrip(".")
            # Glob-like or placeholder mentions (tests/test_<op>.py, ops/cpp/*.cc, build/cmake-<configuration>).
            if not path.startswith(GENERATED):
                refs.append((number, path))
        for match in BARE_MD.finditer(stripped):
            if match.group(1) not in NOT_OURS:
                refs.append((number, match.group(1)))
    return refs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_file_reference_exists(doc: Path) -> None:
    dangling = [f"{doc.relative_to(ROOT)}:{n}: {target}" for n, target in _references(doc) if not _exists(doc, target)]
    assert not dangling, "dangling references:\n" + "\n".join(dangling)


def _source_files() -> list[Path]:
    suffixes = {".py", ".h", ".cc", ".js", ".mjs", ".sh", ".md", ".html", ".txt", ".toml"}
    skip = {".git", ".venv", "build", "node_modules", "vendor", "dist", "test-artifacts", "bench-out"}
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in skip or part.startswith(".venv") or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in suffixes:
            files.append(path)
    return files


def test_spec_and_golden_citations_name_their_files() -> None:
    """The spec is docs/SPEC.md and the golden data's description is tests/golden/README.md: a citation in code
    or docs spells the path (docs/ pages may say SPEC.md, a sibling)."""
    bad = []
    for path in _source_files():
        if path == Path(__file__).resolve():
            continue
        in_docs = path.parent == ROOT / "docs"
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in re.finditer(r"[\w./-]*SPEC\.md", line):
                if not (match.group(0).endswith("docs/SPEC.md") or (in_docs and match.group(0) == "SPEC.md")):
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
            for match in re.finditer(r"[\w./-]*golden/README(\.md)?", line):
                if not match.group(0).endswith("tests/golden/README.md") and path.parent != ROOT / "tests" / "golden":
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    assert not bad, "citations that do not name an existing file:\n" + "\n".join(bad)


def test_the_checker_finds_a_dangling_reference(tmp_path: Path) -> None:
    doc = tmp_path / "page.md"
    doc.write_text("See [the spec](docs/NOPE.md), tests/missing_file.py and MISSING.md; [web](https://x.org).\n")
    targets = [t for _, t in _references(doc)]
    assert targets == ["docs/NOPE.md", "tests/missing_file.py", "MISSING.md"]
    assert not any(_exists(doc, t) for t in targets)
