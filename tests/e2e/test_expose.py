"""Public URLs from the cluster's own routing: `up --expose gateway|ingress` on examples/hello, the page
served through the emulator's data plane (HTTP and HTTPS), PREEVY_BASE_URI_* in a container, a
removed port's route gone, `urls`, `down` leaving nothing, and each refusal as one line."""

import json

import yaml

from tests.e2e import environment_objects, error_lines, hello_project, preevy, up_json
from tests.routing import certificate, curl, gateway, tls_secret

ABOUT_SERVICE = """
  about:
    build: .
    init: true
    environment:
      COUNTER_URL: ${PREEVY_BASE_URI_COUNTER_8081:-unset}
    command: ["sh", "-c", "mkdir -p /www && echo \\"$$COUNTER_URL\\" > /www/index.html && exec httpd -f -p 8082 -h /www"]
    ports: ["8082:8082"]
"""


def with_about_service(project):
    """hello plus a service whose page is the counter's public URL (PREEVY_BASE_URI_COUNTER_8081)."""
    compose = project / "compose.yaml"
    text = compose.read_text()
    compose.write_text(text.replace("\nvolumes:\n", ABOUT_SERVICE + "volumes:\n"))
    return compose


def kinds(kubesim, namespace: str, resource: str, selector: str) -> list[str]:
    return kubesim.kubectl("get", resource, "-n", namespace, "-l", selector, "-o", "name").stdout.split()


