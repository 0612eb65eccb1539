"""The Redis cache backend (portal.cache): one client per connection pool, against real Redis."""

import threading
import warnings

import pytest
from django.core.cache import cache, caches

from portal.cache import RedisCache


def test_production_settings_use_the_portal_redis_cache():
    assert isinstance(caches["default"], RedisCache)


def test_one_client_serves_every_call():
    first = cache._cache.get_client(write=True)

    assert cache._cache.get_client() is first
    assert cache._cache.get_client(write=True) is first


def test_the_shared_client_reads_writes_and_counts_from_many_threads():
    cache.set("test:cache:counter", 0, 30)

    def bump():
        for _ in range(50):
            cache.incr("test:cache:counter")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert cache.get("test:cache:counter") == 400
    cache.set_many({"test:cache:a": {"x": 1}, "test:cache:b": "two"}, 30)
    assert cache.get_many(["test:cache:a", "test:cache:b"]) == {
        "test:cache:a": {"x": 1},
        "test:cache:b": "two",
    }
    cache.delete_many(["test:cache:counter", "test:cache:a", "test:cache:b"])


def test_a_hit_counts_and_sets_its_expiry_once(redis_commands):
    key = "test:cache:hits"
    cache.delete(key)

    counts = [cache.hit(key, 90)]  # the first use loads the script into Redis
    with redis_commands() as sent:
        counts += [cache.hit(key, 90) for _ in range(2)]

    assert sent == ["EVALSHA", "EVALSHA"]  # one round trip, one command, each

    redis_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(write=True)
    assert counts == [1, 2, 3]
    assert 0 < client.ttl(redis_key) <= 90
    client.expire(redis_key, 30)
    cache.hit(key, 90)
    assert client.ttl(redis_key) <= 30  # NX: a later hit does not extend the window
    assert cache.get(key) == 4
    cache.delete(key)


def test_incr_is_one_round_trip_and_refuses_a_missing_key(redis_commands):
    key = "test:cache:incr"
    cache.delete(key)
    cache.set(key, 40, 30)
    cache.incr(key)  # the first use loads the script into Redis
    with redis_commands() as sent:
        assert cache.incr(key) == 42
        assert cache.incr(key, 8) == 50
    assert sent == ["EVALSHA", "EVALSHA"]
    assert cache.get(key) == 50
    cache.delete(key)
    with pytest.raises(ValueError):
        cache.incr(key)
    assert cache.get(key) is None  # refused, not started at 1


def test_incr_many_counts_every_key_that_exists_in_one_round_trip(redis_commands):
    keys = ["test:cache:many:a", "test:cache:many:missing", "test:cache:many:b"]
    cache.delete_many(keys)
    cache.set_many({keys[0]: 10, keys[2]: 7}, 30)
    cache.incr_many(keys)  # the first use loads the script into Redis

    with redis_commands() as sent:
        values = cache.incr_many(keys, 5)

    assert sent == ["EVALSHA"]
    assert values == {keys[0]: 16, keys[1]: None, keys[2]: 13}
    assert cache.get_many(keys) == {keys[0]: 16, keys[2]: 13}  # the missing key not started
    cache.delete_many(keys)


def test_any_key_redis_takes_is_used_without_memcached_warnings():
    key = "test:cache:a key with spaces and more than 250 characters " + "x" * 250
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's memcached check would warn
        cache.set(key, "kept", 30)
        assert cache.get(key) == "kept"
    cache.delete(key)
