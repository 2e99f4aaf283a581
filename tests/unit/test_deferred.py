"""deferred.py: stand-ins for modules imported but not used on the hot paths; each is the real module at its
first use, by whatever form of import. Each probe runs in a fresh interpreter (pytest imports them all)."""

import os
import site
import subprocess
import sys

from tests.unit.fresh import SRC, run_fresh


def probe(code: str) -> list[str]:
    return run_fresh(code).split()


def test_a_deferred_module_loads_at_its_first_use_by_any_form_of_import():
    assert probe(
        "import sys; from kubectl_preevy import deferred\n"
        "deferred.defer('json', 'email.mime', 'colorsys')\n"
        "import json, colorsys; print(type(sys.modules['json']).__name__, 'json.decoder' in sys.modules)\n"
        "print(json.dumps([1]), type(sys.modules['json']).__name__, json.loads('[2]'))\n"
        "from colorsys import rgb_to_hsv; print(rgb_to_hsv(0, 0, 0)[2])\n"
        "from email.mime import text; print(text.MIMEText('x').get_payload())\n"
    ) == ["Deferred", "False", "[1]", "module", "[2]", "0", "x"]


def test_asking_whether_a_deferred_module_is_a_package_does_not_load_it():
    assert probe(
        "import sys; from kubectl_preevy import deferred\n"
        "deferred.defer('email.mime', 'colorsys')\n"
        "mime, colorsys = sys.modules['email.mime'], sys.modules['colorsys']\n"
        "print(mime.__path__[0].endswith('mime'), hasattr(colorsys, '__path__'))\n"
        "print(type(sys.modules['email.mime']).__name__, type(sys.modules['colorsys']).__name__)\n"
    ) == ["True", "False", "Deferred", "Deferred"]


def test_a_placeholder_is_bound_by_a_from_import_only_within_its_block():
    assert probe(
        "import sys; from kubectl_preevy import deferred\n"
        "deferred.defer('colorsys')\n"
        "with deferred.placeholders('colorsys', 'rgb_to_hsv'):\n"
        "    from colorsys import rgb_to_hsv\n"
        "print(rgb_to_hsv, type(sys.modules['colorsys']).__name__)\n"
        "from colorsys import rgb_to_hsv; print(rgb_to_hsv(0, 0, 0)[2])\n"
    ) == ["None", "Deferred", "0"]


def test_plumbum_is_loaded_without_its_colors_which_still_work_when_used():
    """plumbum's __init__ binds its color library as `plumbum.colors`: it is loaded only when that is used,
    by attribute or by import, and every form gives the same object."""
    assert probe(
        "import sys; from kubectl_preevy import process; process.command(['true'])\n"
        "print('plumbum.colorlib.styles' in sys.modules)\n"
        "import plumbum; print(type(plumbum.colors.red).__name__, 'plumbum.colorlib.styles' in sys.modules)\n"
        "from plumbum import colors; from plumbum.colorlib import ansicolors; import plumbum.colorlib as lib\n"
        "print(colors is ansicolors is lib.ansicolors is plumbum.colors, type(colors).__name__)\n"
        "print(hasattr(plumbum, 'nothing'), plumbum.local['echo']('ok').strip())\n"
    ) == ["False", "ANSIStyle", "True", "True", "StyleFactory", "False", "ok"]


def test_plumbum_is_loaded_without_its_remote_machines_which_are_plumbums_own_when_used():
    """plumbum's packages bind its remote and SSH machines (`plumbum.SshMachine`): their modules are loaded
    only when one is used, by attribute or by import, and every form gives the same class."""
    assert probe(
        "import sys; from kubectl_preevy import process; process.command(['true'])\n"
        "names = ('plumbum.machines.remote', 'plumbum.machines.ssh_machine')\n"
        "print(*(type(sys.modules[name]).__name__ for name in names))\n"
        "import plumbum, plumbum.machines; ssh = plumbum.SshMachine\n"
        "from plumbum.machines.ssh_machine import SshMachine, PuttyMachine\n"
        "from plumbum.machines.remote import BaseRemoteMachine, RemoteCommand\n"
        "import plumbum.machines.remote as remote\n"
        "print(ssh is SshMachine is plumbum.machines.SshMachine, issubclass(SshMachine, BaseRemoteMachine))\n"
        "print(plumbum.PuttyMachine is PuttyMachine, plumbum.BaseRemoteMachine is remote.BaseRemoteMachine)\n"
        "print(plumbum.machines.RemoteCommand is RemoteCommand, hasattr(plumbum.machines, 'nothing'))\n"
        "print(*(type(sys.modules[name]).__name__ for name in names))\n"
        "print((plumbum.local['echo']['a b'] | plumbum.local['wc']['-c'])().strip())\n"
    ) == ["Deferred", "Deferred", "True", "True", "True", "True", "True", "False", "module", "module", "4"]


