"""kubesim: a local Kubernetes API server and node for end-to-end tests (see README, testing)."""
