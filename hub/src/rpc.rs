//! The RPC dispatch table: domain features register methods that clients call with the
//! `rpc` command over their connection.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::codes::ClientError;
use crate::node::Node;
use crate::protocol::RawJson;

/// Who calls an RPC method, and the node it is connected to (so handlers can publish
/// without holding the node themselves).
#[derive(Clone)]
pub struct RpcCaller {
    pub user: String,
    pub client: String,
    pub node: Arc<Node>,
}

impl std::fmt::Debug for RpcCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcCaller")
            .field("user", &self.user)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

pub type RpcFuture = Pin<Box<dyn Future<Output = Result<Option<RawJson>, ClientError>> + Send>>;

/// An RPC method: gets the caller and the request data (JSON `null` when absent).
pub type RpcHandler = Arc<dyn Fn(RpcCaller, RawJson) -> RpcFuture + Send + Sync>;

#[derive(Default, Clone)]
pub struct RpcRegistry {
    methods: HashMap<String, RpcHandler>,
}

impl RpcRegistry {
    /// Registers `method`, replacing any earlier handler of the same name.
    pub fn register<F, Fut>(&mut self, method: &str, handler: F)
    where
        F: Fn(RpcCaller, RawJson) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<RawJson>, ClientError>> + Send + 'static,
    {
        let handler: RpcHandler = Arc::new(move |caller, data| Box::pin(handler(caller, data)));
        self.methods.insert(method.to_owned(), handler);
    }

    pub fn get(&self, method: &str) -> Option<&RpcHandler> {
        self.methods.get(method)
    }
}

/// JSON `null`, the data of an RPC call without data.
pub fn null() -> RawJson {
    // "null" is valid JSON.
    RawValue::from_string("null".to_owned()).expect("null is valid JSON")
}
