"""kubectl-preevy: a Docker Compose project as a preview environment in one pod of your cluster."""

__version__ = "0.1.0"
