//! The connection to a cluster: the user's kubeconfig, the scenario's context (never the
//! kubeconfig's `current-context`), and a client that does not retry behind firedrill's back.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::KubeError;

/// A client for `context` of the user's kubeconfig (`KUBECONFIG`, else `~/.kube/config`).
///
/// The process's TLS crypto provider must be installed first
/// ([`crate::tls::install_crypto_provider`]): with both of rustls's providers in the build,
/// kube's TLS setup panics without one, even for an `http://` server.
pub async fn connect(context: &str) -> Result<Client, KubeError> {
    let kubeconfig = Kubeconfig::read().map_err(KubeError::Kubeconfig)?;
    connect_with(kubeconfig, context).await
}

/// A client for `context` of `kubeconfig`; refused when the kubeconfig has no such context,
/// rather than falling back to its current one.
pub async fn connect_with(kubeconfig: Kubeconfig, context: &str) -> Result<Client, KubeError> {
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let known = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        return Err(KubeError::NoContext { context: context.into(), known });
    }
    let options = KubeConfigOptions { context: Some(context.into()), ..Default::default() };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| KubeError::Config { context: context.into(), source })?;
    Client::try_from(without_retries(config)).map_err(|source| KubeError::Client { context: context.into(), source })
}

/// `config` with kube-rs's own retries turned off. Since kube 4 the client retries 429, 503
/// and 504 answers with backoff by default (kube-client 5.0.0, src/client/builder.rs:357:
/// `.option_layer(config.default_retry.then_some(RetryLayer::new(RetryPolicy::server_retry())))`):
/// an eviction a PodDisruptionBudget blocks answers 429, so the drain would hang inside the
/// client for minutes with nothing in the timeline, and API-server errors would never reach
/// it. firedrill owns its retries (a blocked eviction every 5 s until the drain's deadline),
/// each one recorded.
pub fn without_retries(mut config: Config) -> Config {
    config.default_retry = false;
    config
}
