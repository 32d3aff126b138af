"""redis-py at its default settings (RESP3 in redis-py 5+/8.x) against one address.

Run by tests/resp3.rs, or by hand: python3 tests/clients/redis_py_resp3.py HOST:PORT [--strings-only]

Checks that the connection really speaks RESP3, then SET/GET, a miss, HSET/HGETALL (a
dict), a pipeline of mixed types (without MULTI: our server has no transactions), and INFO.
`--strings-only` is for our own cache server, which stores strings only: the dict then comes
from CONFIG GET (a RESP3 map) instead of HGETALL.
Prints `OK`, or `FAIL <step>: <what happened>` and exits 1.
"""

import sys

import redis

TIMEOUT = 10.0


def check(r, step, strings_only):
    step[0] = "HELLO"
    hello = r.execute_command("HELLO")
    assert isinstance(hello, dict) and hello[b"proto"] == 3, hello

    step[0] = "set/get"
    assert r.set("py3:s", "v") is True
    assert r.get("py3:s") == b"v"
    assert r.get("py3:missing") is None

    if strings_only:
        step[0] = "config get (a map)"
        assert r.config_get("appendonly") == {"appendonly": "no"}
    else:
        step[0] = "hset/hgetall"
        assert r.hset("py3:h", mapping={"a": "1", "b": "2"}) == 2
        assert r.hgetall("py3:h") == {b"a": b"1", b"b": b"2"}

    step[0] = "pipeline"
    pipe = r.pipeline(transaction=False)
    pipe.set("py3:n", 10)
    pipe.incrby("py3:n", 5)
    pipe.get("py3:n")
    pipe.mget("py3:s", "py3:missing", "py3:n")
    pipe.exists("py3:s", "py3:missing")
    pipe.delete("py3:s")
    expected = [True, 15, b"15", [b"v", None, b"15"], 1, 1]
    if not strings_only:
        pipe.hgetall("py3:h")
        expected.append({b"a": b"1", b"b": b"2"})
    got = pipe.execute()
    assert got == expected, got

    step[0] = "info"
    assert r.info()["redis_version"], "INFO has a redis_version"


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), socket_timeout=TIMEOUT)
    step = ["connect"]
    try:
        check(r, step, "--strings-only" in sys.argv[2:])
    except Exception as error:  # noqa: BLE001 - any failure is reported the same way
        print(f"FAIL {step[0]}: {type(error).__name__}: {error!r}"[:2000])
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
