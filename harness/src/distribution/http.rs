//! Plain HTTP GETs for the sources the matrix is computed from (the distribution on GitHub,
//! kind's release notes, Kubernetes' version markers): a timeout per request, retries with
//! exponential backoff on transient failures (connection errors, timeouts, 429 and 5xx), a
//! bounded body, and errors that name the URL. Synchronous to its callers: the requests run on
//! a runtime of its own, on a thread of their own, so it works inside and outside async code.

use crate::runner::secret::Secret;
use std::time::Duration;

/// Largest body read from any source (release notes of 20 kind releases are ~100 KiB).
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Why a GET failed, after its retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("GET `{url}`: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET `{url}`: {message} (after {attempts} attempt(s))")]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("GET `{url}`: the response is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge { url: String },
}

/// A successful (2xx or 304) response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// How hard to try.
#[derive(Clone, Debug)]
pub struct Policy {
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A client; the token (e.g. `GITHUB_TOKEN`) is sent only to hosts it is meant for.
pub struct Http {
    client: reqwest::Client,
    runtime: Option<tokio::runtime::Runtime>,
    policy: Policy,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        // Never block in drop: it may run inside async code.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn transient(status: u16) -> bool {
    status == 429 || status >= 500
}

impl Http {
    pub fn new(policy: Policy) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("flux-compat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .timeout(policy.timeout)
            .build()
            .map_err(|e| format!("set up the HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("start the HTTP runtime: {e}"))?;
        Ok(Self {
            client,
            runtime: Some(runtime),
            policy,
        })
    }

    /// GET `url` with extra headers; 2xx and 304 are responses, 404 and other 4xx errors at once,
    /// transient failures retried with backoff.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        token: Option<&Secret>,
    ) -> Result<Response, HttpError> {
        let rt = self.runtime.as_ref().expect("runtime lives until drop");
        let fut = self.get_async(url, headers, token);
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(fut)).join().unwrap_or_else(|_| {
                Err(HttpError::Transport {
                    url: url.to_string(),
                    message: "the request thread panicked".into(),
                    attempts: 1,
                })
            })
        })
    }

    async fn get_async(
        &self,
        url: &str,
        headers: &[(&str, String)],
        token: Option<&Secret>,
    ) -> Result<Response, HttpError> {
        let mut delay = self.policy.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.attempts.max(1);
            match self.once(url, headers, token).await {
                Ok(r) if transient(r.status) && !last => {}
                Ok(r) if r.status == 304 || (200..300).contains(&r.status) => return Ok(r),
                Ok(r) => {
                    return Err(HttpError::Status {
                        url: url.to_string(),
                        status: r.status,
                    });
                }
                Err(e @ HttpError::TooLarge { .. }) => return Err(e),
                Err(HttpError::Transport { message, .. }) if last => {
                    return Err(HttpError::Transport {
                        url: url.to_string(),
                        message,
                        attempts: attempt,
                    });
                }
                Err(_) => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
        }
    }

    async fn once(
        &self,
        url: &str,
        headers: &[(&str, String)],
        token: Option<&Secret>,
    ) -> Result<Response, HttpError> {
        let transport = |e: reqwest::Error| HttpError::Transport {
            url: url.to_string(),
            message: crate::errors::chain(&e),
            attempts: 1,
        };
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, body, etag })
    }
}
