"""Python lint and format (``ruff check``, ``ruff format --check`` with ``ruff.toml``) and method citations.

The Snakemake side is checked by ``snakefmt`` and ``snakemake --lint`` (tests/test_workflow.py);
this file covers the Python code in ``scripts``, ``tests`` and ``benchmarks``, and checks that every
section of the method reference that the code, config and docs cite exists in ``docs/methods.md``.

The code predates the linter, so the two whole-tree checks are a ratchet: the number of findings
may not grow above the count measured when ``ruff.toml`` was introduced, and must be lowered (to
0, once the code has been formatted and fixed in one commit) as it falls. A rise fails the test
with ruff's own report of what to fix.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["scripts", "tests", "benchmarks"]

# Findings measured with ruff 0.17.6 and this ruff.toml: 449 / 72 on main 1f8f8b9 when the linter came
# in; 221 / 34 on main 343c8b9 (most stage modules cleaned); 33 / 3 on h/lint 73129cd (parsers, importing,
# audit, ntc, tests and two benchmarks cleaned); 0 / 0 since the whole tree was cleaned. The tree
# is clean and must stay so: `ruff format FILE && ruff check FILE` before committing.
MAX_CHECK_FINDINGS = 0
MAX_UNFORMATTED_FILES = 0

# Lines outside tests/ that still point at the method reference outside the repository
# (``algorithms.md`` / ``algorithms §N`` / ``../shared``): 45 on main 1f8f8b9, 0 since: cite
# ``docs/methods.md §N`` (same section numbers).
MAX_EXTERNAL_REFERENCES = 0
EXTERNAL_REFERENCE = re.compile(r"algorithms\.md|algorithms §|algorithms,? §|\.\./shared")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")
# A § next to one of these names cites that document, not the method reference.
OTHER_DOCUMENTS = ("data-model", "data model", "MIQE", "issue", "README")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", re.MULTILINE)
# Sections that code, config and captions cite today; they must keep their numbers.
REQUIRED_SECTIONS = {
    "0",
    "0.1",
    "1",
    "1.1",
    "1.2",
    "1.3",
    "1.4",
    "1.5",
    "1.6",
    "1.7",
    "1.8",
    "2",
    "2.1",
    "2.2",
    "2.3",
    "2.4",
    "3",
    "3.1",
    "3.2",
    "3.3",
    "3.4",
    "4",
    "4.1",
    "4.2",
    "4.3",
    "4.4",
    "4.5",
    "5",
    "6",
    "7",
    "8",
    "8.1",
    "8.2",
    "9",
    "10",
}


def _ruff() -> str:
    """The ruff next to this interpreter (the project venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed in this environment (pip install ruff to run the Python lint)")
    return found


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([_ruff(), *args], cwd=cwd, capture_output=True, text=True)


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def test_config_is_the_projects_and_catches_known_faults(tmp_path):
    """The config selects the rules it claims: an undefined name (F), a zip that could drop
    values silently (B905), an over-long line (E501 at 110), unsorted imports (I)."""
    (tmp_path / "ruff.toml").write_text((REPO / "ruff.toml").read_text())
    bad = tmp_path / "bad.py"
    long_line = "VALUE = " + '"' + "x" * 103 + '"\n'  # 8 + 105 = 113 characters
    ok_line = "OTHER = " + '"' + "y" * 100 + '"\n'  # 110 characters: allowed
    bad.write_text(
        "import sys\nimport os\n\n"
        + long_line
        + ok_line
        + "\n\ndef pairs(a, b):\n    return list(zip(a, b)) + [undefined_name, os.sep, sys.argv]\n"
    )
    proc = _run("check", "--output-format", "concise", "--no-cache", str(bad), cwd=tmp_path)
    codes = sorted(set(re.findall(r":\d+:\d+: ([A-Z]+\d+)", proc.stdout)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert codes == ["B905", "E501", "F821", "I001"], proc.stdout
    assert proc.stdout.count("E501") == 1, proc.stdout


def _per_file(concise: str) -> str:
    """'count path' lines, most findings first, from ruff's concise output."""
    files = re.findall(r"^(.+?):\d+:\d+: ", concise, flags=re.MULTILINE)
    counts = {name: files.count(name) for name in set(files)}
    return "\n".join(f"{n:5d} {name}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def test_ruff_check_does_not_regress():
    proc = _run("check", "--output-format", "concise", *TARGETS)
    assert proc.returncode in (0, 1), proc.stderr  # 2 = ruff could not run (bad config, crash)
    found = _count(r"Found (\d+) error", proc.stdout + proc.stderr)
    assert found <= MAX_CHECK_FINDINGS, (
        f"`ruff check {' '.join(TARGETS)}` finds {found} problems (allowed: {MAX_CHECK_FINDINGS}); "
        "per file:\n" + _per_file(proc.stdout)
    )
    if found == 0:
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_does_not_regress():
    proc = _run("format", "--check", *TARGETS)
    assert proc.returncode in (0, 1), proc.stderr
    unformatted = _count(r"(\d+) files? would be reformatted", proc.stdout + proc.stderr)
    assert unformatted <= MAX_UNFORMATTED_FILES, (
        f"`ruff format --check` would reformat {unformatted} files (allowed: {MAX_UNFORMATTED_FILES}); "
        "run `ruff format scripts tests benchmarks`:\n" + proc.stdout
    )


def _tracked_text_files() -> list[Path]:
    """Files under version control outside tests/ (or every file of the usual folders without git)."""
    proc = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        names = proc.stdout.split("\n")
    else:  # an unpacked archive: no git metadata
        names = [
            str(p.relative_to(REPO))
            for d in ("scripts", "workflow", "config", "docs", "benchmarks")
            for p in (REPO / d).rglob("*")
            if p.is_file()
        ]
    suffixes = {".py", ".smk", ".md", ".rst", ".yaml", ".yml", ".txt", ""}
    out = []
    for name in names:
        path = REPO / name
        if name and not name.startswith("tests/") and path.suffix in suffixes and path.is_file():
            out.append(path)
    return sorted(out)


def _methods_sections() -> set[str]:
    return set(HEADING.findall((REPO / "docs" / "methods.md").read_text(encoding="utf-8")))


def test_methods_keeps_the_section_numbers_code_cites():
    missing = sorted(REQUIRED_SECTIONS - _methods_sections(), key=lambda s: [int(x) for x in s.split(".")])
    assert not missing, f"docs/methods.md lacks section(s) {missing}: code and config cite them by number"


def test_every_cited_section_exists():
    """Every §N cited next to the method reference (or in a package docstring) names a heading."""
    sections = _methods_sections()
    bad = []
    for path in _tracked_text_files():
        if path.name == "methods.md":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if "§" not in line or any(other in line for other in OTHER_DOCUMENTS):
                continue
            cites_reference = "methods.md" in line or "algorithms" in line or path.suffix in {".py", ".smk"}
            if cites_reference:
                bad += [
                    f"{path.relative_to(REPO)}:{number}: §{s}"
                    for s in SECTION.findall(line)
                    if s not in sections
                ]
    assert not bad, "cited sections missing from docs/methods.md:\n" + "\n".join(bad)


def test_no_new_reference_outside_the_repository():
    hits = []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [
            f"{path.relative_to(REPO)}:{n}"
            for n, line in enumerate(text.splitlines(), 1)
            if EXTERNAL_REFERENCE.search(line)
        ]
    assert len(hits) <= MAX_EXTERNAL_REFERENCES, (
        f"{len(hits)} lines cite a method reference outside the repository "
        f"(allowed {MAX_EXTERNAL_REFERENCES}); cite docs/methods.md §N instead:\n" + "\n".join(hits)
    )


# Issue 14: a function reads at once (≤ 80 lines, docstring included), a module does one job
# (≤ 600 lines). The corpus generator scripts/make_bad_inputs.py is not in the package.
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 600


def _too_long(path: Path) -> list[str]:
    import ast

    text = path.read_text(encoding="utf-8")
    found = [f"{path.name}: {text.count(chr(10))} lines"] if text.count("\n") > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(text)):
        lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > MAX_FUNCTION_LINES:
            found.append(f"{path.name}:{node.lineno} {node.name}(): {lines} lines")
    return found


def test_package_units_are_short():
    too_long = [
        hit for path in sorted((REPO / "scripts" / "ctc_qpcr").rglob("*.py")) for hit in _too_long(path)
    ]
    assert not too_long, f"longer than {MAX_FUNCTION_LINES}/{MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


def test_size_check_can_fail(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def short():\n    return 1\n\n\ndef long():\n" + "    x = 1\n" * 90)
    assert _too_long(probe) == ["probe.py:5 long(): 91 lines"]
    probe.write_text("x = 1\n" * 601)
    assert _too_long(probe) == ["probe.py: 601 lines"]
