"""cli.py: how every way a command ends becomes an exit code, one `error:` line, an Error document
(-o json|yaml) and, for a failed program or a bug, a log file; the flags every command shares."""

import argparse
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from kubectl_preevy import cli, messages, options, process
from kubectl_preevy.errors import ExitCode, PreevyError

PYTHON = sys.executable


def args(output="table"):
    return argparse.Namespace(output=output)


def run(capsys, command, output="table", argv=("up",)):
    process.journal.reset(verbosity=0)
    code = cli._run(command, args(output), list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fail_with(error):
    def command(_args):
        raise error

    return command


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


def logs(tmp_path) -> list[pathlib.Path]:
    return sorted((tmp_path / "state" / "kubectl-preevy" / "logs").glob("*.log"))


@pytest.mark.parametrize("code", [ExitCode.FAILURE, ExitCode.USAGE, ExitCode.CLUSTER, ExitCode.REFUSED])
def test_a_preevy_error_is_its_exit_code_and_one_error_line(capsys, tmp_path, code):
    assert run(capsys, fail_with(PreevyError("it broke: do this", code))) == (
        int(code),
        "",
        "error: it broke: do this\n",
    )
    assert logs(tmp_path) == []  # no program failed: nothing to keep


def test_success_is_zero_and_none_counts_as_success(capsys):
    assert run(capsys, lambda _args: None)[0] == 0
    assert run(capsys, lambda _args: 0)[0] == 0


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_with_a_document_output_an_error_is_also_an_error_document_on_stdout(capsys, output):
    code, out, err = run(
        capsys, fail_with(PreevyError("namespace x does not exist", ExitCode.CLUSTER)), output
    )
    document = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert code == 4 and error_lines(err) == ["error: namespace x does not exist"]
    assert document == {
        "apiVersion": "kubectl-preevy/v1",
        "kind": "Error",
        "message": "namespace x does not exist",
        "exitCode": 4,
        "reason": "CLUSTER",
    }


def test_ctrl_c_is_130_with_how_to_continue(capsys):
    assert run(capsys, fail_with(KeyboardInterrupt())) == (130, "", f"error: {messages.INTERRUPTED}\n")


def test_an_unexpected_exception_is_70_one_line_naming_a_log_with_the_traceback_and_the_commands_run(
    capsys, tmp_path
):
    def buggy(_args):
        process.run(
            [PYTHON, "-c", "import sys; sys.stderr.write('line 1\\nline 2\\n'); sys.exit(3)", "--token=t0p"]
        )
        empty: dict[str, int] = {}
        return empty["missing"]

    code, out, err = run(capsys, buggy, argv=("up", "--token", "s3cret", "-n", "previews"))
    [line] = error_lines(err)
    [log] = logs(tmp_path)
    assert code == 70 and out == "" and "Traceback" not in err
    assert line == "error: " + messages.INTERNAL_ERROR.format(error="KeyError: 'missing'", log=log)
    text = log.read_text()
    assert "command: kubectl-preevy up --token REDACTED -n previews" in text
    assert "--token=REDACTED" in text and "(exit 3, " in text and "  | line 1\n  | line 2\n" in text
    assert "Traceback (most recent call last):" in text and 'return empty["missing"]' in text
    assert "s3cret" not in text and "t0p" not in text
    assert log.stat().st_mode & 0o777 == 0o600


def test_an_unexpected_exception_without_a_writable_log_directory_still_says_what_happened(
    capsys, tmp_path, monkeypatch
):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "a-file"))
    code, _out, err = run(capsys, fail_with(RuntimeError("boom")), output="json")
    [line] = error_lines(err)
    assert code == 70 and line.startswith(
        "error: internal error (a bug in kubectl-preevy): RuntimeError: boom (no log file: "
    )


def test_a_failure_after_a_failed_program_keeps_its_full_stderr_in_a_log_and_says_where(capsys, tmp_path):
    def command(_args):
        result = process.run(
            [
                PYTHON,
                "-c",
                "import sys; print('detail 1', file=sys.stderr); print('last', file=sys.stderr); sys.exit(1)",
            ]
        )
        raise PreevyError(f"it failed: {result.last_error_line()}", ExitCode.FAILURE)

    code, _out, err = run(capsys, command)
    [log] = logs(tmp_path)
    assert code == 1 and error_lines(err) == ["error: it failed: last"]
    assert f"{messages.LOG_WRITTEN.format(log=log)}\n" in err
    assert (
        "  | detail 1\n  | last\n" in log.read_text() and "outcome: error: it failed: last" in log.read_text()
    )


def test_bad_input_writes_no_log_even_after_a_failed_program(capsys, tmp_path):
    def command(_args):
        process.run([PYTHON, "-c", "raise SystemExit(1)"])
        raise PreevyError("bad flag", ExitCode.USAGE)

    assert run(capsys, command)[0] == 2 and logs(tmp_path) == []


def test_only_the_last_logs_are_kept(capsys, tmp_path):
    from kubectl_preevy import runlog

    for _ in range(runlog.MAX_LOGS + 3):
        run(capsys, fail_with(RuntimeError("again")))
    assert len(logs(tmp_path)) == runlog.MAX_LOGS


