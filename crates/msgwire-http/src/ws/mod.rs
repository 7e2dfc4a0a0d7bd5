//! msgpack-rpc over WebSocket (to be written).
