"""``PublishedKeys``: how often the keys are re-read, and which are honoured."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from dicomite.clock import utcnow
from dicomite.identity.published_keys import MAX_AGE_SECONDS, PublishedKey, PublishedKeys

PUBLIC = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


class Store:
    """What the database holds, and how often it was read."""

    def __init__(self) -> None:
        self.keys: list[PublishedKey] = []
        self.reads = 0

    def load(self) -> list[PublishedKey]:
        self.reads += 1
        return list(self.keys)


def _keys(store: Store, clock: list[float]) -> PublishedKeys:
    return PublishedKeys(store.load, clock=lambda: clock[0])


def test_unknown_kids_reload_at_most_once_a_second() -> None:
    store, clock = Store(), [0.0]
    keys = _keys(store, clock)
    for forged in range(100):
        assert keys.public_key(f"forged-{forged}", utcnow()) is None
        clock[0] += 0.001
    assert store.reads == 1
    clock[0] += 1.0
    assert keys.public_key("another", utcnow()) is None
    assert store.reads == 2


def test_a_new_key_is_honoured_on_its_first_token() -> None:
    store, clock = Store(), [0.0]
    keys = _keys(store, clock)
    store.keys = [PublishedKey("old", PUBLIC, None)]
    assert keys.public_key("old", utcnow()) is PUBLIC
    clock[0] += 1.0  # a second after the last read, whatever the age of the rest
    store.keys.append(PublishedKey("new", PUBLIC, None))
    assert keys.public_key("new", utcnow()) is PUBLIC


def test_a_key_past_its_retirement_is_refused_at_once() -> None:
    store, clock = Store(), [0.0]
    keys = _keys(store, clock)
    now = utcnow()
    store.keys = [PublishedKey("retiring", PUBLIC, now + timedelta(minutes=1))]
    assert keys.public_key("retiring", now) is PUBLIC
    assert keys.public_key("retiring", now + timedelta(minutes=1)) is None
    assert store.reads == 1


def test_a_key_withdrawn_from_the_store_is_refused_once_the_keys_are_re_read() -> None:
    store, clock = Store(), [0.0]
    keys = _keys(store, clock)
    store.keys = [PublishedKey("withdrawn", PUBLIC, None)]
    assert keys.public_key("withdrawn", utcnow()) is PUBLIC
    store.keys = []
    clock[0] += MAX_AGE_SECONDS - 0.1
    assert keys.public_key("withdrawn", utcnow()) is PUBLIC  # held until the keys are old
    clock[0] += 0.1
    assert keys.public_key("withdrawn", utcnow()) is None
    assert MAX_AGE_SECONDS <= 60  # issue 13: refused within a minute
