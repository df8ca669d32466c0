# SPDX-License-Identifier: MIT
"""Man pages and the installed binaries (issue 17): every binary `make
install` installs answers --version (the one version) and --help (exit 0)
from the installed tree, has a man page there that renders with `man -l`
without warnings, and that page names every option its --help lists (and,
for hvsimctl, every command).

Run with: /usr/bin/python3 -m pytest harness/test_man.py (HVSIM_BIN: the build's binaries).
"""
import os
import re
import shutil
import subprocess

import pytest

from test_cli import version
from test_install import REPO, installed  # noqa: F401 (the fixture)


def inst_bins():
    mk = (REPO / "Makefile").read_text()
    return re.search(r"^INST_BINS := (.*)$", mk, re.M).group(1).split()


INSTALLED = inst_bins()


def test_every_installed_binary_is_checked():
    assert {"hvsimd", "hvsimctl", "hvcat", "hvsim-run", "hvsim-hybrid", "hvsim-vhost"} <= set(INSTALLED)
    for name in INSTALLED:
        assert (REPO / "sim" / "man" / f"{name}.1").exists(), f"no man page sim/man/{name}.1"


def render(page):
    if shutil.which("man") is None:
        pytest.fail("man is missing: sh ci/deps.sh man-db (make test-deps)")
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    r = subprocess.run(["man", "--warnings", "-l", "-P", "cat", str(page)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"{page}: {r.stderr}"
    # Overstrike (bold, underline) removed: the words as a reader sees them.
    return re.sub(r".\x08", "", r.stdout)


def help_options(text):
    """The long options a --help text names, and its short ones (-l, -v...)."""
    longs = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    shorts = set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", text))
    return longs | shorts


@pytest.mark.parametrize("name", INSTALLED)
def test_installed_binary_version_help_and_man_page(installed, name):  # noqa: F811
    exe = installed / "usr/bin" / name
    env = dict(os.environ, LD_LIBRARY_PATH=str(installed / "usr/lib"))
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stdout == f"{name} (hvsim) {version()}\n", r.stdout + r.stderr
    h = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert h.returncode == 0 and h.stdout.startswith("usage: "), h.stderr
    page = installed / "usr/share/man/man1" / f"{name}.1"
    assert page.exists(), f"make install did not install {page}"
    text = render(page)
    assert f"hvsim {version()}" in text, "the page carries the one version"
    words = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][a-z0-9-]*)", text))
    missing = sorted(o for o in help_options(h.stdout) if o not in words)
    assert not missing, f"{name}.1 does not name {missing}, which {name} --help lists"


def test_hvsimctl_man_page_names_every_command(installed):  # noqa: F811
    env = dict(os.environ, LD_LIBRARY_PATH=str(installed / "usr/lib"))
    h = subprocess.run([str(installed / "usr/bin/hvsimctl"), "--help"], capture_output=True, text=True, env=env)
    cmds = re.findall(r"^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?: [A-Z\[]|$)", h.stdout, re.M)
    assert len(cmds) > 10
    page = render(installed / "usr/share/man/man1/hvsimctl.1")
    assert "\nCOMMANDS\n" in page
    text = " ".join(page.split("\nCOMMANDS\n", 1)[1].split("\nEXIT STATUS\n", 1)[0].split())
    # vm start|pause|resume|reset|off share one entry.
    missing = [c for c in cmds if c not in text and
               not (" " in c and re.search(rf"\b{c.split()[0]} [a-z|]*\b{c.split()[1]}\b", text))]
    assert not missing, f"hvsimctl.1 does not name {missing}"


def test_uninstall_removes_the_man_pages(tmp_path):
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install", f"DESTDIR={tmp_path}",
                        "PREFIX=/usr", f"B={os.environ.get('HVSIM_BIN') and os.path.dirname(os.environ['HVSIM_BIN'].rstrip('/')) or 'build'}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "usr/share/man/man1").iterdir()) == sorted(f"{n}.1" for n in INSTALLED)
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "uninstall", f"DESTDIR={tmp_path}",
                        "PREFIX=/usr"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "usr/share/man/man1").iterdir())
