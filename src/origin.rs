//! Which web pages may use the rooms: the `Origin` check of RFC 6455
//! section 10.2, applied to every room route and the echo socket.
//!
//! A browser sends its cookies with a WebSocket handshake, an EventSource
//! or a form POST to any site, whoever's page asks; only the `Origin`
//! header says whose page that is. So a request whose `Origin` is not
//! allowed gets `403` and a JSON error. Allowed: the server's own origin
//! (the `Origin` names the host the request was sent to), pages served from
//! loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`, any port:
//! the presenter's own machine), and each `--allow-origin`. A request
//! without `Origin` is allowed: it comes from a program (curl, `loadgen`),
//! not from a page a user was lured to, and browsers always send one on
//! these requests. The server's own origin is judged by the `Host`, which
//! a DNS-rebinding page controls: on loopback, `host.rs` checks it first.

use crate::error::ApiError;
use crate::host::{host_of, is_loopback_host};
use axum::http::{header, HeaderMap};
use std::collections::HashSet;

/// The origins allowed besides the server's own and loopback ones.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    allowed: HashSet<String>,
}

impl OriginPolicy {
    /// `allowed` holds `scheme://host[:port]` origins, or `*` for any.
    pub fn new(allowed: &[String]) -> Self {
        Self {
            any: allowed.iter().any(|o| o.trim() == "*"),
            allowed: allowed.iter().map(|o| normalize(o)).collect(),
        }
    }

    /// Whether a request carrying these headers may proceed.
    /// `Ok` for a request this policy allows; else the 403 to answer.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.allows(headers) {
            return Ok(());
        }
        let origin = headers
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
            .unwrap_or_default();
        Err(ApiError::origin_refused(format!("origin {origin:?} is not allowed here (the server's own origin, loopback pages and --allow-origin are)"),
        ))
    }

    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = normalize(origin);
        if self.any || self.allowed.contains(&origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            // `null` (a sandboxed frame, a file) and anything unparsable.
            return false;
        };
        if is_loopback_host(host_of(authority)) {
            return true;
        }
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| strip_default_port(scheme, &host.to_ascii_lowercase()) == authority)
    }
}

/// Lower case, no trailing slash, no default port: the form browsers send,
/// made comparable with what an operator types.
fn normalize(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    match origin.split_once("://") {
        Some((scheme, authority)) => {
            format!("{scheme}://{}", strip_default_port(scheme, authority))
        }
        None => origin,
    }
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn own_origin_loopback_listed_and_absent_are_allowed() {
        let policy = OriginPolicy::new(&["https://chat.example.com/".into()]);
        let host = "chat.example.com";
        for origin in [
            None,
            Some("http://chat.example.com"),
            Some("http://chat.example.com:80"),
            Some("HTTPS://Chat.Example.com"),
            Some("http://localhost:5173"),
            Some("http://127.0.0.1:3000"),
            Some("http://[::1]:8080"),
        ] {
            assert!(policy.allows(&headers(origin, host)), "{origin:?}");
        }
        assert!(policy.allows(&headers(Some("http://10.1.2.3:3000"), "10.1.2.3:3000")));
    }

    #[test]
    fn other_origins_are_refused() {
        let policy = OriginPolicy::new(&["https://chat.example.com".into()]);
        let host = "chat.example.com";
        for origin in [
            "http://evil.example",
            "https://chat.example.com.evil.example",
            "http://chat.example.com:8080",
            "null",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
        ] {
            assert!(!policy.allows(&headers(Some(origin), host)), "{origin}");
        }
        assert!(
            OriginPolicy::new(&["*".into()]).allows(&headers(Some("http://evil.example"), host))
        );
    }
}
