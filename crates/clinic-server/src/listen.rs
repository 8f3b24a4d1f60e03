//! The HTTP/1 listener: connections with read timeouts, the peer's address
//! for the handlers, and JSON bodies on the answers hyper makes itself.
//!
//! `axum::serve` takes no configuration, so a client could hold a
//! connection open forever by sending half a request head. Here hyper gets
//! a timer and a header read timeout (the body's timeout is a layer of the
//! router), and each request carries `ConnectInfo` with the peer's address
//! for the sign-in throttle.
//!
//! hyper answers a request it cannot parse (a URI over 64 KiB, bytes that
//! are not a URI, oversized headers) itself, with an empty body, before any
//! handler runs. [`JsonErrors`] rewrites those answers as the API's
//! `{code, message}`, so every error a client sees has the same shape.

use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` completes, then waits for
/// the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(state.config.request_timeout_seconds);
    let app = crate::router(state);
    let (stop_tx, stop_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait, do not spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|e| match e {}))
            }
        });
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(
                hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout)
                    .serve_connection(
                        TokioIo::new(JsonErrors::new(stream)),
                        TowerToHyperService::new(service),
                    )
            );
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(open);
        });
    }
    drop(stop_tx);
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
    Ok(())
}

/// A connection whose empty-bodied error answers from hyper itself get the
/// API's JSON body. The app never answers a 4xx without a body, so an
/// empty 4xx in one write is hyper's parse-error answer.
struct JsonErrors {
    inner: TcpStream,
    /// A rewritten answer still being written, and the length to report
    /// for the write it replaced.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl JsonErrors {
    fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// hyper's own answer to an unparsable request, as the API's JSON error.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let status: u16 = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let empty = text.ends_with("\r\n\r\n")
        && text
            .lines()
            .any(|l| l.eq_ignore_ascii_case("content-length: 0"));
    if !(400..500).contains(&status) || !empty {
        return None;
    }
    let (code, message) = match status {
        414 => ("uri_too_long", "the request's URI is too long"),
        431 => ("headers_too_large", "the request's headers are too large"),
        _ => ("bad_request", "the request could not be parsed as HTTP"),
    };
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let reason = text.lines().next()?.get(13..).unwrap_or("").trim();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for JsonErrors {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for JsonErrors {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none()
            && buf.len() < 1024
            && let Some(replacement) = rewrite(buf)
        {
            this.pending = Some((replacement, 0, buf.len()));
        }
        if let Some((bytes, written, reported)) = &mut this.pending {
            while *written < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let reported = *reported;
            this.pending = None;
            return Poll::Ready(Ok(reported));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_4xx_is_rewritten() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(
            out.ends_with(r#"{"code":"uri_too_long","message":"the request's URI is too long"}"#)
        );
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 30\r\n\r\n").is_none());
    }
}
