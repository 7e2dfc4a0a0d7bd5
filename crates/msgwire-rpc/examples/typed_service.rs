//! A typed service and a typed client on loopback TCP; positional and named params
//! reach the same handler. Run: `cargo run -p msgwire-rpc --example typed_service`
use std::future::IntoFuture;

use msgwire_rpc::{Client, Dialect, Router, RpcError, Server};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Greeting {
    name: String,
    excited: bool,
}

async fn greet(g: Greeting) -> Result<String, RpcError> {
    if g.name.is_empty() {
        return Err(RpcError::invalid_argument("name is empty"));
    }
    Ok(format!(
        "Hello, {}{}",
        g.name,
        if g.excited { "!" } else { "." }
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::new(Router::new().method("greet", greet))
            .serve_tcp(listener)
            .into_future(),
    );

    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc).await?;
    let named = Greeting {
        name: "Ann".into(),
        excited: true,
    };
    let hello: String = client.call_typed("greet", &named).await?; // {"name":..,"excited":..}
    let calm: String = client.call_typed("greet", &("Bo", false)).await?; // ["Bo", false]
    println!("{hello} {calm}");
    let refused = client.call_typed::<_, String>("greet", &("", true)).await;
    println!(
        "{}",
        refused.err().map_or("accepted?".into(), |e| e.to_string())
    );
    Ok(())
}
