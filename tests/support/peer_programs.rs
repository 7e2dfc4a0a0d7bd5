// Finding the third-party peer programs the interop tests drive: the Python in `.venv`
// and the Node packages in `tests/interop/node_modules`, both installed by
// `scripts/test`. Shared by the test crates of msgwire-frame, msgwire-rpc and msgwire,
// each of which includes this file from its `tests/<helpers>/mod.rs` with
// `#[path = "../../../../tests/support/peer_programs.rs"]`.
// A missing peer fails the test with a message saying how to install it, never skips it.

use std::path::PathBuf;
use std::process::Command;

/// The repository root (every crate sits at `crates/<name>`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with the interop peers installed: `$MSGWIRE_PYTHON`, else `.venv`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("MSGWIRE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "no Python with the interop peers at {}: run scripts/test (it creates .venv with \
         msgpack, websockets and pynvim), or set MSGWIRE_PYTHON",
        path.display()
    );
    path
}

/// `python tests/interop/<script> ARGS`.
pub fn python_script(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/interop").join(script))
        .args(args);
    cmd
}

/// `node tests/interop/<script> ARGS`, with the npm packages `scripts/test` installs
/// (`$MSGWIRE_NODE_MODULES`, else `tests/interop/node_modules`).
pub fn node_script(script: &str, args: &[&str]) -> Command {
    let modules = std::env::var_os("MSGWIRE_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("tests/interop/node_modules"));
    for package in ["@msgpack/msgpack", "msgpack5rpc"] {
        assert!(
            modules.join(package).exists(),
            "{package} is not installed in {}: run scripts/test (npm ci in tests/interop), \
             or set MSGWIRE_NODE_MODULES",
            modules.display()
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/interop").join(script))
        .args(args)
        .env("NODE_PATH", &modules);
    cmd
}
