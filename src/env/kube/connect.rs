//! The connection to a cluster: the user's kubeconfig, the scenario's context (never the
//! kubeconfig's `current-context`), and a client that does not retry behind firedrill's back.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::KubeError;

/// A client for `context` of the user's kubeconfig (`KUBECONFIG`, else `~/.kube/config`).
///
/// The process's TLS crypto provider must be installed first
/// ([`crate::tls::install_crypto_provider`]): with both of rustls's providers in the build,
/// kube's TLS setup panics without one, even for an `http://` server.
pub async fn connect(context: &str) -> Result<Client, KubeError> {
    connect_with(Kubeconfig::read().map_err(KubeError::Kubeconfig)?, context).await.map_err(named_files)
}

/// Fails, without a request, when the user's kubeconfig cannot be read or lacks `context`:
/// `firedrill run` asks before any drill starts, so that nothing runs against a cluster
/// another scenario's context was missing for.
pub fn has_context(context: &str) -> Result<(), KubeError> {
    let kubeconfig = Kubeconfig::read().map_err(KubeError::Kubeconfig)?;
    context_in(&kubeconfig, context).map_err(named_files)
}

/// The files the kubeconfig is read from, as kubectl and kube-rs find them: each path of
/// `KUBECONFIG` (merged, the first to set a value winning), else `~/.kube/config`.
pub fn kubeconfig_files() -> Vec<PathBuf> {
    let listed: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    match listed.is_empty() {
        true => std::env::home_dir().map(|home| home.join(".kube").join("config")).into_iter().collect(),
        false => listed,
    }
}

/// A [`KubeError::NoContext`] naming the files of the kubeconfig it was looked for in.
fn named_files(e: KubeError) -> KubeError {
    match e {
        KubeError::NoContext { context, known, .. } => {
            let files = kubeconfig_files().iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(":");
            KubeError::NoContext { context, known, files: Some(files) }
        }
        other => other,
    }
}

/// Whether `kubeconfig` has `context`.
fn context_in(kubeconfig: &Kubeconfig, context: &str) -> Result<(), KubeError> {
    match kubeconfig.contexts.iter().any(|c| c.name == context) {
        true => Ok(()),
        false => {
            let known = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
            Err(KubeError::NoContext { context: context.into(), known, files: None })
        }
    }
}

/// A client for `context` of `kubeconfig`; refused when the kubeconfig has no such context,
/// rather than falling back to its current one.
pub async fn connect_with(kubeconfig: Kubeconfig, context: &str) -> Result<Client, KubeError> {
    context_in(&kubeconfig, context)?;
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
