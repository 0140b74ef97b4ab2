//! A test server with the network in between: the server on one port, the
//! proxy with its conditions on another, as `--network-addr` runs them.

use super::TestServer;
use skyrocket::client::Target;
use skyrocket::network::{Conditions, Network, NetworkCounters};
use skyrocket::{AppState, Config};
use std::sync::Arc;

pub struct NetServer {
    /// The server itself; `server.target()` reaches it directly.
    pub server: TestServer,
    pub network: Arc<Network>,
    /// `http://127.0.0.1:PORT` of the proxy.
    pub base: String,
}

impl NetServer {
    pub async fn start(config: Config, conditions: Conditions) -> Self {
        let network = Arc::new(Network::new(conditions));
        let state = AppState::in_memory(config).with_network(Arc::clone(&network));
        let server = TestServer::with_state(state).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(skyrocket::network::serve(
            listener,
            server.addr,
            Arc::clone(&network),
            server.state.shutdown.clone(),
        ));
        Self {
            server,
            network,
            base,
        }
    }

    /// A room reached through the network.
    pub fn through(&self, room: &str) -> Target {
        Target::new(self.base.clone(), room)
    }

    pub fn set(&self, spec: &str) {
        self.network.set(Conditions::parse(spec).unwrap());
    }

    pub fn counters(&self) -> NetworkCounters {
        self.network.counters()
    }
}
