"""kubectl-preevy: a Docker Compose project as a preview environment in one pod of your cluster."""

from kubectl_preevy import deferred

__version__ = "0.1.0"

# dataclasses imports inspect (~4 ms of every run) only to write a docstring for a dataclass that has none:
# ours all have one (tests/unit/test_deferred.py), so it is imported only where something else uses it
deferred.defer("inspect")
# shutil (argparse's help formatter, plumbum) imports these only to know whether archives can use them, and
# urllib.parse (pathlib, plumbum) ipaddress for the rare URL with an [IPv6] host: ~1.5 ms of a start without
# site (which has often imported them for a .pth file); whatever does use one gets the real module
deferred.defer("bz2", "lzma", "zlib", "ipaddress")
