"""A person's sign-in: one message for every failure, the dummy hash for unknown names, and
throttling in the store per account at an address, per address and per account (times are
injected, nothing sleeps)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import signin, throttle, users
from dicomite.identity.passwords import DUMMY_HASH, needs_rehash
from dicomite.identity.signin import (
    AccountDisabled,
    SignInBusy,
    SignInError,
    SignInFailed,
    SignInThrottled,
    authenticate,
)
from dicomite.identity.throttle import Scope, lock_duration
from dicomite.store.tables import SignInThrottle, User

NAME = "grace@example.com"
PASSWORD = "Sign-in-pass-3"
WRONG = "Wrong-pass-3"
INCORRECT = "Your account or password is incorrect."
HERE = "192.0.2.10"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def person(context: Context) -> str:
    with context.store.write() as session:
        users.create_user(
            session,
            context.tenant_id,
            utcnow(),
            user_principal_name=NAME,
            display_name="Grace",
            password=users.new_password(PASSWORD),
        )
    return NAME


def attempt(
    context: Context, name: str, password: str, now: datetime, address: str = HERE
) -> User | SignInError:
    """One sign-in; an error is returned, as the portal shows it."""
    try:
        return authenticate(context.store, context.tenant_id, name, password, address, now)
    except SignInError as error:
        return error


def fail_times(context: Context, name: str, count: int, now: datetime, address: str = HERE) -> None:
    for _ in range(count):
        assert isinstance(attempt(context, name, WRONG, now, address), SignInFailed)


def throttle_row(
    context: Context, name: str, address: str = HERE, scope: Scope = Scope.ACCOUNT_AT_ADDRESS
) -> SignInThrottle | None:
    key = next(k for k in throttle.keys_for(name, address) if k.scope is scope)
    with context.store.read() as session:
        return session.scalar(
            select(SignInThrottle).where(
                SignInThrottle.tenant_id == context.tenant_id,
                SignInThrottle.scope == key.scope.value,
                SignInThrottle.user_principal_name == key.name,
                SignInThrottle.address == key.address,
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


def test_fifth_failure_locks_the_name_at_that_address_for_a_minute(
    context: Context, person: str
) -> None:
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


def test_failures_at_one_address_leave_the_account_open_elsewhere(
    context: Context, person: str
) -> None:
    now = utcnow()
    fail_times(context, person, 5, now)
    assert isinstance(attempt(context, person, PASSWORD, now), SignInThrottled)

    assert isinstance(attempt(context, person, PASSWORD, now, ELSEWHERE), User)
    assert isinstance(attempt(context, person, PASSWORD, now), SignInThrottled), "still locked"


def test_one_address_guessing_many_names_is_locked_at_the_twentieth_failure(
    context: Context, person: str
) -> None:
    now = utcnow()
    for number in range(20):
        fail_times(context, f"name{number}@example.com", 1, now)

    locked = attempt(context, person, PASSWORD, now)
    assert isinstance(locked, SignInThrottled) and locked.retry_after_seconds == 60
    assert isinstance(attempt(context, person, PASSWORD, now, ELSEWHERE), User)


def test_guessing_one_name_from_many_addresses_locks_it_at_the_fiftieth_failure(
    context: Context, person: str
) -> None:
    now = utcnow()
    for number in range(49):
        fail_times(context, person, 1, now, f"203.0.113.{number}")
    assert isinstance(attempt(context, person, PASSWORD, now, "203.0.113.200"), User)
    fail_times(context, person, 1, now, "203.0.113.201")  # the 50th failure

    locked = attempt(context, person, PASSWORD, now, "203.0.113.202")
    assert isinstance(locked, SignInThrottled) and locked.retry_after_seconds == 60
    later = now + timedelta(seconds=60)
    fail_times(context, person, 1, later, "203.0.113.203")
    row = throttle_row(context, person, scope=Scope.ACCOUNT)
    assert row is not None and row.locked_until == later + timedelta(seconds=120), "backoff"


def test_the_per_account_lock_does_not_hold_where_the_account_signed_in_lately(
    context: Context, person: str
) -> None:
    now = utcnow()
    assert isinstance(attempt(context, person, PASSWORD, now, HERE), User)
    for number in range(50):
        fail_times(context, person, 1, now, f"203.0.113.{number}")

    assert isinstance(attempt(context, person, PASSWORD, now, ELSEWHERE), SignInThrottled)
    assert isinstance(attempt(context, person, PASSWORD, now, HERE), User)


def test_an_address_is_familiar_for_thirty_days(context: Context, person: str) -> None:
    now = utcnow()
    assert isinstance(attempt(context, person, PASSWORD, now, HERE), User)
    later = now + throttle.FAMILIAR_FOR
    for number in range(50):
        fail_times(context, person, 1, later, f"203.0.113.{number}")

    assert isinstance(attempt(context, person, PASSWORD, later, HERE), SignInThrottled)


def test_successes_do_not_count_towards_an_addresss_limit(context: Context, person: str) -> None:
    now = utcnow()
    for _ in range(20):
        assert isinstance(attempt(context, person, PASSWORD, now), User)
    for number in range(19):
        fail_times(context, f"name{number}@example.com", 1, now)

    assert isinstance(attempt(context, person, PASSWORD, now), User)
    row = throttle_row(context, person, scope=Scope.ADDRESS)
    assert row is not None and (row.failures, row.locked_until) == (19, None)


def test_a_success_that_reaches_a_limit_leaves_no_lock(context: Context, person: str) -> None:
    now = utcnow()
    for number in range(19):
        fail_times(context, f"name{number}@example.com", 1, now)

    assert isinstance(attempt(context, person, PASSWORD, now), User)  # the 20th attempt
    assert isinstance(attempt(context, person, PASSWORD, now), User)


def test_ipv6_addresses_are_counted_by_their_64_bit_network(context: Context, person: str) -> None:
    now = utcnow()
    for host in range(1, 6):
        fail_times(context, person, 1, now, f"2001:db8:1:2::{host}")

    assert isinstance(
        attempt(context, person, PASSWORD, now, "2001:db8:1:2:ff::1"), SignInThrottled
    )
    assert isinstance(attempt(context, person, PASSWORD, now, "2001:db8:1:3::1"), User)


def test_attempts_at_the_same_time_cannot_slip_past_the_limit(
    context: Context, person: str
) -> None:
    now, at_once = utcnow(), signin.WAITING + 1  # as many as may wait for a hash
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        outcomes = list(pool.map(lambda _: attempt(context, person, WRONG, now), range(at_once)))

    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["SignInFailed"] * 5 + ["SignInThrottled"] * (at_once - 5)


def test_sign_ins_beyond_those_waiting_for_a_hash_are_refused_uncounted_and_unhashed(
    context: Context, person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Semaphore(0), threading.Event()
    real = signin.verify_password

    def held(stored: str, password: str) -> bool:
        entered.release()
        release.wait(timeout=120)
        return real(stored, password)

    monkeypatch.setattr(signin, "verify_password", held)
    now, admitted = utcnow(), signin.WAITING + 1
    with ThreadPoolExecutor(max_workers=admitted) as pool:
        hashing = [
            pool.submit(attempt, context, person, WRONG, now, f"203.0.113.{number}")
            for number in range(admitted)
        ]
        for _ in range(admitted):
            assert entered.acquire(timeout=120)
        refused = attempt(context, person, PASSWORD, now, ELSEWHERE)
        release.set()
        outcomes = [future.result() for future in hashing]

    assert isinstance(refused, SignInBusy) and refused.retry_after_seconds > 0
    assert not entered.acquire(blocking=False), "the refused attempt was not hashed"
    assert throttle_row(context, person, ELSEWHERE) is None, "nor counted"
    assert all(isinstance(outcome, SignInFailed) for outcome in outcomes)
    assert isinstance(attempt(context, person, PASSWORD, now, ELSEWHERE), User)


def test_rows_past_their_time_are_forgotten_as_attempts_go_on(context: Context) -> None:
    now = utcnow()
    for number in range(10):  # 21 rows: ten accounts, ten accounts at HERE, HERE
        fail_times(context, f"old{number}@example.com", 1, now)
    later = now + throttle.WINDOW
    for number in range(3):  # each forgets up to SWEEP_BATCH rows whose time has passed
        fail_times(context, f"new{number}@example.com", 1, later)

    with context.store.read() as session:
        rows = session.scalars(select(SignInThrottle)).all()
    kept = sorted((row.scope, row.user_principal_name) for row in rows)
    new = [f"new{number}@example.com" for number in range(3)]
    assert kept == [("account", n) for n in new] + [("account-address", n) for n in new] + [
        ("address", "")
    ]


def test_lock_duration() -> None:
    minutes = [lock_duration(n, 5).total_seconds() / 60 for n in range(5, 12)]
    assert minutes == [1, 2, 4, 8, 15, 15, 15]
    assert lock_duration(10_000, 5) == timedelta(minutes=15)
    assert lock_duration(50, 50) == timedelta(seconds=60)
