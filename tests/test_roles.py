"""Roles (snw_core.roles): who is an engineer, the password hash, the sign-in delay; the password-hash CLI."""
import hashlib
import io
import threading

import pytest

from snw_core import roles as R
from snw_core.__main__ import main


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("192.168.1.20", False),
    ("dashboard.plant.local", False)])
def test_is_loopback(address, loopback):
    assert R.is_loopback(address) is loopback


def test_loopback_is_an_engineer_any_other_address_a_viewer():
    assert R.resolve_actor("127.0.0.1", {}, {}) == R.LOCAL
    for address in ("0.0.0.0", "", None, "10.0.0.5"):
        a = R.resolve_actor(address, {}, {})
        assert a.role == R.VIEWER and not a.is_engineer and a.how == "not signed in"


@pytest.mark.parametrize("value, forced", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_viewer_only_wins_everywhere(value, forced):
    encoded = R.hash_password("engineer-pw", iterations=1000)
    signin = {"name": "Ann", "fingerprint": R.hash_fingerprint(encoded)}
    env = {R.VIEWER_ONLY_ENV: value, R.PASSWORD_HASH_ENV: encoded}
    for address in ("127.0.0.1", "0.0.0.0"):
        a = R.resolve_actor(address, {}, env, password_signin=signin)
        assert a.is_engineer is (not forced)
        if forced:
            assert a.how == "viewer-only"


def test_password_signin_counts_only_while_the_same_hash_is_configured():
    encoded = R.hash_password("engineer-pw", iterations=1000)
    signin = {"name": "Ann", "fingerprint": R.hash_fingerprint(encoded)}
    a = R.resolve_actor("0.0.0.0", {}, {R.PASSWORD_HASH_ENV: encoded}, password_signin=signin)
    assert a.is_engineer and a.name == "Ann (password)" and a.how == "password"
    # the secrets file works like the variable; the variable wins when both are set
    a = R.resolve_actor("0.0.0.0", {"snw": {"engineer_password_hash": encoded}}, {}, password_signin=signin)
    assert a.is_engineer
    other = R.hash_password("engineer-pw", iterations=1000)           # same password, new salt: a new hash
    assert not R.resolve_actor("0.0.0.0", {}, {R.PASSWORD_HASH_ENV: other}, password_signin=signin).is_engineer
    assert not R.resolve_actor("0.0.0.0", {}, {}, password_signin=signin).is_engineer    # hash removed
    assert not R.resolve_actor("0.0.0.0", {"snw": {"engineer_password_hash": encoded}},
                               {R.PASSWORD_HASH_ENV: other}, password_signin=signin).is_engineer


def test_oidc_engineers_come_from_the_allow_list():
    secrets = {"snw": {"engineers": ["ann@plant.example", "@qa.plant.example"]}}
    user = lambda email, **kw: {"is_logged_in": True, "email": email, **kw}  # noqa: E731
    assert R.resolve_actor("0.0.0.0", secrets, {}, oidc_user=user("Ann@Plant.example")).is_engineer
    assert R.resolve_actor("0.0.0.0", secrets, {}, oidc_user=user("bob@qa.plant.example")).is_engineer
    assert R.resolve_actor("0.0.0.0", secrets, {}, oidc_user=user("bob@qa.plant.example")).how == "sso"
    for u in (user("eve@plant.example"), user("eve@notqa.plant.example"), user("ann@plant.example",
                                                                                email_verified=False)):
        a = R.resolve_actor("0.0.0.0", secrets, {}, oidc_user=u)
        assert a.role == R.VIEWER and a.name == u["email"]
    assert not R.resolve_actor("0.0.0.0", {}, {}, oidc_user=user("ann@plant.example")).is_engineer   # no list


def test_asking_to_view_as_a_viewer_only_lowers():
    assert R.resolve_actor("127.0.0.1", {}, {}, as_viewer=True).role == R.VIEWER
    assert R.resolve_actor("0.0.0.0", {}, {}, as_viewer=True).role == R.VIEWER


def test_oidc_providers_need_the_shared_settings():
    base = {"redirect_uri": "http://h:8501/oauth2callback", "cookie_secret": "x" * 32}
    prov = {"client_id": "id", "client_secret": "s",
            "server_metadata_url": "https://idp/.well-known/openid-configuration"}
    assert R.oidc_providers({}) == []
    assert R.oidc_providers({"auth": dict(base, **prov)}) == [None]
    assert R.oidc_providers({"auth": dict(base, microsoft=prov)}) == ["microsoft"]
    assert R.oidc_providers({"auth": dict(prov, microsoft=prov)}) == []            # no redirect_uri/cookie_secret
    assert R.oidc_providers({"auth": dict(base, microsoft={"client_id": "id"})}) == []


def test_actor_require():
    R.LOCAL.require("delete runs")
    with pytest.raises(R.AccessError, match="Only an engineer can delete runs.*sign in"):
        R.Actor("viewer", R.VIEWER, "not signed in").require("delete runs")
    with pytest.raises(R.AccessError, match="viewer-only mode"):
        R.Actor("viewer", R.VIEWER, "viewer-only").require("stop a run")


# ------------------------------------------------------------------ the password hash

def test_hash_format_against_a_published_pbkdf2_sha256_vector():
    # PBKDF2-HMAC-SHA256, P="password", S="salt", c=1, dkLen=32 (the widely published test vector)
    expected = bytes.fromhex("120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
    encoded = R.hash_password("password", iterations=1, salt=b"salt")
    algo, iters, salt, dk = encoded.split("$")
    assert (algo, iters) == ("pbkdf2_sha256", "1")
    assert R._unb64(salt) == b"salt" and R._unb64(dk) == expected
    assert hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1) == expected


def test_verify_and_salt():
    a = R.hash_password("engineer-pw", iterations=1000)
    b = R.hash_password("engineer-pw", iterations=1000)
    assert a != b                                                 # a fresh random salt each time
    assert R.verify_password("engineer-pw", a) and R.verify_password("engineer-pw", b)
    assert not R.verify_password("engineer-pW", a) and not R.verify_password("", a)
    assert R.hash_password("x" * 8).split("$")[1] == str(R.ITERATIONS)


@pytest.mark.parametrize("bad", ["", "secret", "pbkdf2_sha256$abc$c2FsdHNhbHQ$AAAA", "md5$1$c2FsdA$AAAA",
                                 "pbkdf2_sha256$1000$c2FsdHNhbHQ$c2hvcnQ"])
def test_malformed_hash_is_refused_with_a_message(bad):
    with pytest.raises(R.AccessError, match="password-hash"):
        R.verify_password("whatever", bad)


class FakeClock:
    def __init__(self):
        self.t, self.slept = 1000.0, []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept.append(s)
        self.t += s


def test_throttle_delays_failures_and_grows():
    clock = FakeClock()
    th = R.SignInThrottle(base=1.0, cap=8.0, window=900.0, clock=clock, sleep=clock.sleep)
    encoded = R.hash_password("engineer-pw", iterations=1000)
    results = [th.attempt("wrong", encoded) for _ in range(5)]
    assert [ok for ok, _ in results] == [False] * 5
    assert clock.slept == [1.0, 2.0, 4.0, 8.0, 8.0]                # doubling, capped
    assert th.attempt("engineer-pw", encoded) == (True, 0.0)       # the right one is not delayed
    assert len(clock.slept) == 5
    clock.t += 901                                                  # failures older than the window are forgotten
    assert th.attempt("wrong", encoded) == (False, 1.0)


def test_throttle_serialises_attempts_across_sessions():
    encoded = R.hash_password("engineer-pw", iterations=1000)
    inside, overlap = [0], []
    gate = threading.Lock()

    def sleep(s):
        with gate:
            inside[0] += 1
            overlap.append(inside[0])
        threading.Event().wait(0.05)
        with gate:
            inside[0] -= 1

    th = R.SignInThrottle(base=1.0, sleep=sleep)
    threads = [threading.Thread(target=th.attempt, args=("wrong", encoded)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlap) == 4 and max(overlap) == 1                 # never two delays at once


# ------------------------------------------------------------------ python -m snw_core password-hash

def test_password_hash_cli(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["password-hash", "--stdin"]) == 0
    out, err = capsys.readouterr()
    encoded = out.strip()
    assert R.verify_password("correct horse battery", encoded) and "correct horse" not in out + err
    assert "secrets.toml" in err


def test_password_hash_cli_asks_twice(monkeypatch, capsys):
    answers = iter(["first-password", "other-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["password-hash"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "differ" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["password-hash", "--stdin"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "at least 8" in err and "Traceback" not in err
