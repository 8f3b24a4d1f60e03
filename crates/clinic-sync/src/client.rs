//! The HTTP client of the server's API v1.

use clinic_domain::codes::PeerCode;
use std::sync::Mutex;
use std::time::Duration;

use clinic_domain::sync::{
    ApiErrorCode, EnrollRequest, EnrollResponse, PullResponse, PushRequest, PushResponse,
    RefreshRequest, SignInRequest, TokenResponse,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How a call to the server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No answer, a timeout, or a 5xx: worth retrying later.
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    /// 401: the token is missing, expired or revoked (or wrong credentials).
    #[error("not signed in on the server ({code})")]
    Unauthorized {
        /// The server's error code, e.g. `invalid_credentials`.
        code: ApiErrorCode,
    },
    /// Another 4xx: the request itself is refused; retrying will not help.
    #[error("the server refused the request: {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's error code.
        code: ApiErrorCode,
        /// The server's message.
        message: String,
    },
}

impl ClientError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unreachable(_))
    }
}

/// How long one call may take by default (the live channel excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `base` (e.g. `https://clinic.example`).
    pub fn new(base: &str) -> Client {
        Client::with_timeout(base, REQUEST_TIMEOUT)
    }

    /// A client whose calls fail after `timeout` (connecting: at most 5 s).
    ///
    /// Clients with the same timeout share one HTTP client and its
    /// connection pool: building one loads the TLS roots (tens of
    /// milliseconds), and the engine makes a client for every cycle.
    pub fn with_timeout(base: &str, timeout: Duration) -> Client {
        static SHARED: Mutex<Vec<(Duration, reqwest::Client)>> = Mutex::new(Vec::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let http = match shared.iter().find(|(t, _)| *t == timeout) {
            Some((_, http)) => http.clone(),
            None => {
                let http = reqwest::Client::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .timeout(timeout)
                    .build()
                    .expect("a TLS backend is compiled in");
                shared.push((timeout, http.clone()));
                http
            }
        };
        Client {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| {
                ClientError::Unreachable(format!("unreadable answer: {}", e.without_url()))
            });
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        // A body without a code (a proxy's page) or with one this build
        // does not know reads as `other`.
        let code = ApiErrorCode::from_peer(body["code"].as_str().unwrap_or_default());
        let message = body["message"].as_str().unwrap_or("").to_owned();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ClientError::Unreachable(format!("{status}: {code}")));
        }
        if status.as_u16() == 401 {
            return Err(ClientError::Unauthorized { code });
        }
        Err(ClientError::Refused {
            status: status.as_u16(),
            code,
            message,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/auth/sign-in`.
    pub async fn sign_in(&self, req: &SignInRequest) -> Result<TokenResponse, ClientError> {
        self.send(self.http.post(self.url("/v1/auth/sign-in")).json(req))
            .await
    }

    /// `POST /v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ClientError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.send(self.http.post(self.url("/v1/auth/refresh")).json(&body))
            .await
    }

    /// `POST /v1/workstations`.
    pub async fn enroll(
        &self,
        token: &str,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, ClientError> {
        self.send(
            self.http
                .post(self.url("/v1/workstations"))
                .bearer_auth(token)
                .json(req),
        )
        .await
    }

    /// `POST /v1/sync/push`.
    pub async fn push(&self, token: &str, req: &PushRequest) -> Result<PushResponse, ClientError> {
        self.send(
            self.http
                .post(self.url("/v1/sync/push"))
                .bearer_auth(token)
                .json(req),
        )
        .await
    }

    /// `GET /v1/sync/pull`.
    pub async fn pull(
        &self,
        token: &str,
        after: i64,
        limit: i64,
    ) -> Result<PullResponse, ClientError> {
        let url = self.url(&format!("/v1/sync/pull?after={after}&limit={limit}"));
        self.send(self.http.get(url).bearer_auth(token)).await
    }

    /// Opens `GET /v1/sync/events`; read it with [`Events::next_seq`].
    pub async fn events(&self, token: &str) -> Result<Events, ClientError> {
        let resp = self
            .http
            .get(self.url("/v1/sync/events"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200 => Ok(Events {
                resp,
                buf: String::new(),
            }),
            401 => Err(ClientError::Unauthorized {
                code: ApiErrorCode::Unauthenticated,
            }),
            s => Err(ClientError::Unreachable(format!("events: HTTP {s}"))),
        }
    }
}

/// The live channel: server-sent `feed` events with the newest sequence number.
pub struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next `feed` event's sequence number (-1: "pull anyway"); `None`
    /// when the stream ended.
    pub async fn next_seq(&mut self) -> Option<i64> {
        loop {
            // Events are separated by a blank line.
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let is_feed = event.lines().any(|l| l.trim() == "event: feed");
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data:"))
                    .map(str::trim);
                if is_feed && let Some(seq) = data.and_then(|d| d.parse().ok()) {
                    return Some(seq);
                }
                continue;
            }
            let chunk = self.resp.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
