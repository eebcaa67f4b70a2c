"""Accounts, password hashes, login sessions, signed tokens and the users CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pipeline.config import Settings
from pipeline.review import accounts, signing
from pipeline.storage.store import LoginSession, User, session_scope, upgrade


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    return url


def test_passwords_are_hashed_and_checked(url):
    with session_scope(url) as s:
        user = accounts.add_user(s, "anna", "listener", "secret-pass")
        assert user.password_hash.startswith("$argon2") and "secret-pass" not in user.password_hash
    with session_scope(url) as s:
        assert accounts.authenticate(s, "Anna", "secret-pass").role == "listener"
        assert accounts.authenticate(s, "anna", "wrong-pass") is None
        assert accounts.authenticate(s, "nobody", "secret-pass") is None
        with pytest.raises(accounts.AccountError, match="already exists"):
            accounts.add_user(s, "ANNA", "listener", "secret-pass")
        with pytest.raises(accounts.AccountError, match="role"):
            accounts.add_user(s, "x", "admin", "secret-pass")
        with pytest.raises(accounts.AccountError, match="short"):
            accounts.add_user(s, "y", "listener", "123")


def test_a_login_lives_on_the_server_and_ends_on_logout_password_change_or_disable(url):
    """The cookie is only a key to a session row: ending the row refuses the
    cookie at once, whatever copy of it someone kept."""
    t0 = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    with session_scope(url) as s:
        uid = accounts.add_user(s, "anna", "listener", "secret-pass").id
        user, ticket = accounts.start_session(s, accounts.authenticate(s, "anna", "secret-pass"), now=t0)
    with session_scope(url) as s:
        assert accounts.session_user(s, user.session_id, now=t0).name == "anna"
        assert accounts.redeem_ticket(s, ticket, now=t0 + accounts.TICKET_TTL * 2) is None  # a stale ticket is dead
        cookie = accounts.redeem_ticket(s, ticket, now=t0)
        assert cookie and ticket not in cookie
        assert accounts.redeem_ticket(s, ticket, now=t0) is None  # once only
        stored = s.scalars(select(LoginSession.token_hash)).all()
        assert cookie not in stored and ticket not in str(stored)  # only hashes are kept
    with session_scope(url) as s:
        assert accounts.cookie_user(s, cookie, now=t0).session_id == user.session_id
        assert accounts.cookie_user(s, cookie[:-1], now=t0) is None
        assert accounts.cookie_user(s, cookie, now=t0 + accounts.SESSION_TTL + dt.timedelta(seconds=1)) is None
        accounts.end_session(s, user.session_id)
    with session_scope(url) as s:
        assert accounts.cookie_user(s, cookie, now=t0) is None
        assert accounts.session_user(s, user.session_id, now=t0) is None

    def live_login() -> tuple[accounts.CurrentUser, str]:
        with session_scope(url) as s:
            user, ticket = accounts.start_session(s, accounts.CurrentUser(uid, "anna", "listener"))
            return user, accounts.redeem_ticket(s, ticket)

    for end in (lambda s: accounts.set_password(s, uid, "new-secret-pass"), lambda s: accounts.set_active(s, uid, False)):
        (user, cookie), (other, _) = live_login(), live_login()
        with session_scope(url) as s:
            end(s)
        with session_scope(url) as s:
            assert accounts.cookie_user(s, cookie) is None and accounts.session_user(s, other.session_id) is None
    with session_scope(url) as s:
        assert accounts.authenticate(s, "anna", "new-secret-pass") is None  # disabled


def test_one_address_guessing_many_accounts_is_slowed_then_locked_and_every_try_is_logged(url):
    """Per-account counts never trip when each account gets one guess: the
    address is throttled too, and a refusal stays in the audit log although the
    login's transaction fails."""
    from pipeline.review import audit

    t0 = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    guesser, office = "203.0.113.7", "198.51.100.1"
    with session_scope(url) as s:
        for i in range(accounts.ADDRESS_LOCK_AFTER):
            accounts.add_user(s, f"user{i}", "listener", "secret-pass")
    for i in range(accounts.ADDRESS_DELAY_AFTER):
        with session_scope(url) as s:
            assert accounts.authenticate(s, f"user{i}", "wrong-pass", now=t0, address=guesser) is None
    with pytest.raises(accounts.LoginLocked), session_scope(url) as s:
        accounts.authenticate(s, "user0", "secret-pass", now=t0, address=guesser)  # right password, but wait
    with session_scope(url) as s:
        assert accounts.authenticate(s, "user0", "secret-pass", now=t0, address=office).name == "user0"
        assert accounts.authenticate(s, "user0", "secret-pass", now=t0 + dt.timedelta(seconds=2), address=guesser)
    t = t0 + dt.timedelta(seconds=2)
    for i in range(accounts.ADDRESS_DELAY_AFTER, accounts.ADDRESS_LOCK_AFTER):
        t += dt.timedelta(seconds=accounts.MAX_DELAY_S + 1)
        with session_scope(url) as s:
            assert accounts.authenticate(s, f"user{i}", "wrong-pass", now=t, address=guesser) is None
    for later in (dt.timedelta(seconds=accounts.MAX_DELAY_S + 1), dt.timedelta(seconds=accounts.LOCK_S - 1)):
        with pytest.raises(accounts.LoginLocked), session_scope(url) as s:
            accounts.authenticate(s, "user1", "secret-pass", now=t + later, address=guesser)
    with session_scope(url) as s:  # the lock ends LOCK_S after the last failure
        assert accounts.authenticate(s, "user1", "secret-pass", now=t + dt.timedelta(seconds=accounts.LOCK_S + 1), address=guesser)
    with session_scope(url) as s:
        log = audit.recent(s, limit=1000)
    actions = [e.action for e in log[::-1]]
    assert actions.count("login_failed") == accounts.ADDRESS_LOCK_AFTER and actions.count("login_refused") == 3
    assert actions.count("login") == 3 and {e.address for e in log} == {guesser, office}


