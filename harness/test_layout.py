# SPDX-License-Identifier: MIT
"""The shape the architecture promises (docs/architecture.md), checked:

  - the release binaries carry no test hook: `strings` and `nm` on hvsimd,
    libhvsim.so and libhvsim-preload.so find no mutant name (from
    sim/proto/include/hvproto/mutants.h), no HVSIM_MUTANT and no HVSIM_TEST_;
  - only sim/lib includes the library's internal header;
  - no function in sim/daemon, sim/lib or sim/proto is longer than 80 lines
    (ci/fnlen.py).

Each check has a positive control, so that a matcher that finds nothing
cannot pass for a clean product.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN", REPO / "build" / "bin"))
LIB = BIN.parent / "lib"
MUTANTS_H = REPO / "sim" / "proto" / "include" / "hvproto" / "mutants.h"
RELEASE = [BIN / "hvsimd", LIB / "libhvsim.so", LIB / "libhvsim-preload.so"]
FORBIDDEN_PREFIXES = ("HVSIM_TEST_", "HVSIM_MUTANT", "hvsim__mutant")


def mutant_names():
    names = re.findall(r'^\s*X\(\w+, "([^"]+)"', MUTANTS_H.read_text(), re.M)
    assert len(names) >= 10, f"{MUTANTS_H}: found only {len(names)} mutant rows; has the table's form changed?"
    return names


def texts(path):
    """Every printable string and every symbol name of a binary."""
    out = subprocess.run(["strings", "-a", "-n", "4", str(path)], capture_output=True, text=True, check=True).stdout
    for args in (["nm", "-a"], ["nm", "-D"]):
        r = subprocess.run(args + [str(path)], capture_output=True, text=True)
        if r.returncode == 0:
            out += r.stdout
    return out


def hooks_in(text, names):
    found = [n for n in names if n in text]
    found += [p for p in FORBIDDEN_PREFIXES if p in text]
    return found


@pytest.mark.parametrize("path", RELEASE, ids=lambda p: p.name)
def test_release_binary_has_no_test_hook(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: make all")
    if "/mutant/" in str(path) or "/asan/" in str(path) or "/ubsan/" in str(path) or "/tsan/" in str(path):
        # A sanitizer build is a test build; the product is the plain one.
        pytest.skip("HVSIM_BIN names a test build; the release check applies to build/bin")
    found = hooks_in(texts(path), mutant_names())
    assert not found, f"{path} carries test hooks: {found}"


def test_hook_matcher_finds_hooks(tmp_path):
    """Positive control: an object that does carry the names is caught."""
    src = tmp_path / "hooked.c"
    names = mutant_names()
    src.write_text(f'const char *hook_a = "{names[0]}";\nconst char *hook_b = "HVSIM_TEST_SLOWDOWN";\n')
    obj = tmp_path / "hooked.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    found = hooks_in(texts(obj), names)
    assert names[0] in found and "HVSIM_TEST_" in found, found


def test_mutant_build_has_the_hooks():
    """When the mutant build is there (make conformance-mutants), its daemon
    knows the names: the release check is not passing for want of them."""
    mutant = REPO / "build" / "mutant" / "bin" / "hvsimd"
    if not mutant.exists():
        pytest.skip("no mutant build (make MUTANTS=1 all)")
    assert mutant_names()[0] in texts(mutant)


def includers(header_name, roots):
    pat = re.compile(r'^\s*#\s*include\s*[<"]([^>"]*)[>"]', re.M)
    hits = []
    for root in roots:
        for p in sorted((REPO / root).rglob("*")):
            if p.suffix not in (".c", ".h") or not p.is_file():
                continue
            for inc in pat.findall(p.read_text(errors="replace")):
                if Path(inc).name == header_name:
                    hits.append(p.relative_to(REPO))
    return hits


def test_only_the_library_includes_its_internal_header():
    hits = includers("internal.h", ["sim", "conformance", "examples", "vm-images"])
    assert hits, "no file includes internal.h at all: the check looks in the wrong place"
    outside = [str(h) for h in hits if not str(h).startswith("sim/lib/")]
    assert not outside, f"outside sim/lib: {outside}"


def test_no_function_longer_than_80_lines():
    files = sorted(str(p) for d in ("sim/daemon", "sim/lib", "sim/proto") for p in (REPO / d).glob("*.c"))
    r = subprocess.run(["/usr/bin/python3", str(REPO / "ci" / "fnlen.py"), "-n", "80"] + files,
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, f"functions over 80 lines:\n{r.stdout}{r.stderr}"


def test_fnlen_catches_a_long_function(tmp_path):
    src = tmp_path / "long.c"
    src.write_text("int f(void)\n{\n" + "    int x = 0;\n" * 81 + "    return 0;\n}\n")
    r = subprocess.run(["/usr/bin/python3", str(REPO / "ci" / "fnlen.py"), "-n", "80", str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "f:" in r.stdout, r.stdout + r.stderr


def test_tools_present():
    for tool in ("strings", "nm", "gcc"):
        assert shutil.which(tool), f"{tool} missing (binutils, gcc)"


def test_make_help_lists_every_target():
    phony = set()
    for m in re.finditer(r"^\.PHONY:((?:[^\n]*\\\n)*[^\n]*)", (REPO / "Makefile").read_text(), re.M):
        phony |= set(m.group(1).replace("\\\n", " ").split())
    assert {"all", "test", "conformance", "help"} <= phony, phony
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    listed = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("  make ")}
    assert phony <= listed, f"targets without a help line: {sorted(phony - listed)}"
    assert all(len(line.split()) > 2 for line in r.stdout.splitlines()), "a help line without a description"


def test_mutant_names_are_not_rule_ids():
    """The decision log prints rule ids (hvproto/rules.h) from the product, so
    a mutant named like a rule would be found in every release binary: each
    mutant is named after the wrong outcome it gives, never a rule id."""
    rules = re.findall(r'X\(\w+, "([^"]+)", "', (REPO / "sim/proto/include/hvproto/rules.h").read_text())
    assert rules, "no rule ids read: has the table's form changed?"
    clash = [m for m in mutant_names() if any(m in r for r in rules)]
    assert not clash, f"mutant names inside rule ids: {clash}"
