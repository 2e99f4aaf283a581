"""Authentication (API half), as kube-apiserver 1.32 does it for the credentials kubeconfigs carry.

* Plain-http port: no credential can reach it (kubectl sends none over http), so every request
  there is the cluster admin (`kubernetes-admin`, group `system:masters`), as today's fixtures use.
* TLS port: the authenticators run in kube-apiserver's order, the first success wins (its union
  authenticator): a client certificate signed by the cluster CA (CN = user, O = groups); then
  `Authorization: Bearer`, the static admin token (`kubesim`) or a ServiceAccount token (a JWT
  signed by the emulator, checked for signature, expiry, audience and that the ServiceAccount (and
  bound Pod) still exist with the same uid); else `system:anonymous`. A bad or expired token
  without a valid client certificate is 401 `Unauthorized`, never anonymous.
Impersonation headers (`kubectl --as/--as-group`) are applied in `authz.py` (they need RBAC).
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import datetime
import json
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from . import errors
from .pki import peer_identity

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
ADMIN_TOKEN = "kubesim"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"
MIN_TOKEN_SECONDS = 600
DEFAULT_TOKEN_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def user_info(self) -> dict:
        """The authentication.k8s.io UserInfo form (SelfSubjectReview, TokenReview)."""
        out: dict = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


ADMIN = User("kubernetes-admin", (MASTERS, AUTHENTICATED))
ANONYMOUS = User("system:anonymous", (UNAUTHENTICATED,))
# who the request being handled is from (controllers writing directly act as the admin)
CURRENT_USER: contextvars.ContextVar[User] = contextvars.ContextVar("kubesim_user", default=ADMIN)


def service_account_user(namespace: str, name: str, uid: str = "", extra=()) -> User:
    return User(
        f"{SA_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        uid,
        extra,
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:NS:NAME` username."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def unauthorized() -> errors.ApiError:
    return errors.ApiError(errors.status(401, "Unauthorized", "Unauthorized", None))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Tokens:
    """Issues and verifies ServiceAccount tokens (the TokenRequest API's bound tokens)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, store):
        self._key = key
        self._store = store
        self._kid = _b64(uuid.uuid4().bytes)

    def issue(
        self,
        sa: dict,
        seconds: int,
        audiences: list[str] | None = None,
        bound: dict | None = None,
    ) -> tuple[str, str]:
        """(token, expirationTimestamp) for ServiceAccount object `sa`; `bound`: a Pod or Secret
        object the token dies with."""
        meta = sa["metadata"]
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        exp = now + datetime.timedelta(seconds=seconds)
        k8s: dict = {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta["uid"]},
        }
        if bound is not None:
            k8s[bound["kind"].lower()] = {"name": bound["metadata"]["name"], "uid": bound["metadata"]["uid"]}
        claims = {
            "aud": list(audiences or API_AUDIENCES),
            "exp": int(exp.timestamp()),
            "iat": int(now.timestamp()),
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": int(now.timestamp()),
            "sub": f"{SA_PREFIX}{meta['namespace']}:{meta['name']}",
        }
        head = _b64(json.dumps({"alg": "ES256", "kid": self._kid}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        der = self._key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return f"{head}.{body}.{sig}", _rfc3339(exp)

    def verify(self, token: str) -> User | None:
        """The ServiceAccount user of a valid token; None when it is not one of ours or no longer valid."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            raw = _unb64(parts[2])
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            self._key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(parts[1]))
        except (InvalidSignature, ValueError):
            return None
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        if claims.get("iss") != ISSUER or not (claims.get("nbf", 0) - 60 <= now < claims.get("exp", 0)):
            return None
        if not set(claims.get("aud") or []) & set(API_AUDIENCES):
            return None
        k8s = claims.get("kubernetes.io") or {}
        ns, sa = k8s.get("namespace"), k8s.get("serviceaccount") or {}
        live = self._store.get("serviceaccounts", ns, sa.get("name", ""))
        if (
            live is None
            or live["metadata"]["uid"] != sa.get("uid")
            or live["metadata"].get("deletionTimestamp")
        ):
            return None
        extra = [("authentication.kubernetes.io/credential-id", (f"JTI={claims.get('jti')}",))]
        for kind, key in (("pod", "pods"), ("secret", "secrets")):
            ref = k8s.get(kind)
            if ref is None:
                continue
            obj = self._store.get(key, ns, ref.get("name", ""))
            if obj is None or obj["metadata"]["uid"] != ref.get("uid"):
                return None
            extra.append((f"authentication.kubernetes.io/{kind}-name", (ref["name"],)))
            extra.append((f"authentication.kubernetes.io/{kind}-uid", (ref["uid"],)))
        return service_account_user(ns, sa["name"], sa.get("uid", ""), tuple(sorted(extra)))


def authenticate(request, tokens: Tokens) -> User:
    """Who sent this request (see the module docstring); raises 401 for a bad credential."""
    if not request.secure:
        return ADMIN
    ident = peer_identity(request.transport.get_extra_info("peercert") if request.transport else None)
    if ident is not None:  # x509 comes before the token authenticators; a valid certificate wins
        cn, orgs = ident
        return User(cn, (*orgs, AUTHENTICATED))
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise unauthorized()
        if value == ADMIN_TOKEN:
            return ADMIN
        user = tokens.verify(value)
        if user is None:
            raise unauthorized()
        return user
    return ANONYMOUS
