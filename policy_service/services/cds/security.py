"""The EHR's JWT (CDS Hooks "Trusting CDS Clients"): keys per issuer, audience, expiry, replay."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from policy_service.errors import Unauthorized
from policy_service.extensions import db
from policy_service.models import CdsTokenUse

# CDS Hooks 2.0: the EHR signs with ES384 or RS384; nothing weaker, never "none" or HMAC.
ALGORITHMS = ("ES384", "RS384")
# Tolerated clock difference between the EHR and us, in seconds.
CLOCK_SKEW_SECONDS = 30
# A token must expire soon: CDS Hooks asks for at most five minutes.
MAX_LIFETIME_SECONDS = 3600


class ClientsFileError(Exception):
    """The clients file named by POLICY_CDS_CLIENTS_FILE is missing or not as documented."""


@dataclass(frozen=True)
class CdsClient:
    """One EHR allowed to call us: its issuer, its public keys and the FHIR bases it may send."""

    iss: str
    keys: tuple[jwt.PyJWK, ...]
    jku: frozenset[str]
    fhir_servers: tuple[str, ...]

    def allows_fhir_server(self, url: str) -> bool:
        """Return whether ``url`` is one of this client's configured FHIR bases."""
        return url.rstrip("/") in {base.rstrip("/") for base in self.fhir_servers}


@dataclass(frozen=True)
class VerifiedCaller:
    """Who signed a hook call, as its verified token says."""

    client: CdsClient
    tenant: str | None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ClientsFileError(f"{where} must be a string or a list of strings")


def parse_clients(document: Any) -> dict[str, CdsClient]:
    """Return the clients of a clients-file document, keyed by issuer."""
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        raise ClientsFileError('the file must be {"clients": [...]}')
    clients: dict[str, CdsClient] = {}
    for position, entry in enumerate(document["clients"]):
        where = f"clients[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str):
            raise ClientsFileError(f"{where}.iss is required")
        jwks = entry.get("jwks")
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ClientsFileError(f'{where}.jwks must be {{"keys": [...]}}')
        try:
            keys = tuple(jwt.PyJWK(key) for key in jwks["keys"])
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            raise ClientsFileError(f"{where}.jwks holds a key that cannot be used") from exc
        clients[entry["iss"]] = CdsClient(
            iss=entry["iss"], keys=keys, jku=frozenset(_strings(entry.get("jku"), f"{where}.jku")),
            fhir_servers=_strings(entry.get("fhir_servers"), f"{where}.fhir_servers"))
    return clients


@lru_cache(maxsize=4)
def _clients_at(path: str, _mtime_ns: int, _size: int) -> dict[str, CdsClient]:
    # Keyed by modification time and size: an edited file is read again on every host.
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClientsFileError("the file cannot be read as JSON") from exc
    return parse_clients(document)


def load_clients(path: str | None) -> dict[str, CdsClient]:
    """Return the clients configured in the file at ``path`` (none when no file is set)."""
    if not path:
        return {}
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ClientsFileError("the file does not exist") from exc
    return _clients_at(path, stat.st_mtime_ns, stat.st_size)


def _bearer(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A CDS Hooks call needs a signed JWT: Authorization: Bearer <jwt>.",
                           code="CDS_TOKEN_MISSING")
    return token.strip()


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(f"The CDS Hooks JWT is not accepted: {reason}.", code="CDS_TOKEN_INVALID")


KEY_TYPES = {"ES384": "EC", "RS384": "RSA"}


def _candidate_keys(client: CdsClient, header: dict[str, Any]) -> list[jwt.PyJWK]:
    kid = header.get("kid")
    return [key for key in client.keys
            if (kid is None or key.key_id == kid) and key.key_type == KEY_TYPES[header["alg"]]]


def _decode(token: str, client: CdsClient, header: dict[str, Any],
            audience: str) -> dict[str, Any]:
    keys = _candidate_keys(client, header)
    if not keys:
        raise _invalid("no configured key of this client matches its kid")
    last_error: jwt.PyJWTError | None = None
    for key in keys:
        try:
            return jwt.decode(
                token, key.key, algorithms=[header["alg"]], audience=audience, issuer=client.iss,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.InvalidSignatureError as exc:
            last_error = exc
        except jwt.PyJWTError as exc:
            raise _invalid(str(exc).rstrip(".")) from exc
    raise _invalid("the signature does not match the client's keys") from last_error


def _remember_jti(iss: str, jti: str, expires: dt.datetime) -> None:
    """Store the token's id; a second use anywhere (any host) breaks the unique constraint."""
    digest = hashlib.sha256(json.dumps([iss, jti]).encode()).hexdigest()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db.session.execute(delete(CdsTokenUse).where(CdsTokenUse.expires_at < now))
    try:
        with db.session.begin_nested():
            db.session.add(CdsTokenUse(digest=digest, expires_at=expires))
    except IntegrityError as exc:
        raise _invalid("this jti was already used") from exc


def verify_caller(authorization_header: str | None, audience: str,
                  clients: dict[str, CdsClient]) -> VerifiedCaller:
    """Check the EHR's JWT for a call to the service at ``audience``; raise Unauthorized if bad."""
    token = _bearer(authorization_header)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid("it is not a JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise _invalid(f"alg must be one of {', '.join(ALGORITHMS)}")
    client = clients.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) \
        else None
    if client is None:
        raise _invalid("its issuer is not a configured client")
    if "jku" in header and header["jku"] not in client.jku:
        # The key set it names is never fetched; only a JWKS configured for this client counts.
        raise _invalid("its jku is not a key set configured for this client")
    claims = _decode(token, client, header, audience)
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise _invalid("jti must be a non-empty string")
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
        raise _invalid("it is valid for longer than an hour")
    expires = dt.datetime.fromtimestamp(claims["exp"] + CLOCK_SKEW_SECONDS, dt.UTC)
    _remember_jti(client.iss, claims["jti"], expires.replace(tzinfo=None))
    tenant = claims.get("tenant")
    return VerifiedCaller(client=client, tenant=tenant if isinstance(tenant, str) else None)
