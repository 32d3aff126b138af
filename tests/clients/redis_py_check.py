"""redis-py at its default settings (RESP3 since redis-py 5+/8.x) through the proxy.

Run by tests/clients.rs (`cargo test -p e2e --test clients -- --ignored`), or by hand:

    python3 tests/clients/redis_py_check.py PROXY_HOST:PORT BACKEND_HOST:PORT...

The backends are only read (INFO clients) to see that a blocking pop is really blocked
before it is woken. Prints `OK`, or `FAIL <step>: <what happened>` and exits 1.
"""

import sys
import threading
import time

import redis

TIMEOUT = 10.0


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def blocked_clients(backends):
    total = 0
    for backend in backends:
        total += int(backend.info("clients").get("blocked_clients", 0))
    return total


def check(proxy, backends, step):
    step[0] = "ping"
    assert proxy.ping() is True

    step[0] = "pipeline of mixed types"
    pipe = proxy.pipeline(transaction=False)
    pipe.set("py:s", "v")
    pipe.get("py:s")
    pipe.hset("py:h", mapping={"a": "1", "b": "2"})
    pipe.hgetall("py:h")
    pipe.rpush("py:l", "x", "y")
    pipe.lrange("py:l", 0, -1)
    pipe.sadd("py:set", "m", "n")
    pipe.smembers("py:set")
    pipe.zadd("py:z", {"a": 1.5})
    pipe.zrange("py:z", 0, -1, withscores=True)
    pipe.incr("py:n")
    got = pipe.execute()
    assert got[0] is True, got
    assert got[1] == b"v", got
    assert got[2] == 2 and got[3] == {b"a": b"1", b"b": b"2"}, got
    assert got[4] == 2 and got[5] == [b"x", b"y"], got
    assert got[6] == 2 and set(got[7]) == {b"m", b"n"}, got
    assert got[8] == 1 and [tuple(pair) for pair in got[9]] == [(b"a", 1.5)], got
    assert got[10] == 1, got

    step[0] = "transaction on one tag"
    pipe = proxy.pipeline(transaction=True)
    pipe.set("{py}a", "1")
    pipe.incrby("{py}a", 5)
    pipe.set("{py}b", "x")
    pipe.mget("{py}a", "{py}b")
    got = pipe.execute()
    assert got == [True, 6, True, [b"6", b"x"]], got

    step[0] = "script loaded and called"
    incrby = proxy.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incrby(keys=["py:counter"], args=[5]) == 5
    sha = proxy.script_load("return redis.call('GET', KEYS[1])")
    assert proxy.evalsha(sha, 1, "py:counter") == b"5"

    step[0] = "blocking pop woken by a push"
    popped = []
    popper = redis.Redis(*proxy_addr, socket_timeout=TIMEOUT)
    thread = threading.Thread(target=lambda: popped.append(popper.blpop(["py:queue"], timeout=5)))
    thread.start()
    deadline = time.monotonic() + 5
    while blocked_clients(backends) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert blocked_clients(backends) == 1, "BLPOP never blocked on a backend"
    assert proxy.lpush("py:queue", "hello") == 1
    thread.join(TIMEOUT)
    assert popped and popped[0] is not None and list(popped[0]) == [b"py:queue", b"hello"], popped

    step[0] = "pub/sub message delivered"
    pubsub = proxy.pubsub()
    pubsub.subscribe("py:channel")
    confirmation = pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe", confirmation
    assert proxy.publish("py:channel", "hello") == 1
    message = pubsub.get_message(timeout=5)
    assert message is not None and message["type"] == "message", message
    assert message["channel"] == b"py:channel" and message["data"] == b"hello", message
    pubsub.close()


proxy_addr = split(sys.argv[1])


def main():
    # Defaults, apart from a timeout so that a proxy that never answers fails the check.
    proxy = redis.Redis(*proxy_addr, socket_timeout=TIMEOUT)
    backends = [redis.Redis(*split(addr), socket_timeout=TIMEOUT) for addr in sys.argv[2:]]
    step = ["connect"]
    try:
        check(proxy, backends, step)
    except Exception as error:  # noqa: BLE001 - any failure is reported the same way
        print(f"FAIL {step[0]}: {type(error).__name__}: {error!r}"[:2000])
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
