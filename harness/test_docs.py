# SPDX-License-Identifier: MIT
"""The project's reference is its own, and every catalogue case cites it.

1. No copied prose.  The research notes the project was built from live
   outside the repository (../shared/reference, or $HVSIM_SHARED_REFERENCE).
   The repository restates them in its own words in docs/reference/.  This
   test splits every file of both into words and fails if any tracked text
   file of the repository shares a run of SHINGLE (10) consecutive words with
   any file of the shared reference.

   Words: the text is lower-cased; a word is a run of letters and digits,
   which may contain single inner `-`, `_` or `.` characters (`hv_sock`,
   `0x7fffffff`, `vhost-user`, `1.3`).  Everything else (punctuation,
   markdown markup, table bars, backticks) separates words and is ignored.
   A URL (http:// or https:// up to white space or a closing bracket or
   quote) is one word: it is an address, not prose, and a source list must
   be able to give it exactly.

   One exception: a run in which *every* word is a value (a number, a hex
   constant or a piece of a GUID, i.e. only hex digits and inner `-_.`, with
   at least one decimal digit, optionally prefixed by 0x; or a byte written
   as two hex digits, like `db`) is not reported.
   Constants must be copied exactly, so a list of values may repeat; a run
   that contains any ordinary word may not.  (A whole GUID is one word.)

   And one list of exceptions, VERBATIM: texts that are an interface and must
   be reproduced word for word (Windows' own message text for an error code,
   which libhvsim returns as FormatMessage does).  A run is not reported if it
   lies inside one of them.  Keep the list short; prose never belongs there.

   Not checked: binary files, bench/baseline.json (measured numbers) and
   sim/fuzz/corpus/ (fuzzer inputs).  If the shared folder is absent the test
   is skipped with that reason.

2. Every catalogue case cites the repository.  Each case in
   conformance/cases/*.c has a `.source` string.  The citation format is
   described in docs/reference/README.md ("Citation format"); in short, parts
   separated by `;`, each part

       PATH[#anchor | :symbol] [SECTION[, SECTION]...] [TAGS] [(NOTE)]

   PATH is a tracked file of the repository.  SECTION is a section number
   (`4.2`, `0`) that must be the number a markdown heading of PATH starts
   with.  `#anchor` is a GitHub-style anchor of a markdown heading of PATH
   (`README.md#emulation-choices`).  `:symbol` names a function or definition
   that must occur in a C or Python PATH.  TAGS are source tags like `[S36]`,
   each of which must occur in PATH.  NOTE is free text in parentheses and may
   follow any element.  Anything else is an error.  The case files are run
   through the C preprocessor (cc -E), so macros such as SRC_PAUSE are
   expanded exactly as the compiler sees them.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHINGLE = 10

WORD = re.compile(r"https?://[^\s)>\]`'\"]+|[a-z0-9]+(?:[-_.][a-z0-9]+)*")
VALUE = re.compile(r"(?:0x)?[0-9a-f]+(?:[-_.][0-9a-f]+)*")

NOT_CHECKED_FILES = {"bench/baseline.json"}

# Texts copied on purpose: see the module docstring.
VERBATIM = (
    # FormatMessage(WSAETIMEDOUT), returned by hvsim_strerror (sim/include/hvsim/hvsim.h)
    "A connection attempt failed because the connected party did not properly respond after a period of "
    "time, or established connection failed because connected host has failed to respond.",
)
NOT_CHECKED_DIRS = ("sim/fuzz/corpus/",)


# ---- 1. shared runs of words --------------------------------------------------------------------

def shared_reference_dir():
    env = os.environ.get("HVSIM_SHARED_REFERENCE")
    return Path(env) if env else ROOT.parent / "shared" / "reference"


def words(text):
    """[(word, line number)] of a text, by the rule in the module docstring."""
    out = []
    for lineno, line in enumerate(text.lower().splitlines(), 1):
        out.extend((m.group(0), lineno) for m in WORD.finditer(line))
    return out


def is_value(word):
    return VALUE.fullmatch(word) is not None and (any(c.isdigit() for c in word) or len(word) == 2)


def shingles(ws):
    """{tuple of SHINGLE words: line of its first word} (first occurrence)."""
    out = {}
    for i in range(len(ws) - SHINGLE + 1):
        key = tuple(w for w, _ in ws[i:i + SHINGLE])
        out.setdefault(key, ws[i][1])
    return out


def _verbatim_runs():
    out = set()
    for t in VERBATIM:
        ws = [w for w, _ in words(t)]
        out.update(tuple(ws[i:i + SHINGLE]) for i in range(len(ws) - SHINGLE + 1))
    return out


VERBATIM_RUNS = _verbatim_runs()


def reportable(run):
    return not all(is_value(w) for w in run) and run not in VERBATIM_RUNS


def shared_runs(text, reference):
    """[(line, run, where in reference)] for each run of `text` found in `reference`
    ({run: (file name, line)}); overlapping hits are merged into their first run."""
    hits = []
    ws = words(text)
    last = -SHINGLE
    for i in range(len(ws) - SHINGLE + 1):
        run = tuple(w for w, _ in ws[i:i + SHINGLE])
        if run in reference and reportable(run) and i >= last + SHINGLE:
            hits.append((ws[i][1], " ".join(run), reference[run]))
            last = i
    return hits


def tracked_text_files():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True,
                         capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, out):
        if rel in NOT_CHECKED_FILES or rel.startswith(NOT_CHECKED_DIRS):
            continue
        path = ROOT / rel
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        try:
            yield rel, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


@pytest.fixture(scope="module")
def reference_shingles():
    ref = shared_reference_dir()
    if not ref.is_dir():
        pytest.skip(f"the shared reference folder {ref} is absent (set HVSIM_SHARED_REFERENCE)")
    table = {}
    files = sorted(p for p in ref.rglob("*") if p.is_file())
    if not files:
        pytest.skip(f"the shared reference folder {ref} holds no files")
    for p in files:
        for run, line in shingles(words(p.read_text(encoding="utf-8", errors="replace"))).items():
            table.setdefault(run, (p.name, line))
    return table


def test_no_run_of_words_shared_with_the_shared_reference(reference_shingles):
    problems = []
    for rel, text in tracked_text_files():
        for line, run, (ref_file, ref_line) in shared_runs(text, reference_shingles):
            problems.append(f"{rel}:{line}: \"{run}\" (also in {ref_file}:{ref_line})")
    assert not problems, (f"{len(problems)} run(s) of {SHINGLE} words shared with the shared reference "
                          "(reword them):\n" + "\n".join(problems))


def test_shingle_rule_self_check():
    ref = shingles(words("The quick brown fox jumps over the lazy dog near the river bank today."))
    assert shared_runs("Note: the QUICK brown fox -- jumps over *the* lazy `dog` near the river.", ref)
    assert not shared_runs("The quick brown fox leaps over the lazy dog near the river bank today.", ref)
    values = ("90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd a42e7cda-d03f-480c-9cc2-a4de20abb878 0x2000 16 24 "
              "89 8b db 90 35")
    assert len(words(values)) == SHINGLE
    assert not shared_runs(values, shingles(words(values)))  # values only: allowed
    mixed = values.replace("0x2000", "zero")
    assert shared_runs(mixed, shingles(words(mixed)))  # one ordinary word: reported


# ---- 2. citations of the catalogue ---------------------------------------------------------------

C_STRING = r'"(?:[^"\\\n]|\\.)*"'
STRINGS = re.compile(r"(?:%s\s*)+" % C_STRING)
SECTION = re.compile(r"\d+(?:\.\d+)*")
TAG = re.compile(r"\[(S\d+[a-z]?)\]")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def c_concat(literals):
    return "".join(bytes(s[1:-1], "utf-8").decode("unicode_escape")
                   for s in re.findall(C_STRING, literals))


def catalogue_sources():
    """[(file, case id, source)] of every case of conformance/cases/*.c, after cc -E."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler to preprocess the case files")
    out = []
    for f in sorted((ROOT / "conformance" / "cases").glob("*.c")):
        pp = subprocess.run([cc, "-E", "-P", "-D_GNU_SOURCE", "-I", str(ROOT / "sim/include"),
                             "-I", str(ROOT / "sim/lib"), "-I", str(ROOT / "conformance"), str(f)],
                            check=True, capture_output=True, text=True).stdout
        ids = list(re.finditer(r"\.id\s*=\s*(%s)" % STRINGS.pattern, pp))
        for k, m in enumerate(ids):
            end = ids[k + 1].start() if k + 1 < len(ids) else len(pp)
            src = re.search(r"\.source\s*=\s*(%s)" % STRINGS.pattern, pp[m.end():end])
            out.append((f.relative_to(ROOT).as_posix(), c_concat(m.group(1)),
                        c_concat(src.group(1)) if src else None))
    return out


def tracked_paths():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True,
                         capture_output=True).stdout.decode().split("\0")
    return set(filter(None, out))


def anchor(title):
    """GitHub's anchor of a heading: lower-case, punctuation dropped, spaces to '-'."""
    t = re.sub(r"[`*_]", "", title.strip().lower())
    t = re.sub(r"[^\w\- ]", "", t)
    return t.replace(" ", "-")


def markdown_headings(text):
    heads, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        m = None if fence else HEADING.match(line)
        if m:
            heads.append(m.group(1))
    return heads


def strip_notes(s):
    """(s without its parenthesised notes, error or None); notes may nest."""
    out, depth = [], 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return s, "unbalanced ')'"
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return ("".join(out), "unbalanced '('") if depth else ("".join(out), None)


def split_parts(citation):
    """The parts of a citation: split at each `;` that is not inside a note."""
    parts, cur, depth = [], [], 0
    for ch in citation:
        depth += ch == "("
        depth -= ch == ")" and depth > 0
        if ch == ";" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def resolve(citation, root=ROOT, paths=None):
    """The problems of one citation ([] if every part resolves), by the format above."""
    paths = tracked_paths() if paths is None else paths
    problems = []
    if not citation or not citation.strip():
        return ["empty citation"]
    for part in split_parts(citation):
        part = part.strip()
        body, err = strip_notes(part)
        if err:
            problems.append(f"{part!r}: {err}")
            continue
        tags = TAG.findall(body)
        body = TAG.sub(" ", body)
        tokens = body.replace(",", " , ").split()
        if not tokens:
            problems.append(f"{part!r}: no repository path")
            continue
        target, rest = tokens[0], tokens[1:]
        path, symbol, frag = target, None, None
        if "#" in target:
            path, frag = target.split("#", 1)
        elif ":" in target:
            path, symbol = target.split(":", 1)
        if path not in paths or not (root / path).is_file():
            problems.append(f"{part!r}: {path} is not a file of the repository")
            continue
        text = (root / path).read_text(encoding="utf-8", errors="replace")
        is_md = path.endswith(".md")
        heads = markdown_headings(text) if is_md else []
        numbers = {h.split()[0].rstrip(".") for h in heads if h.split() and SECTION.fullmatch(h.split()[0].rstrip("."))}
        if frag is not None:
            if not is_md or frag not in {anchor(h) for h in heads}:
                problems.append(f"{part!r}: {path} has no heading with the anchor #{frag}")
        if symbol is not None:
            if is_md or not re.search(r"(?:\bdef\s+|\bclass\s+|\b)%s\s*\(|#define\s+%s\b|\b%s\s*=" %
                                      ((re.escape(symbol),) * 3), text):
                problems.append(f"{part!r}: {path} has no function or definition {symbol}")
        expect_section = True
        for tok in rest:
            if tok == ",":
                expect_section = True
                continue
            if SECTION.fullmatch(tok) and expect_section:
                if not is_md:
                    problems.append(f"{part!r}: section {tok} given for {path}, which is not markdown")
                elif tok not in numbers:
                    problems.append(f"{part!r}: {path} has no section {tok}")
                expect_section = False
                continue
            problems.append(f"{part!r}: unexpected {tok!r} (put free text in parentheses)")
            break
        for t in tags:
            if not re.search(r"(\[|\*\*|\b)%s(\]|\*\*|\b)" % re.escape(t), text):
                problems.append(f"{part!r}: source tag [{t}] does not occur in {path}")
    return problems


def test_every_case_cites_a_section_of_the_repository():
    paths = tracked_paths()
    cases = catalogue_sources()
    assert len(cases) > 50, f"only {len(cases)} cases found: did the format of conformance/cases change?"
    problems = []
    for f, cid, src in cases:
        if src is None:
            problems.append(f"{cid} ({f}): no .source")
            continue
        for p in resolve(src, paths=paths):
            problems.append(f"{cid} ({f}): citation {src!r}: {p}")
    assert not problems, "citations that do not resolve:\n" + "\n".join(problems)


def test_other_source_strings_resolve():
    """conformance/run.py makes records of its own with a `source`; those must resolve too."""
    paths = tracked_paths()
    problems = []
    for rel in ("conformance/run.py", "conformance/report.py"):
        text = (ROOT / rel).read_text()
        for m in re.finditer(r'"source":\s*"([^"]*)"', text):
            problems += [f"{rel}: {m.group(1)!r}: {p}" for p in resolve(m.group(1), paths=paths)]
    assert not problems, "\n".join(problems)


def test_resolver_rejects_bad_citations(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ref.md").write_text("# Title\n\n## 4. Behaviour\n### 4.2 Errors [S36]\n"
                                              "## Emulation choices\n```\n# 9.9 not a heading\n```\n")
    (tmp_path / "lib.c").write_text("static int settle(int x)\n{\n    return x;\n}\n")
    paths = {"docs/ref.md", "lib.c"}

    def ok(c):
        return resolve(c, root=tmp_path, paths=paths) == []

    assert ok("docs/ref.md 4.2 [S36]")
    assert ok("docs/ref.md 4, 4.2 (the error matrix) [S36]; lib.c:settle; lib.c")
    assert ok("docs/ref.md#emulation-choices (a note; a semicolon inside a note does not split)")
    assert not ok("docs/ref.md 4.3")                     # no such section
    assert not ok("docs/ref.md 9.9")                     # only inside a code fence
    assert not ok("docs/ref.md 4.2 [S37]")               # tag not in the file
    assert not ok("docs/other.md 4.2")                   # no such file
    assert not ok("hvsock-semantics.md 4.2 [S36]")       # the old, outside name
    assert not ok("docs/ref.md 4.2 the error matrix")    # free text outside parentheses
    assert not ok("docs/ref.md#no-such-heading")
    assert not ok("lib.c:missing")
    assert not ok("lib.c 4.2")                           # sections only for markdown
    assert not ok("docs/ref.md 4.2 (unclosed")
    assert not ok("")
    # and a bad citation is reported with its case id
    probs = [f"case.x: {p}" for p in resolve("Winsock send(), not in the reference", root=tmp_path, paths=paths)]
    assert probs and probs[0].startswith("case.x: ")