def test_signed_tokens_expire_and_keep_their_purpose(tmp_path):
    secret = signing.load_secret(Settings(data_dir=tmp_path))
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert signing.load_secret(Settings(data_dir=tmp_path)) == secret  # generated once
    assert signing.load_secret(Settings(data_dir=tmp_path, secret_key="abc")) == b"abc"
    token = signing.sign(signing.AUDIO, 7, secret, ttl_s=60, now=1000)
    assert signing.verify(token, signing.AUDIO, secret, now=1059) == 7
    with pytest.raises(signing.SignatureError, match="expired"):
        signing.verify(token, signing.AUDIO, secret, now=1061)
    with pytest.raises(signing.SignatureError, match="not 'other'"):
        signing.verify(token, "other", secret, now=1000)
    with pytest.raises(signing.SignatureError):
        signing.verify("garbage", signing.AUDIO, secret)
    assert signing.audio_path(7, 3, secret).startswith("/api/audio/")


def test_a_listening_link_outlives_a_long_call_played_through():
    """The page re-signs the link only when it runs: a listener who plays a
    45-minute call through without touching the form must not lose the audio
    at minute 30."""
    secret = b"k" * 32
    call_s = 45 * 60
    token = signing.audio_path(7, 3, secret, call_s, now=1000).rsplit("/", 1)[1]
    assert signing.verify(token, signing.AUDIO, secret, now=1000 + call_s + 60) == [7, 3]
    with pytest.raises(signing.SignatureError, match="expired"):
        signing.verify(token, signing.AUDIO, secret, now=1000 + call_s + signing.AUDIO_TTL_S + 1)


def test_the_database_file_is_created_readable_by_its_owner_only(tmp_path):
    """Password hashes, operators' names and customers' phones live there."""
    url = f"sqlite:///{tmp_path / 'data' / 'callreview.db'}"
    upgrade(url)
    with session_scope(url) as s:
        accounts.add_user(s, "anna", "listener", "secret-pass")
    for f in (tmp_path / "data").iterdir():  # the file and SQLite's -wal and -shm beside it
        assert f.stat().st_mode & 0o077 == 0, (f.name, oct(f.stat().st_mode))


