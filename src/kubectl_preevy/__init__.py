"""kubectl-preevy: a Docker Compose project as a preview environment in one pod of your cluster."""

from kubectl_preevy import deferred

__version__ = "0.1.0"

# dataclasses imports inspect (~4 ms of every run) only to write a docstring for a dataclass that has none:
# ours all have one (tests/unit/test_deferred.py), so it is imported only where something else uses it
deferred.defer("inspect")