def test_plumbum_colors_imported_first_are_plumbums_own():
    assert probe(
        "from plumbum.colorlib import ansicolors\n"
        "from kubectl_preevy import process; process.command(['true'])\n"
        "import plumbum; print(plumbum.colors is ansicolors)\n"
    ) == ["True"]


def test_ls_and_down_import_no_inspect_and_it_works_when_used():
    """dataclasses imports inspect only to write a missing docstring: the dataclasses these commands load have
    theirs, so inspect (~4 ms) is not loaded; anything that does use it gets the real module."""
    assert probe(
        "import sys; from kubectl_preevy import cli, process\n"
        "import kubectl_preevy.commands.ls, kubectl_preevy.commands.down, kubectl_preevy.lock\n"
        "import kubectl_preevy.lifetime, kubectl_preevy.console, kubectl_preevy.prcomment\n"
        "process.command(['true'])\n"
        "print(type(sys.modules['inspect']).__name__, 'ast' in sys.modules)\n"
        "import inspect; print(inspect.signature(lambda a: a), type(sys.modules['inspect']).__name__)\n"
    ) == ["Deferred", "False", "(a)", "module"]


def test_ls_starts_its_listing_without_permissions_datetime_or_compiled_patterns_of_ours():
    """What `ls` imports before its kubectl runs: no RBAC rule matching, no dates (lifetime is imported while
    kubectl lists), and no pattern of ours compiled (re compiles each at its first use)."""
    assert probe(
        "import re, sys; from kubectl_preevy import cli; import kubectl_preevy.commands.ls\n"
        "print('kubectl_preevy.permissions' in sys.modules, 'datetime' in sys.modules)\n"
        "ours = [m for name, m in sys.modules.items() if name.startswith('kubectl_preevy.')]\n"
        "print(len(ours) > 10, [n for m in ours for n, v in vars(m).items() if isinstance(v, re.Pattern)])\n"
    ) == ["False", "False", "True", "[]"]


def test_plumbum_is_imported_once_when_threads_run_their_first_programs_together():
    """`down` takes the lock while it finds the environment: two threads run the first programs at once."""
    assert probe(
        "import threading; from kubectl_preevy import process\n"
        "barrier = threading.Barrier(4); failures = []\n"
        "def first():\n"
        "    barrier.wait()\n"
        "    try: process.command(['true'])\n"
        "    except Exception as err: failures.append(repr(err))\n"
        "threads = [threading.Thread(target=first) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "import plumbum; print(failures, type(plumbum.colors).__name__)\n"
    ) == ["[]", "StyleFactory"]


def test_traceback_is_deferred_with_plumbum_and_an_internal_errors_log_still_has_it():
    """logging (which plumbum uses) imports traceback only to print a failed handler's exception."""
    assert probe(
        "import sys; from kubectl_preevy import process; process.command(['true'])\n"
        "print(type(sys.modules['traceback']).__name__, 'tokenize' in sys.modules)\n"
        "from kubectl_preevy import runlog\n"
        "try:\n"
        "    raise ValueError('bad')\n"
        "except ValueError as err:\n"
        "    text = runlog.log_text(['ls'], 'internal error', [], err)\n"
        "print('Traceback (most recent call last):' in text, text.rstrip().endswith('ValueError: bad'))\n"
    ) == ["Deferred", "False", "True", "True"]


def test_archive_compressors_and_ipaddress_are_deferred_and_work_when_used():
    """shutil imports bz2, lzma and zlib only to know whether archives can use them, urllib.parse ipaddress for
    an [IPv6] host: loaded at their first use. Started without site, as the launcher is (a .pth file may have
    imported them already)."""
    code = (
        "import sys; from kubectl_preevy import process; import shutil, urllib.parse; process.command(['true'])\n"
        "names = ('bz2', 'lzma', 'zlib', 'ipaddress')\n"
        "print(*(type(sys.modules[name]).__name__ for name in names if name in sys.modules))\n"
        "import gzip, bz2, lzma, ipaddress\n"
        "print(gzip.decompress(gzip.compress(b'z')).decode(), bz2.decompress(bz2.compress(b'b')).decode())\n"
        "print(lzma.decompress(lzma.compress(b'l')).decode(), urllib.parse.urlsplit('http://[::1]:8/').port)\n"
        "print(ipaddress.ip_address('::1').is_loopback, shutil.get_archive_formats()[0][0])\n"
    )
    path = os.pathsep.join([str(SRC), *site.getsitepackages()])
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=path),
    )
    assert result.stdout.split() == ["Deferred"] * 4 + ["z", "b", "l", "8", "True", "bztar"]
