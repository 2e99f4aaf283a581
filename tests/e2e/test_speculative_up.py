"""A no-change re-`up` copies the files (and stores the model) while the environment is proved unchanged
(an annotate at the resourceVersion seen). When the proof fails (the StatefulSet changed: Conflict), what
was done meanwhile is redone by the full path: the files served are the new ones, the copy is said once."""

from tests.e2e import hello_project, preevy, remote, serves_then_down

UP_TIMEOUT = 180
# the API server's words when a write at an older resourceVersion meets a changed object
MODIFIED = (
    'Operation cannot be fulfilled on statefulsets.apps "x": the object has been modified; please apply '
    "your changes to the latest version and try again"
)


def test_a_conflict_after_the_speculative_copy_redoes_it_and_serves_the_new_files(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["--id", "spec", "-n", namespace]
    preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT, check=True)
    page = b"<h1>changed while the proof was under way</h1>\n"
    (project / "site" / "index.html").write_bytes(page)

    # the no-change proof (the first patch of the StatefulSet) answers Conflict
    kubesim.fault_requests("patch", "statefulsets.apps", 409, 1, message=MODIFIED, dry_run=False)
    again = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert kubesim.clear_faults()["requests"] == []  # the proof met the Conflict
    lines = again.stderr.splitlines()
    assert len([line for line in lines if line.startswith("> copying files into")]) == 1, again.stderr
    assert len([line for line in lines if line.startswith("synced ")]) == 1, again.stderr

    pod = next(line for line in lines if line.startswith("> copying files into")).split()[-1].split(":")[0]
    copied = remote(kubesim, namespace, pod, "cat", "/var/lib/preevy/projects/hello/relative/site/index.html")
    assert copied.stdout.encode() == page
    serves_then_down(project, flags, env, page)


def test_an_unchanged_environment_is_copied_to_before_compose_up(kubesim, namespace, env, tmp_path):
    """The path without a conflict: the copy's lines come after the proof's, in the order a user reads."""
    project = hello_project(tmp_path / "hello")
    flags = ["--id", "spec2", "-n", namespace]
    preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=UP_TIMEOUT, check=True)
    (project / "site" / "new.html").write_text("new\n")
    again = preevy("up", *flags, cwd=project, env=env, timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    steps = [line for line in again.stderr.splitlines() if line.startswith(("> ", "synced "))]
    assert [s.split()[1] for s in steps[:4]] == ["environment", "copying", "1", "docker"], steps
    assert steps[2].startswith("synced 1 file (4 B)"), steps
    pod = steps[1].split()[-1].split(":")[0]
    copied = remote(kubesim, namespace, pod, "cat", "/var/lib/preevy/projects/hello/relative/site/new.html")
    assert copied.stdout == "new\n"
    preevy("down", *flags, cwd=project, env=env, check=True)
