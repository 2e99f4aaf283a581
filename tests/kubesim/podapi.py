"""STUB (replaced by the node half): pods/exec, pods/portforward and pods/log routes."""


def add_pod_routes(app, cluster):
    return None
