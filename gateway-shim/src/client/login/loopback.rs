//! The redirect listener of the browser login: one HTTP/1.1 server on a random
//! loopback port that waits for `GET /callback?code=…&state=…` (or `?error=…`),
//! answers the browser with a short page and hands the result over. Anything else
//! is answered 404 and the wait goes on.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::LoginError;

/// The callback's path.
pub const CALLBACK_PATH: &str = "/callback";
/// Bound on reading one request from the browser.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// What the identity provider redirected the browser with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// Signed in.
    Code {
        /// The authorization code.
        code: String,
        /// The state sent with the request.
        state: String,
    },
    /// Refused (`access_denied`, …).
    Error {
        /// The OAuth2 error code.
        error: String,
        /// Its description.
        description: Option<String>,
    },
}

/// Waits up to `deadline` for the callback on `listener`.
///
/// # Errors
/// [`LoginError::Setup`] when the deadline passes or the listener fails.
pub async fn wait(listener: &TcpListener, deadline: Duration) -> Result<Callback, LoginError> {
    let waited = tokio::time::timeout(deadline, async {
        loop {
            let (stream, _) = listener
                .accept()
                .await
                .map_err(|e| LoginError::Setup(format!("the login's redirect listener: {e}")))?;
            if let Some(callback) = serve_one(stream).await {
                return Ok(callback);
            }
        }
    })
    .await;
    waited.unwrap_or_else(|_| {
        Err(LoginError::Setup(format!(
            "the sign-in in the browser did not finish within {}; run `gateway-shim login` again (or `--device` where no browser can reach this machine)",
            humanize(deadline)
        )))
    })
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Reads one request; answers it; the callback when it was one.
async fn serve_one(mut stream: TcpStream) -> Option<Callback> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .ok()??;
    let target = request_target(&head);
    let callback = target.as_deref().and_then(parse_callback);
    let (status, body) = match &callback {
        Some(Callback::Code { .. }) => (
            "200 OK",
            "Signed in. You may close this window and return to the terminal.",
        ),
        Some(Callback::Error { .. }) => (
            "200 OK",
            "The sign-in did not complete; the terminal says why.",
        ),
        None => ("404 Not Found", "Not the login callback."),
    };
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gateway-shim login</title></head><body><p>{body}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    callback
}

async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

/// The target of a `GET` request line.
fn request_target(head: &[u8]) -> Option<String> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_owned)
}

/// The callback a request target carries, if it is one.
fn parse_callback(target: &str) -> Option<Callback> {
    let url = oauth2::url::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
    if url.path() != CALLBACK_PATH {
        return None;
    }
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        return Some(Callback::Error {
            error: error.clone(),
            description: params.get("error_description").cloned(),
        });
    }
    Some(Callback::Code {
        code: params.get("code")?.clone(),
        state: params.get("state")?.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn callbacks_are_told_from_other_requests() {
        assert_eq!(
            parse_callback("/callback?code=c%2B1&state=s&iss=x"),
            Some(Callback::Code {
                code: "c+1".into(),
                state: "s".into()
            })
        );
        assert_eq!(
            parse_callback("/callback?error=access_denied&error_description=no&state=s"),
            Some(Callback::Error {
                error: "access_denied".into(),
                description: Some("no".into())
            })
        );
        assert_eq!(parse_callback("/favicon.ico"), None);
        assert_eq!(parse_callback("/callback?state=s"), None);
        assert_eq!(
            request_target(b"GET /callback?code=a HTTP/1.1\r\nHost: x\r\n\r\n").as_deref(),
            Some("/callback?code=a")
        );
        assert_eq!(request_target(b"POST /callback HTTP/1.1\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn a_stray_request_is_answered_404_and_the_callback_still_arrives() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let browser = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let stray = http
                .get(format!("http://{addr}/favicon.ico"))
                .send()
                .await
                .unwrap();
            let callback = http
                .get(format!("http://{addr}/callback?code=abc&state=xyz"))
                .send()
                .await
                .unwrap();
            (stray.status().as_u16(), callback.status().as_u16())
        });
        let callback = wait(&listener, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            callback,
            Callback::Code {
                code: "abc".into(),
                state: "xyz".into()
            }
        );
        assert_eq!(browser.await.unwrap(), (404, 200));
    }
}