def test_gateway_urls_serve_over_http_and_https_follow_ports_and_go_with_down(
    kubesim, namespace, env, tmp_path
):
    domain = f"{namespace}.preview.test"
    crt, key = certificate(tmp_path, domain)
    tls_secret(kubesim, namespace, "wildcard", crt, key)
    kubesim.kubectl(
        "apply",
        "-n",
        namespace,
        "--server-side",
        "-f",
        "-",
        input=gateway("previews", domain, secret="wildcard"),
    )
    project = hello_project(tmp_path / "hello")
    compose = with_about_service(project)
    flags = [
        "-n",
        namespace,
        "--id",
        "pr-7",
        "--expose",
        "gateway",
        "--domain",
        domain,
        "--gateway",
        "previews",
    ]

    dry = preevy("up", "--dry-run", *flags, cwd=project, env=env, check=True)
    assert f"https://web-8080-pr-7.{domain}" in dry.stderr
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=pr-7") == []

    document = up_json(*flags, cwd=project, env=env)
    assert sorted((s["service"], s["port"], s["url"]) for s in document["services"]) == [
        ("about", 8082, f"https://about-8082-pr-7.{domain}"),
        ("counter", 8081, f"https://counter-8081-pr-7.{domain}"),
        ("web", 8080, f"https://web-8080-pr-7.{domain}"),
    ]
    ports = kubesim.dataplane()["gateways"][f"{namespace}/previews"]
    page = (project / "site" / "index.html").read_text()
    assert curl(f"https://web-8080-pr-7.{domain}/", ports["443"], ca=crt) == (200, page)
    assert curl(f"http://web-8080-pr-7.{domain}/", ports["80"]) == (200, page)
    # the counter's public URL reached the about container through compose interpolation
    assert curl(f"https://about-8082-pr-7.{domain}/", ports["443"], ca=crt) == (
        200,
        f"https://counter-8081-pr-7.{domain}\n",
    )
    statefulset = document["statefulSet"]
    all_types = json.loads(
        kubesim.kubectl(
            "get",
            "sts",
            statefulset,
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.annotations.preevy\\.dev/all-types}",
        ).stdout
    )
    assert {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"} in all_types
    assert {"apiVersion": "v1", "kind": "Service"} in all_types

    listed = json.loads(
        preevy(
            "urls", "web", "--id", "pr-7", "-n", namespace, "-o", "json", cwd=tmp_path, env=env, check=True
        ).stdout
    )
    assert [(s["service"], s["url"]) for s in listed["services"]] == [
        ("web", f"https://web-8080-pr-7.{domain}")
    ]
    as_yaml = yaml.safe_load(
        preevy(
            "urls", "--id", "pr-7", "-n", namespace, "-o", "yaml", cwd=tmp_path, env=env, check=True
        ).stdout
    )
    assert len(as_yaml["services"]) == 3
    written = tmp_path / "urls.json"
    preevy(
        "urls",
        "--id",
        "pr-7",
        "-n",
        namespace,
        "--output-urls-to",
        str(written),
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert len(json.loads(written.read_text())) == 3

    # the about service's port removed: its route goes, the others stay
    compose.write_text(compose.read_text().replace('    ports: ["8082:8082"]\n', ""))
    second = up_json(*flags, cwd=project, env=env)
    assert sorted(s["service"] for s in second["services"]) == ["counter", "web"]
    routes = kinds(kubesim, namespace, "httproutes", "preevy.dev/env-id=pr-7")
    assert len(routes) == 2 and not any("about" in r for r in routes)
    assert curl(f"https://about-8082-pr-7.{domain}/", ports["443"], ca=crt, timeout=0)[0] == 404
    assert curl(f"https://web-8080-pr-7.{domain}/", ports["443"], ca=crt) == (200, page)

    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=pr-7") == []
    assert curl(f"http://web-8080-pr-7.{domain}/", ports["80"], timeout=0)[0] == 404


def test_ingress_urls_serve_over_https_and_expose_none_removes_them(kubesim, namespace, env, tmp_path):
    domain = f"{namespace}.ingress.test"
    crt, key = certificate(tmp_path, domain)
    tls_secret(kubesim, namespace, "wildcard", crt, key)
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "ing"]
    document = up_json(
        *flags, "--expose", "ingress", "--domain", domain, "--tls-secret", "wildcard", cwd=project, env=env
    )
    web = next(s["url"] for s in document["services"] if s["service"] == "web")
    assert web == f"https://web-8080-ing.{domain}"
    ports = kubesim.dataplane()["ingress"]
    page = (project / "site" / "index.html").read_text()
    assert curl(web + "/", ports["https"], ca=crt) == (200, page)
    assert curl(f"http://web-8080-ing.{domain}/", ports["http"]) == (200, page)
    (ingress,) = kinds(kubesim, namespace, "ingresses", "preevy.dev/env-id=ing")
    assert (
        kubesim.kubectl("get", ingress, "-n", namespace, "-o", "jsonpath={.spec.ingressClassName}").stdout
        == "kubesim"
    )

    # expose none: today's localhost URLs, and the routing objects are gone
    plain = up_json(*flags, cwd=project, env=env)
    assert all(s["url"].startswith("http://localhost:") for s in plain["services"])
    assert kinds(kubesim, namespace, "ingresses,services", "preevy.dev/env-id=ing") == []
    not_exposed = preevy("urls", "--id", "ing", "-n", namespace, cwd=tmp_path, env=env, check=True)
    assert not_exposed.stdout == "" and "--expose none" in not_exposed.stderr

    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=ing") == []


def test_udp_and_host_network_services_are_listed_as_not_routable(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    compose = project / "compose.yaml"
    compose.write_text(
        compose.read_text().replace(
            "\nvolumes:\n",
            '\n  dns:\n    build: .\n    command: ["sleep", "3600"]\n    ports: ["5353:5353/udp"]\n'
            '  host:\n    build: .\n    network_mode: host\n    command: ["sleep", "3600"]\n    expose: ["9000"]\n'
            "volumes:\n",
        )
    )
    domain = f"{namespace}.udp.test"
    dry = preevy(
        "up",
        "--dry-run",
        "-n",
        namespace,
        "--id",
        "udp",
        "--expose",
        "ingress",
        "--domain",
        domain,
        cwd=project,
        env=env,
        check=True,
    )
    assert "not routable: UDP (HTTP routes and port-forwards carry TCP only)" in dry.stderr
    assert "not routable: network_mode: host" in dry.stderr
    assert "add ports" not in dry.stderr

    flags = ["-n", namespace, "--id", "udp"]
    document = up_json(*flags, cwd=project, env=env)  # --expose none: localhost URLs, the rest explained
    assert sorted(s["service"] for s in document["services"]) == ["counter", "web"]
    assert sorted((n["service"], n["port"]) for n in document["notRoutable"]) == [
        ("dns", 5353),
        ("host", 9000),
    ]
    table = preevy("up", *flags, cwd=project, env=env, check=True, timeout=180).stdout
    assert "not routable: UDP" in table and "add ports" not in table
    preevy("down", *flags, cwd=project, env=env, check=True)


def test_each_refusal_is_one_line_and_writes_nothing(kubesim, namespace, env, tmp_path):
    domain = f"{namespace}.refused.test"
    project = hello_project(tmp_path / "hello")
    kubesim.kubectl("apply", "-n", namespace, "--server-side", "-f", "-", input=gateway("previews", domain))
    other = f"{namespace}-gw"
    kubesim.kubectl("create", "namespace", other)
    kubesim.kubectl("apply", "-n", other, "--server-side", "-f", "-", input=gateway("shared", domain))
    base = ["up", "-n", namespace, "--id", "refused"]
    cases = [
        (
            ["--expose", "gateway", "--domain", domain, "--gateway", "nope"],
            2,
            f"Gateway {namespace}/nope not found",
        ),
        (
            ["--expose", "gateway", "--domain", domain, "--gateway", f"{other}/shared"],
            6,
            "listener does not allow routes from this namespace",
        ),
        (
            ["--expose", "gateway", "--domain", "elsewhere.test", "--gateway", "previews"],
            6,
            "hostname not matched by any listener",
        ),
        (["--expose", "gateway", "--domain", domain], 2, "expose gateway (from flag --expose) needs gateway"),
        (
            ["--expose", "ingress", "--domain", domain, "--ingress-class", "nginx"],
            2,
            "IngressClass nginx not found",
        ),
        (["--expose", "ingress", "--domain", domain, "--tls-secret", "absent"], 2, "Secret absent not found"),
        (["--expose", "ingress", "--domain", "Not A Domain"], 2, 'invalid domain "Not A Domain"'),
    ]
    try:
        for flags, code, text in cases:
            result = preevy(*base, *flags, cwd=project, env=env)
            lines = error_lines(result.stderr)
            assert (result.returncode, len(lines)) == (code, 1), result.stderr
            assert text in lines[0]
        kubesim.kubectl(
            "annotate",
            "ingressclass",
            "kubesim",
            "ingressclass.kubernetes.io/is-default-class=false",
            "--overwrite",
        )
        result = preevy(*base, "--expose", "ingress", "--domain", domain, cwd=project, env=env)
        assert result.returncode == 6 and len(error_lines(result.stderr)) == 1
        assert error_lines(result.stderr)[0].startswith(
            "error: no IngressClass: the cluster has no default IngressClass"
        )
    finally:
        kubesim.kubectl(
            "annotate",
            "ingressclass",
            "kubesim",
            "ingressclass.kubernetes.io/is-default-class=true",
            "--overwrite",
        )
        kubesim.kubectl("delete", "namespace", other, "--wait=false")
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=refused") == []


def test_a_refusal_reported_by_the_gateway_controller_ends_the_wait_in_one_line(
    kubesim, namespace, env, tmp_path
):
    domain = f"{namespace}.selector.test"
    selective = gateway("previews", domain).replace(
        "{from: Same}", "{from: Selector, selector: {matchLabels: {previews: allowed}}}"
    )
    kubesim.kubectl("apply", "-n", namespace, "--server-side", "-f", "-", input=selective)
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "sel"]
    result = preevy(
        "up",
        *flags,
        "--expose",
        "gateway",
        "--domain",
        domain,
        "--gateway",
        "previews",
        cwd=project,
        env=env,
        timeout=180,
    )
    lines = error_lines(result.stderr)
    assert (result.returncode, len(lines)) == (6, 1), result.stderr
    assert "listener does not allow routes from this namespace" in lines[0]
    assert f"kubectl preevy down --id sel --namespace={namespace}" in lines[0]
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=sel") == []


def test_an_ingress_no_controller_serves_is_a_bounded_wait_explained_in_one_line(
    kubesim, namespace, env, tmp_path
):
    orphan = f"orphan-{namespace}"
    kubesim.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=f"apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: {orphan}}}\n"
        "spec: {controller: example.com/nobody}\n",
    )
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "orphan"]
    try:
        result = preevy(
            "up",
            *flags,
            "--timeout",
            "30s",
            "--expose",
            "ingress",
            "--domain",
            "o.test",
            "--ingress-class",
            orphan,
            cwd=project,
            env=env,
            timeout=180,
        )
        lines = error_lines(result.stderr)
        assert (result.returncode, len(lines)) == (5, 1), result.stderr
        assert "got no address within 30s" in lines[0] and "kubectl preevy down --id orphan" in lines[0]
    finally:
        kubesim.kubectl("delete", "ingressclass", orphan)
    preevy("down", *flags, cwd=project, env=env, check=True)
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=orphan") == []


