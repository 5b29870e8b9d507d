"""A person's sign-in: one message for every failure, the dummy hash for unknown names, and
throttling per name in the store (times are injected, nothing sleeps)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import signin, users
from dicomite.identity.passwords import DUMMY_HASH, needs_rehash
from dicomite.identity.signin import (
    AccountDisabled,
    SignInError,
    SignInFailed,
    SignInThrottled,
    authenticate,
    lock_duration,
)
from dicomite.store.tables import SignInThrottle, User

NAME = "grace@example.com"
PASSWORD = "Sign-in-pass-3"
WRONG = "Wrong-pass-3"
INCORRECT = "Your account or password is incorrect."


@pytest.fixture
def person(context: Context) -> str:
    with context.store.write() as session:
        users.create_user(
            session, context.tenant_id, utcnow(), user_principal_name=NAME,
            display_name="Grace", password=PASSWORD,
        )  # fmt: skip
    return NAME


def attempt(context: Context, name: str, password: str, now: datetime) -> User | SignInError:
    """One sign-in in its own transaction; an error is returned, as the portal shows it."""
    with context.store.write() as session:
        try:
            return authenticate(session, context.tenant_id, name, password, now)
        except SignInError as error:
            return error


def fail_times(context: Context, name: str, count: int, now: datetime) -> None:
    for _ in range(count):
        assert isinstance(attempt(context, name, WRONG, now), SignInFailed)


def throttle_row(context: Context, name: str) -> SignInThrottle | None:
    with context.store.read() as session:
        return session.scalar(
            select(SignInThrottle).where(
                SignInThrottle.tenant_id == context.tenant_id,
                SignInThrottle.user_principal_name == name,
            )
        )


def test_sign_in_is_case_insensitive(context: Context, person: str) -> None:
    user = attempt(context, "  GRACE@Example.com ", PASSWORD, utcnow())

    assert isinstance(user, User)
    assert user.user_principal_name == NAME


def test_every_failure_says_the_same(context: Context, person: str) -> None:
    now = utcnow()
    wrong_password = attempt(context, person, WRONG, now)
    unknown_name = attempt(context, "nobody@example.com", PASSWORD, now)

    assert type(wrong_password) is SignInFailed and type(unknown_name) is SignInFailed
    assert wrong_password.message == unknown_name.message == str(unknown_name) == INCORRECT


def test_unknown_names_are_checked_against_the_dummy_hash(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = signin.verify_password

    def spy(stored: str, password: str) -> bool:
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(signin, "verify_password", spy)
    assert isinstance(attempt(context, "nobody@example.com", PASSWORD, utcnow()), SignInFailed)
    assert checked == [DUMMY_HASH]


def test_disabled_is_told_only_after_the_password_checked_out(
    context: Context, person: str
) -> None:
    with context.store.write() as session:
        users.set_enabled(session, users.user_by_name(session, context.tenant_id, person), False)

    wrong = attempt(context, person, WRONG, utcnow())
    right = attempt(context, person, PASSWORD, utcnow())

    assert type(wrong) is SignInFailed and wrong.message == INCORRECT
    assert isinstance(right, AccountDisabled)
    assert right.message == "Your account has been disabled."


def test_fifth_failure_locks_the_name_for_a_minute(context: Context, person: str) -> None:
    now = utcnow()
    fail_times(context, person, 5, now)

    locked = attempt(context, person, PASSWORD, now + timedelta(seconds=1))
    assert isinstance(locked, SignInThrottled)
    assert locked.retry_after_seconds == 59
    assert "Try again in 59 seconds" in locked.message

    assert isinstance(attempt(context, person, PASSWORD, now + timedelta(seconds=60)), User)
    assert throttle_row(context, person) is None, "a success clears the count"


def test_four_failures_and_a_success_start_over(context: Context, person: str) -> None:
    now = utcnow()
    fail_times(context, person, 4, now)
    assert isinstance(attempt(context, person, PASSWORD, now), User)
    fail_times(context, person, 4, now)

    assert isinstance(attempt(context, person, PASSWORD, now), User)


def test_failures_outside_the_window_do_not_add_up(context: Context, person: str) -> None:
    now = utcnow()
    fail_times(context, person, 4, now)
    fail_times(context, person, 1, now + timedelta(minutes=15))

    row = throttle_row(context, person)
    assert row is not None
    assert (row.failures, row.locked_until) == (1, None)


def test_each_further_failure_doubles_the_lock_up_to_fifteen_minutes(
    context: Context, person: str
) -> None:
    now = utcnow()
    fail_times(context, person, 5, now)
    locks = []
    for _ in range(6):
        row = throttle_row(context, person)
        assert row is not None and row.locked_until is not None
        locks.append(row.locked_until - now)
        now = row.locked_until  # the lock just ended: within the window, the count goes on
        fail_times(context, person, 1, now)

    assert [lock.total_seconds() for lock in locks] == [60, 120, 240, 480, 900, 900]


def test_the_count_starts_over_after_a_quiet_window(context: Context, person: str) -> None:
    now = utcnow()
    fail_times(context, person, 5, now)
    after_quiet = now + timedelta(seconds=60) + timedelta(minutes=15)
    fail_times(context, person, 1, after_quiet)

    row = throttle_row(context, person)
    assert row is not None
    assert (row.failures, row.locked_until) == (1, None)


def test_unknown_names_are_throttled_alike(context: Context) -> None:
    now = utcnow()
    fail_times(context, "ghost@example.com", 5, now)

    assert isinstance(attempt(context, "Ghost@example.com", PASSWORD, now), SignInThrottled)


def test_the_lock_holds_for_the_right_password_and_is_per_name(
    context: Context, person: str
) -> None:
    now = utcnow()
    fail_times(context, "other@example.com", 5, now)
    fail_times(context, person, 5, now)

    assert isinstance(attempt(context, person, PASSWORD, now), SignInThrottled)
    assert isinstance(attempt(context, "other@example.com", PASSWORD, now), SignInThrottled)
    assert isinstance(attempt(context, "third@example.com", PASSWORD, now), SignInFailed)


def test_an_overlong_name_fails_and_is_throttled_by_its_first_256_characters(
    context: Context,
) -> None:
    now = utcnow()
    fail_times(context, "x" * 300, 5, now)

    assert isinstance(attempt(context, "x" * 256, PASSWORD, now), SignInThrottled)


def test_a_failure_survives_the_callers_rollback(context: Context, person: str) -> None:
    with pytest.raises(SignInFailed), context.store.write() as session:
        authenticate(session, context.tenant_id, person, WRONG, utcnow())

    row = throttle_row(context, person)
    assert row is not None and row.failures == 1


def test_an_old_hash_is_upgraded_at_sign_in(context: Context, person: str) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with context.store.write() as session:
        users.user_by_name(session, context.tenant_id, person).password_hash = old

    user = attempt(context, person, PASSWORD, utcnow())

    assert isinstance(user, User)
    assert user.password_hash != old
    assert not needs_rehash(user.password_hash)
    with context.store.read() as session:
        stored = users.user_by_name(session, context.tenant_id, person).password_hash
    assert stored == user.password_hash


def test_lock_duration() -> None:
    assert [lock_duration(n).total_seconds() for n in range(5, 12)] == [
        60, 120, 240, 480, 900, 900, 900,
    ]  # fmt: skip
    assert lock_duration(10_000) == timedelta(minutes=15)