def test_a_usage_error_with_o_json_is_an_error_document_too(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["version", "-o", "json", "--bogus"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert json.loads(out)["kind"] == "Error" and json.loads(out)["exitCode"] == 2
    [line] = error_lines(err)
    assert line.startswith("error: unrecognized arguments: --bogus (see `")


def test_o_yaml_prints_the_same_document_as_o_json(capsys):
    assert cli.main(["version", "-o", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert cli.main(["version", "-o", "yaml"]) == 0
    assert (
        yaml.safe_load(capsys.readouterr().out)
        == as_json
        == {
            "apiVersion": "kubectl-preevy/v1",
            "kind": "Version",
            "version": as_json["version"],
        }
    )


@pytest.mark.parametrize(
    ("argv", "output"),
    [
        (["up", "-o", "yaml"], "yaml"),
        (["up", "-ojson"], "json"),
        (["up", "--output=json"], "json"),
        (["up", "--output", "yaml"], "yaml"),
        (["up"], None),
    ],
)
def test_the_output_format_is_known_before_parsing(argv, output):
    assert cli.requested_output(argv) == output


def test_verbose_counts_before_and_after_the_command():
    parser = cli.build_parser("kubectl preevy")
    parsed = parser.parse_args(["-v", "up", "-vv"])
    assert (parsed.global_verbose, parsed.verbose) == (1, 2)
    for argv in (["ls", "-v"], ["profile", "config", "set", "a=b", "-v"], ["template", "--verbose"]):
        assert parser.parse_args(argv).verbose == 1


def test_every_cluster_command_takes_kubectls_connection_flags_and_hints_redact_the_token():
    parser = cli.build_parser("kubectl preevy")
    connection_flags = [
        "--as", "dev", "--as-group", "a", "--as-group", "b", "--token", "s3cret", "-s", "https://k:6443",
        "--user", "u", "--cluster", "c", "--request-timeout", "1m30s", "--certificate-authority", "/ca.crt",
        "--insecure-skip-tls-verify",
    ]  # fmt: skip
    for command in (
        ["up"],
        ["down"],
        ["connect"],
        ["ls"],
        ["init"],
        ["profile", "ls"],
        ["profile", "rm", "x"],
    ):
        connection = options.Connection.from_args(parser.parse_args([*command, *connection_flags]))
        assert connection == options.Connection(
            as_user="dev",
            as_groups=("a", "b"),
            token="s3cret",
            server="https://k:6443",
            user="u",
            cluster="c",
            request_timeout="1m30s",
            certificate_authority="/ca.crt",
            insecure_skip_tls_verify=True,
        )
    opts = options.Options(None, None, "ctx", None, True, None, 5.0, {}, connection)
    assert options.cluster_flags(opts, namespace="previews") == [
        "--context=ctx",
        "--namespace=previews",
        "--as=dev",
        "--as-group=a",
        "--as-group=b",
        "--token=REDACTED",
        "--server=https://k:6443",
        "--user=u",
        "--cluster=c",
        "--request-timeout=1m30s",
        "--certificate-authority=/ca.crt",
        "--insecure-skip-tls-verify=true",
    ]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--request-timeout", "1h30"], "invalid --request-timeout '1h30'"),
        (["--insecure-skip-tls-verify=maybe"], "invalid --insecure-skip-tls-verify='maybe'"),
    ],
)
def test_bad_connection_flag_values_are_usage_errors(flag, message):
    parsed = cli.build_parser("kubectl preevy").parse_args(["ls", *flag])
    with pytest.raises(PreevyError) as raised:
        options.Connection.from_args(parsed)
    assert raised.value.exit_code == ExitCode.USAGE and raised.value.message.startswith(message)


def test_a_reader_that_goes_away_is_no_error_and_no_traceback(tmp_path):
    launcher = pathlib.Path(__file__).resolve().parents[2] / "kubectl-preevy"
    proc = subprocess.Popen(
        [PYTHON, str(launcher), "template"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it writes: `kubectl preevy template | head -0`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 1 and stderr == "" and not list(tmp_path.rglob("*.log"))


def _command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_only_the_command_that_runs_gets_its_parser_built_and_it_is_the_same_parser():
    full = cli.build_parser("kubectl preevy")
    assert cli.build_parser("kubectl preevy", "").format_help() == full.format_help()
    for name, parser in _command_parsers(full).items():
        built = _command_parsers(cli.build_parser("kubectl preevy", name))
        assert built[name].format_help() == parser.format_help()
        assert list(built) == [name]
    assert cli.command_in(["-v", "ls", "-n", "x"]) == "ls"
    assert cli.command_in(["--help"]) == cli.command_in(["nope"]) == ""


def test_an_error_document_for_a_reader_that_went_away_is_the_error_line_and_its_exit_code(tmp_path):
    launcher = pathlib.Path(__file__).resolve().parents[2] / "kubectl-preevy"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")  # no current context: exit 4 before any request
    environ = {**os.environ, "KUBECONFIG": str(kubeconfig), "XDG_STATE_HOME": str(tmp_path / "state")}
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    environ["KUBECACHEDIR"] = str(tmp_path / "cache")
    proc = subprocess.Popen(
        [PYTHON, str(launcher), "ls", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `kubectl preevy ls -o json | head -0`: the error document has no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == ExitCode.CLUSTER
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: the kubeconfig has no current context: pass --context, or select one with "
        "`kubectl config use-context NAME`"
    ]
    assert "Traceback" not in stderr
