//! The room routes and which transport each one's bytes are charged to:
//! one table, read by the router (`app.rs`, by the route it matched) and
//! by the HTTP/2 accounting (`conn/h2.rs`, which sees a stream's `:path`
//! before any router does).

use crate::message::Transport;
use axum::http::Method;

pub const MESSAGES: &str = "/rooms/{room}/messages";
pub const WS: &str = "/rooms/{room}/ws";
pub const SSE: &str = "/rooms/{room}/sse";
pub const POLL: &str = "/rooms/{room}/poll";

const ROOM_ROUTES: [&str; 4] = [MESSAGES, WS, SSE, POLL];

/// The room route `path` matches, if any (a `{name}` segment matches any
/// one non-empty segment).
pub fn route_of(path: &str) -> Option<&'static str> {
    ROOM_ROUTES.into_iter().find(|route| {
        let mut segments = path.split('/');
        route.split('/').all(|pattern| match segments.next() {
            Some(s) if pattern.starts_with('{') => !s.is_empty(),
            Some(s) => s == pattern,
            None => false,
        }) && segments.next().is_none()
    })
}

/// The transport of a request to `route`: a room route by its method (a
/// WebSocket also by CONNECT, its HTTP/2 form, RFC 8441), a poll by its
/// `wait` (as `poll.rs` reads it); anything else (the page, `/stats`, the
/// echo socket, 404s) is `Other`.
pub fn transport_of(method: &Method, route: Option<&str>, query: Option<&str>) -> Transport {
    match (method, route) {
        (&Method::GET | &Method::CONNECT, Some(WS)) => Transport::Ws,
        (&Method::GET, Some(SSE)) => Transport::Sse,
        (&Method::POST, Some(MESSAGES)) => Transport::Send,
        (&Method::GET, Some(POLL)) => {
            let waits = query
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.strip_prefix("wait="))
                .any(|v| v.parse::<u64>().is_ok_and(|w| w > 0));
            if waits {
                Transport::LongPoll
            } else {
                Transport::Poll
            }
        }
        _ => Transport::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_route_and_nothing_else() {
        assert_eq!(route_of("/rooms/lobby/ws"), Some(WS));
        assert_eq!(route_of("/rooms/lobby/poll"), Some(POLL));
        assert_eq!(route_of("/rooms//ws"), None);
        assert_eq!(route_of("/rooms/lobby/ws/more"), None);
        assert_eq!(route_of("/rooms/lobby"), None);
        assert_eq!(route_of("/stats"), None);
        let poll = route_of("/rooms/a/poll");
        assert_eq!(
            transport_of(&Method::GET, poll, Some("wait=5")),
            Transport::LongPoll
        );
        assert_eq!(
            transport_of(&Method::GET, poll, Some("since=3")),
            Transport::Poll
        );
        assert_eq!(
            transport_of(&Method::CONNECT, Some(WS), None),
            Transport::Ws
        );
        assert_eq!(
            transport_of(&Method::POST, Some(WS), None),
            Transport::Other
        );
    }
}
