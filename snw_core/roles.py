"""Who may change things: the viewer and engineer roles, the engineer password, and its sign-in delay.

A *viewer* looks and reviews (every page, the threshold slider, downloads, Inspect); an *engineer* may also
start, stop and delete runs and change files. Bound to loopback the local user is an engineer; bound to any
other address everyone is a viewer until signed in as an engineer, through OpenID Connect (``st.login``, with
an allow-list of e-mail addresses) or with the engineer password, whose salted hash lives in the secrets file
or ``$SNW_ENGINEER_PASSWORD_HASH``. ``SNW_VIEWER_ONLY=1`` makes everyone a viewer on any address.

This module is pure (no streamlit): the dashboard passes in the server address, the secrets and who signed
in (``snw_core.ui.actor``); every action checks the resulting :class:`Actor` (``snw_core.actions``).

>>> resolve_actor("127.0.0.1", {}, {}).role
'engineer'
>>> resolve_actor("0.0.0.0", {}, {}).role
'viewer'
>>> encoded = hash_password("correct horse", iterations=1000)
>>> verify_password("correct horse", encoded), verify_password("wrong", encoded)
(True, False)

Secrets (``.streamlit/secrets.toml``)::

    [snw]
    engineer_password_hash = "pbkdf2_sha256$600000$..."   # python -m snw_core password-hash
    engineers = ["alice@plant.example", "@qa.plant.example"]   # who is an engineer after st.login
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets as _secrets
import threading
import time
from dataclasses import dataclass
from typing import Mapping

__all__ = ["VIEWER", "ENGINEER", "Actor", "AccessError", "LOCAL", "is_loopback", "viewer_only", "resolve_actor",
           "hash_password", "verify_password", "check_hash", "password_hash", "hash_fingerprint", "oidc_providers",
           "oidc_engineer", "SignInThrottle", "THROTTLE", "VIEWER_ONLY_ENV", "PASSWORD_HASH_ENV"]

VIEWER, ENGINEER = "viewer", "engineer"
VIEWER_ONLY_ENV = "SNW_VIEWER_ONLY"
PASSWORD_HASH_ENV = "SNW_ENGINEER_PASSWORD_HASH"
SECTION = "snw"                      # our section of .streamlit/secrets.toml
ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000                 # OWASP's 2023 figure for PBKDF2-HMAC-SHA256: about 0.3-0.6 s here
MIN_PASSWORD = 8


class AccessError(PermissionError):
    """An action a viewer may not do, or a broken sign-in configuration; the message is for the user."""


@dataclass(frozen=True)
class Actor:
    """Who asks: ``name`` goes into the action log ("local", an e-mail, "Ann (password)"), ``role`` decides."""
    name: str
    role: str
    how: str = ""                   # why this role: "loopback", "viewer-only", "sso", "password", "not signed in"

    @property
    def is_engineer(self) -> bool:
        return self.role == ENGINEER

    def require(self, action: str) -> None:
        """Raise :class:`AccessError` unless this actor is an engineer."""
        if not self.is_engineer:
            why = ("this dashboard runs in viewer-only mode" if self.how == "viewer-only"
                   else "sign in as an engineer in the sidebar first")
            raise AccessError(f"Only an engineer can {action}: you are a viewer ({why}). Nothing was changed.")


LOCAL = Actor("local", ENGINEER, "loopback")


def is_loopback(address) -> bool:
    """True for an address only this computer can reach (127.0.0.0/8, ::1, ``localhost``).

    An empty or missing address means every interface (Streamlit's own default), so it is *not* loopback.
    """
    a = str(address or "").strip().strip("[]")
    if not a:
        return False
    if a.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False                 # a host name: it may resolve to any interface


def viewer_only(env: Mapping = os.environ) -> bool:
    return str(env.get(VIEWER_ONLY_ENV, "")).strip().lower() in ("1", "true", "yes", "on")


def _section(secrets: Mapping) -> Mapping:
    sec = secrets.get(SECTION) if secrets else None
    return sec if isinstance(sec, Mapping) else {}


def password_hash(secrets: Mapping, env: Mapping = os.environ) -> str | None:
    """The configured engineer password hash: ``$SNW_ENGINEER_PASSWORD_HASH``, else ``[snw]
    engineer_password_hash`` in the secrets; None when neither is set."""
    h = str(env.get(PASSWORD_HASH_ENV, "") or _section(secrets).get("engineer_password_hash", "") or "").strip()
    return h or None


def hash_fingerprint(encoded: str) -> str:
    """A short digest of a hash string: a sign-in stays valid only while the same hash is configured."""
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ OpenID Connect (st.login)

def oidc_providers(secrets: Mapping) -> list:
    """Providers that ``st.login`` can use with these secrets: ``None`` for the ``[auth]`` section itself,
    a name for each ``[auth.NAME]``; empty when ``[auth]`` lacks ``redirect_uri`` or ``cookie_secret``."""
    auth = secrets.get("auth") if secrets else None
    if not isinstance(auth, Mapping) or not auth.get("redirect_uri") or not auth.get("cookie_secret"):
        return []
    need = ("client_id", "client_secret", "server_metadata_url")
    out = [None] if all(auth.get(k) for k in need) else []
    out += [k for k, v in auth.items() if isinstance(v, Mapping) and all(v.get(k2) for k2 in need)]
    return out


def oidc_engineer(user: Mapping, secrets: Mapping) -> bool:
    """Whether a signed-in OIDC user is an engineer: their e-mail is in ``[snw] engineers`` (an entry
    ``@domain`` admits the whole domain). No list, no engineers: a provider such as Google signs in anyone."""
    email = str(user.get("email") or "").strip().lower()
    if not email or user.get("email_verified") is False:
        return False
    allowed = [str(e).strip().lower() for e in (_section(secrets).get("engineers") or [])]
    return any(email == e or (e.startswith("@") and email.endswith(e)) for e in allowed if e)


# ------------------------------------------------------------------ the role of a session

def resolve_actor(address, secrets: Mapping, env: Mapping = os.environ, *, password_signin: Mapping | None = None,
                  oidc_user: Mapping | None = None, as_viewer: bool = False) -> Actor:
    """The actor of one browser session.

    address: the address the server is bound to (``server.address``); secrets: the parsed secrets file;
    password_signin: ``{"name", "fingerprint"}`` stored by a successful password sign-in (valid while the
    same hash is configured); oidc_user: ``st.user`` as a dict when logged in; as_viewer: the session asked
    to see the dashboard as a viewer (it can only lower a role).
    """
    if viewer_only(env):
        return Actor("viewer", VIEWER, "viewer-only")
    if as_viewer:
        return Actor("viewer", VIEWER, "asked")
    if is_loopback(address):
        return LOCAL
    if oidc_user and oidc_user.get("is_logged_in", True) and oidc_engineer(oidc_user, secrets):
        return Actor(str(oidc_user.get("email")), ENGINEER, "sso")
    configured = password_hash(secrets, env)
    if password_signin and configured and password_signin.get("fingerprint") == hash_fingerprint(configured):
        return Actor(f"{password_signin.get('name') or 'engineer'} (password)", ENGINEER, "password")
    name = str((oidc_user or {}).get("email") or "viewer")
    return Actor(name, VIEWER, "sso, not an engineer" if oidc_user else "not signed in")


# ------------------------------------------------------------------ the engineer password

def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii").rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64, 16-byte random salt, 32-byte PBKDF2-HMAC-SHA256)."""
    if not isinstance(password, str) or not password:
        raise ValueError("the password is empty")
    salt = salt if salt is not None else _secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(iterations))
    return f"{ALGORITHM}${int(iterations)}${_b64(salt)}${_b64(dk)}"