def test_a_signed_token_has_one_spelling_only(tmp_path):
    """Base64 padding or other trailing bits must not make a second token that
    verifies (the same cookie in another spelling slips past a revocation list)."""
    secret = b"k" * 32
    token = signing.sign(signing.AUDIO, 7, secret, ttl_s=60, now=1000)
    assert signing.verify(token, signing.AUDIO, secret, now=1000) == 7
    body, mac = token.split(".")
    respelled = [f"{body}.{mac}=", f"{body}=.{mac}", f"{body}.{mac}==", f"{body}.{mac[:-1]}{'B' if mac[-1] == 'A' else 'A'}",
                 f"{body}.{mac.replace('-', '+').replace('_', '/')}" if ("-" in mac or "_" in mac) else f"{body} .{mac}"]
    for bad in respelled:
        with pytest.raises(signing.SignatureError):
            signing.verify(bad, signing.AUDIO, secret, now=1000)


def test_users_cli(tmp_path, monkeypatch):
    from pipeline import cli

    monkeypatch.setenv("CALLREVIEW_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(cli.app, ["users", "add", "boss", "--role", "owner", "--password", "secret-pass"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli.app, ["users", "add", "anna"], input="secret-pass\nsecret-pass\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli.app, ["users", "list"])
    assert "boss" in res.output and "owner" in res.output and "anna" in res.output
    res = runner.invoke(cli.app, ["users", "add", "anna", "--password", "secret-pass"])
    assert res.exit_code == 2 and "already exists" in res.output


def test_guessing_a_password_is_slowed_then_locked_and_the_owner_unlocks(url, monkeypatch):
    from pipeline.cli import app
    from pipeline.config import get_settings

    utc = dt.timezone.utc
    t0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=utc)
    with session_scope(url) as s:
        accounts.add_user(s, "anna", "listener", "secret-pass")

    def attempt(password, at):
        with session_scope(url) as s:
            return accounts.authenticate(s, "anna", password, now=at)

    for _ in range(accounts.DELAY_AFTER):
        assert attempt("wrong", t0) is None
    # After five wrong passwords the next try waits 1 s: even the right password is refused now.
    with pytest.raises(accounts.LoginLocked):
        attempt("secret-pass", t0)
    assert attempt("secret-pass", t0 + dt.timedelta(seconds=2)) is not None  # and then resets the count
    # Twenty wrong in a row, each after its wait, lock the account for 15 minutes.
    t = t0 + dt.timedelta(seconds=10)
    for _ in range(accounts.LOCK_AFTER):
        assert attempt("wrong", t) is None
        t += dt.timedelta(seconds=accounts.MAX_DELAY_S + 1)
    for later in (0, 800):
        with pytest.raises(accounts.LoginLocked):
            attempt("secret-pass", t + dt.timedelta(seconds=later))
    runner = CliRunner()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    with session_scope(url) as s:
        assert s.scalar(select(User.failed_logins).where(User.name == "anna")) == accounts.LOCK_AFTER
    result = runner.invoke(app, ["users", "unlock", "anna"])
    assert result.exit_code == 0, result.output
    assert attempt("secret-pass", t) is not None
    assert runner.invoke(app, ["users", "unlock", "nobody"]).exit_code == 2


@pytest.mark.parametrize("name, role, password, why", [
    ("boss", "owner", "short-pw1", "too short: use at least 10"),
    ("anna", "listener", "1234567", "too short: use at least 8"),
    ("listener", "listener", "listener", "contains the user name"),
    ("anna", "listener", "my-Anna-2026", "contains the user name"),
    ("anna", "listener", "qwerty123", "most common"),
    ("boss", "owner", "1234567890", "most common"),
])
def test_weak_passwords_are_refused(url, name, role, password, why):
    with session_scope(url) as s, pytest.raises(accounts.AccountError, match=why):
        accounts.add_user(s, name, role, password)
