"""What the node knows about images (node half). Nothing is ever pulled: containers run the host's
programs. But an image reference decides two things, as on a real node:

* whether the pull would succeed. Docker Hub's official-library namespace is closed, so a
  one-component name (`nope:1`, `docker.io/library/nope`) that is not an official image cannot
  exist and fails with ErrImagePull / ImagePullBackOff (containerd's `not found` wording).
  Every other reference is assumed pullable, unless marked missing through the control endpoint
  (`POST /kubesim/v1/images {"image": REF, "exists": false}`).
* what programs it holds beyond the host's: `POST /kubesim/v1/images {"image": REF, "path": [DIR...]}`
  puts those host directories first on the PATH of its containers (the tests map the gc image of
  `kubectl preevy install gc` to a directory holding the zipapp, run with the host's python3 and kubectl).
* the userland: `docker` images (`docker:dind`, `docker:24.0.7-dind-alpine3.18`...) are Alpine
  based, so their `sh`, `tar`, `find`, `stat`... are BusyBox applets. The node bind-mounts a
  directory of BusyBox applets (links to the host's /bin/busybox) on /usr/local/sbin, the first
  entry of the image's PATH, so those commands behave as in the real image, while dockerd,
  containerd, runc, iptables and the docker CLI stay the host's. The host's compressors the image does not
  have (zstd, lz4: docker:dind installs xz and pigz, BusyBox has gzip) are masked there by /dev/null
  (`command -v zstd` finds nothing), so that what a program finds in the pod to decompress with is what
  the real image offers, no more.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

OFFICIAL = frozenset(
    """adminer aerospike almalinux alpine alt amazoncorretto amazonlinux api-firewall arangodb archlinux
    backdrop bash bonita buildpack-deps busybox caddy cassandra chronograf cirros clearlinux clefos
    clojure composer convertigo couchbase couchdb crate dart debian docker drupal eclipse-mosquitto
    eclipse-temurin eggdrop elasticsearch elixir emqx erlang fedora flink fluentd friendica gazebo gcc
    geonetwork ghost golang gradle groovy haproxy haskell haxe hello-world hitch httpd hylang ibm-semeru-runtimes
    ibmjava influxdb irssi jetty jobber joomla jruby julia kapacitor kibana kong krakend lightstreamer
    liquibase logstash mageia mariadb matomo maven mediawiki memcached mongo mongo-express monica mono
    mysql nats neo4j neurodebian nextcloud nginx node notary odoo open-liberty openjdk oraclelinux orientdb
    percona perl photon php php-zendserver phpmyadmin plone postfixadmin postgres pypy python r-base
    rabbitmq rakudo-star rakudo redis redmine registry rethinkdb rocket.chat rockylinux ruby rust sapmachine
    satosa silverpeas solr sonarqube spiped storm swift swipl teamspeak telegraf tomcat tomee traefik
    ubuntu unit varnish websphere-liberty wordpress xwiki yourls znc zookeeper""".split()  # noqa: SIM905 (a word list)
)
APPLET_DIR = "/usr/local/sbin"  # first in the PATH of the docker images
BUSYBOX = "/bin/busybox"
# applets the real docker:dind image has from packages (or that must stay the host's for dockerd)
NOT_BUSYBOX = frozenset({"xz", "unxz", "xzcat", "ssh", "scp", "openssl", "git", "pigz", "unpigz"})
# programs of the host that the docker image lacks, masked in its containers (where the host has them)
NOT_IN_DOCKER_IMAGE = ("zstd", "unzstd", "zstdcat", "zstdmt", "pzstd", "lz4", "lz4c", "lz4cat", "unlz4")


def split(reference: str) -> tuple[str, str, str]:
    """(registry, repository, tag-or-digest) of an image reference, Docker's defaults applied."""
    ref = reference.strip()
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    name, tag = ref, "latest"
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        registry, repo = name.split("/", 1)
    else:
        registry, repo = "docker.io", name
    if registry == "docker.io" and "/" not in repo:
        repo = f"library/{repo}"
    return registry, repo, (f"@{digest}" if digest else tag)


def canonical(reference: str) -> str:
    registry, repo, tag = split(reference)
    return f"{registry}/{repo}{tag if tag.startswith('@') else ':' + tag}"


def is_docker_image(reference: str) -> bool:
    registry, repo, _ = split(reference)
    return registry == "docker.io" and repo == "library/docker"


class Images:
    def __init__(self, state_dir: pathlib.Path):
        self.missing: set[str] = set()  # canonical references marked missing (control endpoint)
        self.known: set[str] = set()  # canonical references marked present
        self.programs: dict[str, list[str]] = {}  # canonical reference -> host dirs first on its PATH
        self.applets = state_dir / "images" / "busybox-applets"

    def pull_error(self, reference: str) -> str | None:
        """None when the pull would succeed, else containerd's error text."""
        ref = canonical(reference)
        registry, repo, _ = split(reference)
        if ref in self.known:
            return None
        official_gone = registry == "docker.io" and repo.startswith("library/") and repo[8:] not in OFFICIAL
        if ref not in self.missing and not official_gone:
            return None
        return (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found'
        )

    def mark(self, reference: str, exists: bool) -> None:
        ref = canonical(reference)
        (self.known if exists else self.missing).add(ref)
        (self.missing if exists else self.known).discard(ref)

    def provide(self, reference: str, directories: list[str]) -> None:
        """The image holds the programs of these host directories (and can be pulled): its containers
        find them first on their PATH (e.g. the gc image's kubectl-preevy zipapp)."""
        self.mark(reference, True)
        self.programs[canonical(reference)] = list(directories)

    def program_dirs(self, reference: str) -> list[str]:
        return self.programs.get(canonical(reference), [])

    def masks(self) -> list[tuple[str, str, bool]]:
        """Read-only mounts (source, target, True) of /dev/null over each host program the docker image does
        not have: not a regular file, so a shell's PATH search (`command -v`) passes over it."""
        found = {os.path.realpath(path) for name in NOT_IN_DOCKER_IMAGE if (path := shutil.which(name))}
        return [(os.devnull, path, True) for path in sorted(found)]

    def applet_dir(self) -> pathlib.Path | None:
        """A directory of BusyBox applet links (made once); None without a host busybox."""
        if (self.applets / "sh").is_symlink():
            return self.applets
        busybox = BUSYBOX if os.path.exists(BUSYBOX) else shutil.which("busybox")
        if busybox is None:
            return None
        names = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        tmp = self.applets.with_name(self.applets.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in names:
            if name not in NOT_BUSYBOX and "/" not in name:
                (tmp / name).symlink_to(BUSYBOX)
        shutil.rmtree(self.applets, ignore_errors=True)
        tmp.rename(self.applets)
        return self.applets
