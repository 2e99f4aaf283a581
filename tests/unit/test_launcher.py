"""The checkout's launcher (kubectl-preevy): started without site's .pth files, with site-packages added by
hand; site's whole set-up when a dependency is not found there. Each run has no kubectl on its PATH: a run
that got as far as looking for kubectl had plumbum (exit 3, MISSING_TOOL); one without it is an internal
error (exit 70)."""

import os
import pathlib
import subprocess
import sys

from kubectl_preevy.errors import ExitCode

LAUNCHER = pathlib.Path(__file__).resolve().parents[2] / "kubectl-preevy"
PTH_SAYS = "a .pth file ran"


def run_launcher(bin_dir: pathlib.Path, tmp_path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """The launcher run by its shebang (`env -S python3 -S`), with the python3 of bin_dir first on PATH, no
    kubectl there, and a user site-packages holding a .pth file that says it ran."""
    user_site = (
        tmp_path / "user" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    )
    user_site.mkdir(parents=True)
    (user_site / "says.pth").write_text(f"import sys; sys.stderr.write({PTH_SAYS!r} + '\\n')\n")
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    path = [str(bin_dir), *(p for p in ("/usr/bin", "/bin") if not (pathlib.Path(p) / "kubectl").exists())]
    env = {
        "PATH": os.pathsep.join(path),
        "PYTHONUSERBASE": str(tmp_path / "user"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
    }
    return subprocess.run(
        [str(LAUNCHER), "ls", "-n", "default"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_launcher_finds_its_dependencies_without_running_any_pth_file(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    result = run_launcher(bin_dir, tmp_path)
    assert result.returncode == ExitCode.MISSING_TOOL, result.stderr
    assert "kubectl" in result.stderr
    assert PTH_SAYS not in result.stderr


def test_a_dependency_outside_site_packages_gets_sites_whole_set_up(tmp_path):
    """A virtualenv with the system's site-packages: ours are not in its own, so site.main() runs (the
    system's site-packages, the user's and their .pth files), as a start without -S would have."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True
    )
    result = run_launcher(venv / "bin", tmp_path)
    assert result.returncode == ExitCode.MISSING_TOOL, result.stderr
    assert "kubectl" in result.stderr
    assert PTH_SAYS in result.stderr
