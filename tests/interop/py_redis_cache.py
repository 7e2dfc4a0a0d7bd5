"""Python `redis` + `msgpack` as a peer of msgwire's Redis cache and bus.

    py_redis_cache.py cache PORT READ_KEY WRITE_KEY
        Reads READ_KEY (MessagePack that msgwire's RedisCache stored), prints it as JSON
        on stdout with its TTL in ms, then stores {"from": "python", "n": [1, 2, 3],
        "blob": b"\\x00\\xff"} under WRITE_KEY with `ex=60` for msgwire to read.

    py_redis_cache.py get PORT KEY
        Prints {"value": <KEY's MessagePack as JSON>, "ttl_ms": n}; exits 1 if KEY is
        not in Redis.

    py_redis_cache.py set PORT KEY JSON
        Stores JSON, as MessagePack, under KEY with `ex=60`; prints {"stored": KEY}.

    py_redis_cache.py publish PORT CHANNEL
        Publishes the envelope of msgwire's RedisBus (8 origin bytes, then the
        MessagePack payload) of {"from": "python"} on CHANNEL and prints how many
        subscribers Redis reached.
"""
import json
import os
import sys

import msgpack
import redis


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    if mode == "cache":
        read_key, write_key = sys.argv[3], sys.argv[4]
        raw = r.get(read_key)
        if raw is None:
            sys.exit(f"{read_key} is not in Redis")
        value = msgpack.unpackb(raw, raw=False)
        ttl_ms = r.pttl(read_key)
        r.set(
            write_key,
            msgpack.packb(
                {"from": "python", "n": [1, 2, 3], "blob": b"\x00\xff"},
                use_bin_type=True,
            ),
            ex=60,
        )
        json.dump({"value": value, "ttl_ms": ttl_ms}, sys.stdout)
    elif mode == "get":
        key = sys.argv[3]
        raw = r.get(key)
        if raw is None:
            sys.exit(f"{key} is not in Redis")
        json.dump({"value": msgpack.unpackb(raw, raw=False), "ttl_ms": r.pttl(key)}, sys.stdout)
    elif mode == "set":
        key, value = sys.argv[3], json.loads(sys.argv[4])
        r.set(key, msgpack.packb(value, use_bin_type=True), ex=60)
        json.dump({"stored": key}, sys.stdout)
    elif mode == "publish":
        channel = sys.argv[3]
        envelope = os.urandom(8) + msgpack.packb({"from": "python"}, use_bin_type=True)
        print(r.publish(channel, envelope))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