def test_a_developer_who_may_not_read_the_shared_gateway_still_gets_https_urls(
    kubesim, namespace, env, tmp_path
):
    """RBAC as on a real cluster: the namespace's `admin` (plus HTTPRoutes) and nothing in the Gateway's namespace."""
    infra = f"{namespace}-infra"
    domain = f"{namespace}.rbac.test"
    crt, key = certificate(tmp_path, domain)
    kubesim.kubectl("create", "namespace", infra)
    try:
        tls_secret(kubesim, infra, "wildcard", crt, key)
        shared = gateway("shared", domain, allowed="All", secret="wildcard")
        kubesim.kubectl("apply", "-n", infra, "--server-side", "-f", "-", input=shared)
        kubesim.kubectl(
            "create", "rolebinding", "dev-admin", "-n", namespace, "--clusterrole=admin", "--user=dev"
        )
        # the default template's Role grants pods of metrics.k8s.io: its creator must hold them (no escalation)
        metrics = (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: metrics}\n"
            "rules: [{apiGroups: [metrics.k8s.io], resources: [pods], verbs: [get, list]}]\n"
        )
        kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=metrics)
        kubesim.kubectl(
            "create", "rolebinding", "dev-metrics", "-n", namespace, "--role=metrics", "--user=dev"
        )
        developer = {**env, "KUBECONFIG": str(kubesim.kubeconfig_for_user("dev", namespace=namespace))}
        project = hello_project(tmp_path / "hello")
        flags = ["--id", "dev", "--expose", "gateway", "--domain", domain, "--gateway", f"{infra}/shared"]
        role = yaml.safe_load(
            preevy("rbac", "-n", namespace, *flags[2:], cwd=tmp_path, env=env, check=True).stdout
        )
        granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        assert {("gateway.networking.k8s.io", "httproutes"), ("", "services")} <= granted
        refused = preevy("up", *flags, cwd=project, env=developer)
        assert (refused.returncode, len(error_lines(refused.stderr))) == (6, 1), refused.stderr
        assert "httproutes.gateway.networking.k8s.io" in error_lines(refused.stderr)[0]
        assert f"kubectl preevy rbac -n {namespace}" in error_lines(refused.stderr)[0]
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=dev") == []
        kubesim.kubectl(
            "create",
            "role",
            "routes",
            "-n",
            namespace,
            "--verb=*",
            "--resource=httproutes.gateway.networking.k8s.io",
        )
        kubesim.kubectl("create", "rolebinding", "dev-routes", "-n", namespace, "--role=routes", "--user=dev")
        document = up_json(*flags, cwd=project, env=developer)
        web = next(s["url"] for s in document["services"] if s["service"] == "web")
        assert web == f"https://web-8080-dev.{domain}"
        port = kubesim.dataplane()["gateways"][f"{infra}/shared"]["443"]
        assert curl(web + "/", port, ca=crt) == (200, (project / "site" / "index.html").read_text())
        preevy("down", *flags, cwd=project, env=developer, check=True)
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=dev") == []
    finally:
        kubesim.kubectl("delete", "namespace", infra, "--wait=false")


def test_connect_gives_no_false_advice_when_only_udp_is_published(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    (project / "compose.yaml").write_text(
        'services:\n  dns:\n    build: .\n    command: ["sleep", "3600"]\n    ports: ["5353:5353/udp"]\n'
    )
    flags = ["-n", namespace, "--id", "only-udp"]
    up_json(*flags, cwd=project, env=env)
    result = preevy("connect", *flags, cwd=project, env=env)
    lines = error_lines(result.stderr)
    assert (result.returncode, len(lines)) == (1, 1), result.stderr
    assert (
        "dns: UDP (HTTP routes and port-forwards carry TCP only)" in lines[0]
        and "add `ports:`" not in lines[0]
    )
    preevy("down", *flags, cwd=project, env=env, check=True)
