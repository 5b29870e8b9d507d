"""Portal passwords: argon2id hashes, verification that never raises, and Entra ID's policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from dicomite.identity.passwords import (
    DUMMY_HASH,
    check_password_policy,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from dicomite.identity.problems import InvalidInput

GOOD = "Correct-horse-7"


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password(GOOD), hash_password(GOOD)

    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert verify_password(first, GOOD)
    assert not verify_password(first, GOOD.upper())


@pytest.mark.parametrize(
    "stored",
    ["", "garbage", "$argon2id$v=19$m=1,t=1,p=1$xx$yy", "$2b$12$" + "a" * 53, "é" * 10],
)
def test_verify_never_raises_on_a_malformed_hash(stored: str) -> None:
    assert verify_password(stored, GOOD) is False


def test_verify_refuses_an_unencodable_password() -> None:
    assert verify_password(hash_password(GOOD), "\ud800abc") is False


def test_needs_rehash_for_other_parameters_or_a_malformed_hash() -> None:
    cheaper = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(GOOD)

    assert not needs_rehash(hash_password(GOOD))
    assert needs_rehash(cheaper)
    assert needs_rehash("garbage")
    assert verify_password(cheaper, GOOD), "old hashes keep verifying until they are upgraded"


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    """Unknown names are checked against it: same algorithm and parameters, no timing oracle."""
    assert DUMMY_HASH.startswith("$argon2id$")
    assert not needs_rehash(DUMMY_HASH)
    assert not verify_password(DUMMY_HASH, GOOD)


@pytest.mark.parametrize(
    "password",
    [
        "abcdEFGH",  # lowercase + uppercase only: two classes
        "abcd1234",
        "ABCD!@#$",
        "short1A",  # seven characters
        "A1b" + "x" * 254,  # 257 characters
        "Tab\there1A",
        "Null\x00ed1A",
        "Surrogate\ud800A1",
    ],
)
def test_policy_refuses(password: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_password_policy(password)
    assert "password" in raised.value.message


@pytest.mark.parametrize(
    "password",
    [
        "abcdEF12",  # three classes, eight characters
        "abcd12!!",
        "ABCD12!!",
        "abcDEF!!",
        "correct horse Battery",  # a space is a symbol
        "Zürich-Straße-9",
        "A1b" + "x" * 253,  # 256 characters
    ],
)
def test_policy_accepts(password: str) -> None:
    assert check_password_policy(password) == password


def test_policy_messages_say_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match="between 8 and 256 characters"):
        check_password_policy("Ab1!")
    with pytest.raises(InvalidInput, match="at least three of these groups"):
        check_password_policy("alllowercase")


def test_generated_passwords_meet_the_policy() -> None:
    generated = {generate_password() for _ in range(50)}

    assert len(generated) == 50
    for password in generated:
        assert len(password) == 24
        check_password_policy(password)
