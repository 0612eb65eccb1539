"""Django's Redis cache, keeping one client per connection pool.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` object for every cache
call; building one fills a table of about 170 response callbacks. A signed-in request makes
several cache calls (session, rate limit, feed version), so that is measurable per request. A
`redis.Redis` client is safe to share between threads (it takes connections from its pool per
command), so one per pool is kept and reused.

Django's `incr()` also asks EXISTS, then INCRBY: two round trips, and a key that expires between
them comes back as a fresh counter starting at `delta`. Here it is one server-side script, and
`incr_many()` bumps several counters in one round trip.
"""

from django.core.cache.backends import redis

# INCRBY only a key that exists (Django's contract: ValueError otherwise), atomically.
INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""
# The same for each of KEYS: its new value, or nil where it does not exist.
INCR_EACH_IF_EXISTS = """
local values = {}
for i, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then
        values[i] = redis.call('INCRBY', key, ARGV[1])
    else
        values[i] = false
    end
end
return values
"""
# Count one hit: the counter starts at 1 and expires ARGV[1] seconds after the first hit.
HIT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return count
"""


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._scripts = {}

    def _script(self, client, source):
        """EVALSHA of `source`, loading it on first use (or after a restart)."""
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[id(client), source] = client.register_script(source)
        return script

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        value = self._script(client, INCR_IF_EXISTS)(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def incr_many(self, keys, delta):
        client = self.get_client(keys[0], write=True)
        return self._script(client, INCR_EACH_IF_EXISTS)(keys=keys, args=[delta])

    def hit(self, key, timeout):
        client = self.get_client(key, write=True)
        return self._script(client, HIT)(keys=[key], args=[timeout])

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(
                    self._servers[index], **self._pool_options
                )
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient

    def validate_key(self, key):
        """Nothing to check: Django's check is memcached's (at most 250 characters, no spaces or
        control characters), a warning for portability, and reads every character of every key
        of every cache call. The keys are the same on the embedded default's file cache, which
        still checks them."""

    def hit(self, key, timeout):
        """Count one hit on `key`, which starts at 1 and expires `timeout` seconds after the
        first hit: INCR and EXPIRE NX in one round trip, one script (a rate limit's counter;
        a script costs the client less than a pipeline of the two)."""
        return self._cache.hit(self.make_and_validate_key(key), timeout)

    def incr_many(self, keys, delta=1):
        """{key: its value after adding `delta`, or None where it does not exist}, for every
        key, in one round trip (`incr()` of each, without the ValueError)."""
        made = {self.make_and_validate_key(key): key for key in keys}
        values = self._cache.incr_many(list(made), delta)
        return dict(zip(made.values(), values, strict=True))
