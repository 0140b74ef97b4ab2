//! The `Host` check of a server bound to loopback: a guard against DNS
//! rebinding.
//!
//! A page on `evil.example` can make its own name resolve to `127.0.0.1`
//! once it has loaded (DNS rebinding). The visitor's browser then sends
//! that page's requests to the server on the visitor's loopback, with
//! `Host: evil.example:3000` and an `Origin` of the same name, so the
//! `Origin` check (`origin.rs`) takes it for the server's own page: the
//! page could read `/stats`, post to any room and hold sockets open. What
//! the page cannot change is the `Host` the browser sends: it names the
//! attacker's domain. So a server bound to loopback answers only requests
//! for a loopback name: `localhost` and `*.localhost` (browsers resolve
//! those to loopback themselves, RFC 6761) and loopback addresses
//! (`127.0.0.0/8`, `[::1]`), any port; anything else gets `403` and a
//! JSON error, a WebSocket handshake included. Over HTTP/2 the request's
//! `:authority` is its Host. A request with no Host at all comes from a
//! program (HTTP/1.0), never from a browser, and passes. Behind a reverse
//! proxy on the same host, which passes on the public name, name it with
//! `--allow-host` (or `*` to check nothing).
//!
//! Bound to `0.0.0.0` or a real interface, the server is meant to be
//! reached by other names (the laptop's address, a DNS name), and nothing
//! is checked; nor when the network in between listens beyond loopback,
//! since its connections reach this server over loopback. There the
//! `Origin` check and the per-address limits are the guards.

use crate::error::ApiError;
use axum::http::{header, Request};
use std::net::IpAddr;

/// `Ok` when a server bound to loopback may answer `request`, which names
/// a loopback host or one of `allowed` (names without port, or `*`); else
/// the 403 to send.
pub fn check<B>(request: &Request<B>, allowed: &[String]) -> Result<(), ApiError> {
    // HTTP/2's `:authority`, or an HTTP/1.1 request in absolute form,
    // whose authority wins over the Host header (RFC 9112 3.2.2). Every
    // request passes here, so the name is compared in place, unallocated.
    let host = match request.uri().authority() {
        Some(authority) => authority.as_str(),
        None => match request.headers().get(header::HOST) {
            None => return Ok(()),
            // Not visible ASCII: no name a browser would send; refused.
            Some(host) => host.to_str().unwrap_or_default(),
        },
    };
    let name = host_of(host);
    let listed = |a: &String| a == "*" || a.eq_ignore_ascii_case(name);
    if is_loopback_host(name) || allowed.iter().any(listed) {
        return Ok(());
    }
    Err(ApiError::host_refused(format!(
        "host {host:?} is not served here: this server listens on loopback only and answers \
         localhost, *.localhost, 127.0.0.1 and [::1] (a guard against DNS rebinding); \
         to serve other names, start it with --addr 0.0.0.0:PORT or --allow-host NAME"
    )))
}

/// The host of `host[:port]` or `[v6]:port`.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// `localhost`, a name under it, or a loopback address; `host` without
/// brackets or port, in any case.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let suffix = ".localhost";
    let under_localhost = host.len() > suffix.len()
        && host.as_bytes()[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes());
    host.eq_ignore_ascii_case("localhost")
        || under_localhost
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn with_host(host: &str) -> Request<()> {
        Request::builder()
            .uri("/stats")
            .header(header::HOST, host)
            .body(())
            .unwrap()
    }

    #[test]
    fn loopback_names_pass_with_any_port() {
        for host in [
            "localhost",
            "localhost:3000",
            "LocalHost:1",
            "demo.localhost:8080",
            "Demo.LOCALHOST",
            "localhost.:3000",
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.0.0.2:80",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(check(&with_host(host), &[]).is_ok(), "{host}");
        }
        let no_host = Request::builder().uri("/").body(()).unwrap();
        assert!(check(&no_host, &[]).is_ok());
        // HTTP/2: the authority is in the URI.
        let h2 = Request::builder()
            .uri("https://localhost:3000/stats")
            .body(())
            .unwrap();
        assert!(check(&h2, &[]).is_ok());
    }

    #[test]
    fn other_names_are_refused_with_403() {
        for host in [
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "127.0.0.1.evil.example:3000",
            "10.0.0.5:3000",
            "[::2]:3000",
            "",
        ] {
            let refused = check(&with_host(host), &[]).unwrap_err();
            assert_eq!(refused.status, 403, "{host}");
        }
        // The authority of an absolute-form request wins over Host.
        let absolute = Request::builder()
            .uri("http://evil.example/stats")
            .header(header::HOST, "localhost")
            .body(())
            .unwrap();
        assert!(check(&absolute, &[]).is_err());
    }

    #[test]
    fn allowed_names_pass_and_a_star_passes_all() {
        let allowed = ["Chat.Example.com".to_owned()];
        assert!(check(&with_host("chat.example.com:443"), &allowed).is_ok());
        assert!(check(&with_host("evil.example"), &allowed).is_err());
        assert!(check(&with_host("evil.example"), &["*".to_owned()]).is_ok());
    }
}