def check_hash(encoded: str) -> tuple[int, bytes, bytes]:
    """Parse a hash string; raise :class:`AccessError` with what is wrong when it is not one of ours."""
    parts = str(encoded).strip().split("$")
    try:
        if len(parts) != 4 or parts[0] != ALGORITHM:
            raise ValueError
        iterations, salt, dk = int(parts[1]), _unb64(parts[2]), _unb64(parts[3])
        if iterations < 1 or len(salt) < 8 or len(dk) != 32:
            raise ValueError
    except ValueError:
        raise AccessError("The configured engineer password hash is not valid: it must look like "
                          f"'{ALGORITHM}$600000$<salt>$<hash>', as printed by `python -m snw_core password-hash`. "
                          "Password sign-in is off until it is fixed.") from None
    return iterations, salt, dk


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison of ``password`` against a hash string."""
    iterations, salt, dk = check_hash(encoded)
    got = hashlib.pbkdf2_hmac("sha256", str(password).encode("utf-8"), salt, iterations)
    return hmac.compare_digest(got, dk)


class SignInThrottle:
    """Password attempts of the whole server, one at a time, with a delay after each failure.

    A wrong password is answered only after ``base * 2**(n-1)`` seconds (at most ``cap``), n = failures in
    the last ``window`` seconds across all sessions. Attempts wait for each other (a lock), so opening more
    sessions does not guess faster: at most one guess per delay. The price: while someone keeps guessing,
    the right password waits its turn too.
    """

    def __init__(self, base: float = 1.0, cap: float = 16.0, window: float = 900.0, clock=time.monotonic,
                 sleep=time.sleep):
        self.base, self.cap, self.window = base, cap, window
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._failures: list[float] = []

    def next_delay(self) -> float:
        """The delay the next failure would get."""
        now = self._clock()
        n = sum(1 for t in self._failures if now - t < self.window) + 1
        return min(self.cap, self.base * 2 ** (n - 1))

    def attempt(self, password: str, encoded: str) -> tuple[bool, float]:
        """``(ok, seconds waited)``; raises :class:`AccessError` for a malformed hash."""
        with self._lock:
            if verify_password(password, encoded):
                return True, 0.0
            delay = self.next_delay()
            now = self._clock()
            self._failures = [t for t in self._failures if now - t < self.window] + [now]
            self._sleep(delay)
            return False, delay


THROTTLE = SignInThrottle()          # one per server process, shared by every session


# ------------------------------------------------------------------ command line: python -m snw_core password-hash

def add_cli(sub) -> None:
    p = sub.add_parser("password-hash", help="print the salted hash of an engineer password (for the secrets file "
                                             "or SNW_ENGINEER_PASSWORD_HASH)")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of standard input "
                                                        "instead of asking twice")


def run_cli(a) -> int:
    """Ask for the password (twice, not echoed) and print its hash; exit 2 for an empty, short or mismatched one."""
    import getpass
    import sys
    if a.stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
        again = pw
    else:
        pw = getpass.getpass("Engineer password: ")
        again = getpass.getpass("Again: ")
    if pw != again:
        raise AccessError("The two passwords differ; nothing was printed. Run the command again.")
    if len(pw) < MIN_PASSWORD:
        raise AccessError(f"The password must have at least {MIN_PASSWORD} characters; nothing was printed.")
    print(hash_password(pw))
    print("Put this line in .streamlit/secrets.toml under [snw] as engineer_password_hash = \"...\", or in "
          f"${PASSWORD_HASH_ENV}. Keep the password itself out of every file.", file=sys.stderr)
    return 0
