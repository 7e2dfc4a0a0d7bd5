"""pynvim's msgpack-rpc session layer as a client of `msgwire serve`.

    py_pynvim_client.py HOST PORT     calls add(1, 2) and greet("pynvim") through
                                      pynvim.msgpack_rpc.tcp_session; prints the results
"""
import json
import sys

from pynvim.msgpack_rpc import tcp_session

session = tcp_session(sys.argv[1], int(sys.argv[2]))
added = session.request("add", 1, 2)
greeting = session.request("greet", "pynvim")
session.close()
print(json.dumps({"add": added, "greet": greeting}))
