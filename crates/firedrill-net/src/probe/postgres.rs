//! PostgreSQL connections as a user's client makes them: TLS as the connection string's
//! libpq parameters ask (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), on rustls. The
//! PostgreSQL client knows only `disable`, `prefer` and `require`: it is given those, and
//! [`crate::tls::postgres_config`] does what `verify-ca` and `verify-full` add.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use firedrill_core::scenario::dsn::{split_tls, DsnError, SslMode};
use firedrill_core::text::error_chain;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls};

use super::ledger::PgError;
use crate::tls::TlsError;

/// Why no PostgreSQL connection was made, or a statement on it failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string's TLS parameters cannot be used.
    #[error("connection string")]
    Dsn(#[source] DsnError),
    /// The TLS configuration could not be made: a CA or client certificate file unreadable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server refused, or the connection failed (a certificate problem among the causes).
    #[error(transparent)]
    Pg(#[from] PgError),
    /// `prefer`: the TLS handshake failed, and so did the plain-text connection libpq tries
    /// after it. Both are told: the first is usually the one to fix.
    #[error("{} (tried after TLS failed: {})", error_chain(.plain), error_chain(.tls))]
    PlainAfterTls {
        /// Why TLS failed.
        tls: PgError,
        /// Why plain text failed.
        plain: PgError,
    },
}

/// A new connection; its I/O runs on a task of its own until the client is dropped.
pub async fn connect(dsn: &str) -> Result<Client, DbError> {
    let (tls, dsn) = split_tls(dsn).map_err(DbError::Dsn)?;
    if tls.mode == SslMode::Disable {
        return Ok(plain(&dsn).await?);
    }
    let rustls = MakeRustls(crate::tls::postgres_config(&tls)?);
    match tokio_postgres::connect(&dsn, rustls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Ok(client)
        }
        // libpq's `prefer`: a failed handshake is followed by a try in plain text.
        Err(e) if tls.mode == SslMode::Prefer && handshake_failed(&e) => {
            plain(&dsn).await.map_err(|plain| DbError::PlainAfterTls { tls: PgError(e), plain })
        }
        Err(e) => Err(PgError(e).into()),
    }
}

/// A connection without TLS (`NoTls` makes the client's `prefer` skip its TLS request).
async fn plain(dsn: &str) -> Result<Client, PgError> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.map_err(PgError)?;
    tokio::spawn(connection);
    Ok(client)
}

/// Whether the client failed in the handshake of [`RustlsConnect`].
fn handshake_failed(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|cause| cause.is::<HandshakeFailed>())
}

/// Makes a TLS connector for each host the client tries (a multi-host string has several).
#[derive(Clone)]
struct MakeRustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, TlsError> {
        // A bracketed IPv6 literal is a name only without its brackets.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName { host: host.into() })?;
        Ok(RustlsConnect { config: self.0.clone(), name })
    }
}

/// The handshake with one host.
struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

/// A handshake's failure in words ("unknown issuer ..."); the PostgreSQL client's own error
/// around it says that it was the handshake.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HandshakeFailed(String);

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = HandshakeFailed;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, HandshakeFailed>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            match connector.connect(self.name, stream).await {
                Ok(tls) => Ok(RustlsStream(tls)),
                Err(e) => Err(HandshakeFailed(crate::tls::describe(&e, "`sslrootcert` in the connection string"))),
            }
        })
    }
}

/// A TLS connection to a PostgreSQL server.
struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM's channel binding is not offered: `prefer` (the client's default) then
        // authenticates as without it.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// The error of a connection that fails before any server is reached.
    async fn refused(dsn: &str) -> String {
        match super::connect(dsn).await {
            Ok(_) => panic!("connected with {dsn}"),
            Err(e) => error_chain(&e),
        }
    }

    #[tokio::test]
    async fn tls_parameters_that_cannot_be_used_fail_before_connecting() {
        let e = refused("host=127.0.0.1 port=1 sslmode=verify").await;
        assert_eq!(
            e,
            "connection string: unknown sslmode `verify`: use disable, prefer, require, verify-ca or verify-full"
        );
        let e =
            refused("host=127.0.0.1 port=1 sslmode=require sslcert=/nonexistent/c.pem sslkey=/nonexistent/k.pem").await;
        assert!(e.starts_with("client certificate /nonexistent/c.pem: "), "{e}");
        let e = refused("host=127.0.0.1 port=1 sslmode=verify-ca sslrootcert=/nonexistent/ca.pem").await;
        assert!(e.starts_with("CA file /nonexistent/ca.pem: "), "{e}");
    }
}
