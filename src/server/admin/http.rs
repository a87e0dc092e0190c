//! Just enough HTTP/1.1 for the admin pages: parse one request head from a
//! connection's input, write one response. GET and HEAD only, no bodies, no
//! chunking; keep-alive unless the client says `Connection: close` (or
//! speaks HTTP/1.0 without keep-alive). A request head is bounded
//! ([`MAX_REQUEST`]); anything malformed is an [`HttpError`] that becomes a
//! 4xx reply and a close.

use bytes::BytesMut;

/// The largest request head accepted (request line and headers), in bytes.
pub(crate) const MAX_REQUEST: usize = 8 * 1024;

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The query string after `?` (raw), empty if none.
    pub(crate) query: String,
    /// The bearer token of an `Authorization: Bearer` header.
    pub(crate) bearer: Option<String>,
    /// The connection stays open after the reply.
    pub(crate) keep_alive: bool,
}

impl Request {
    /// The value of query parameter `name`, percent-decoded.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }
}

/// Why a request cannot be served; each maps to a status and a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// 431: the head grew past [`MAX_REQUEST`] without ending.
    TooLarge,
    /// 400: not a request line / header we understand.
    Malformed(&'static str),
    /// 405: a method other than GET or HEAD.
    Method(String),
}

impl HttpError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            HttpError::TooLarge => 431,
            HttpError::Malformed(_) => 400,
            HttpError::Method(_) => 405,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::TooLarge => write!(f, "HTTP request head over {MAX_REQUEST} bytes"),
            HttpError::Malformed(what) => write!(f, "malformed HTTP request: {what}"),
            HttpError::Method(m) => write!(f, "HTTP method {m} not allowed (GET, HEAD)"),
        }
    }
}

/// Takes one complete request head off the front of `input`: `Ok(None)`
/// while it is incomplete.
pub(crate) fn parse(input: &mut BytesMut) -> Result<Option<Request>, HttpError> {
    let Some(end) = find_head_end(input) else {
        return if input.len() > MAX_REQUEST {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_REQUEST {
        return Err(HttpError::TooLarge);
    }
    let head = input.split_to(end);
    let text = std::str::from_utf8(&head).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    parse_head(text).map(Some)
}

/// The length of the head including its blank line, once it has arrived.
fn find_head_end(input: &[u8]) -> Option<usize> {
    input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn parse_head(text: &str) -> Result<Request, HttpError> {
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("bad request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(HttpError::Malformed("not HTTP/1.0 or HTTP/1.1")),
    };
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("the target is not a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        bearer: None,
        keep_alive: !http10,
    };
    for header in lines.filter(|l| !l.is_empty()) {
        let (name, value) = header
            .split_once(':')
            .ok_or(HttpError::Malformed("header without ':'"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => {
                let token = value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
                request.bearer = token;
            }
            "connection" if value.eq_ignore_ascii_case("close") => request.keep_alive = false,
            "connection" if value.eq_ignore_ascii_case("keep-alive") => request.keep_alive = true,
            "content-length" if value != "0" => {
                return Err(HttpError::Malformed("a request body is not accepted"))
            }
            "transfer-encoding" => {
                return Err(HttpError::Malformed("a request body is not accepted"))
            }
            _ => {}
        }
    }
    if method != "GET" && method != "HEAD" {
        return Err(HttpError::Method(method.to_owned()));
    }
    Ok(request)
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// Extra header lines (`Name: value`).
    pub(crate) headers: Vec<String>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A plain-text reply: `text` and a newline.
    pub(crate) fn text(status: u16, text: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }

    pub(crate) fn with_header(mut self, header: String) -> Response {
        self.headers.push(header);
        self
    }

    /// Appends the response to `out`; without the body for HEAD.
    pub(crate) fn write(&self, head_only: bool, keep_alive: bool, out: &mut BytesMut) {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for header in &self.headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        out.extend_from_slice(head.as_bytes());
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Option<Request>, HttpError> {
        parse(&mut BytesMut::from(s))
    }

    #[test]
    fn a_get_with_token_header_and_query() {
        let r = parse_str("GET /status?token=a%20b&x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/status"));
        assert_eq!(r.query_param("token").as_deref(), Some("a b"));
        assert_eq!(r.bearer.as_deref(), Some("s3cret"));
        assert!(r.keep_alive);
    }

    #[test]
    fn incomplete_heads_wait_and_pipelined_ones_come_one_at_a_time() {
        assert_eq!(parse_str("GET / HTTP/1.1\r\nHost:"), Ok(None));
        let mut input =
            BytesMut::from("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n");
        let a = parse(&mut input).unwrap().unwrap();
        assert_eq!((a.path.as_str(), a.keep_alive), ("/a", false));
        let b = parse(&mut input).unwrap().unwrap();
        assert_eq!((b.path.as_str(), b.keep_alive), ("/b", false));
        assert!(input.is_empty());
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        assert_eq!(
            parse_str("POST / HTTP/1.1\r\n\r\n"),
            Err(HttpError::Method("POST".into()))
        );
        assert_eq!(parse_str("GET / HTTP/2\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(parse_str("GET /\r\n\r\n").unwrap_err().status(), 400);
        let body = parse_str("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(body.unwrap_err().status(), 400);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST));
        assert_eq!(parse_str(&long), Err(HttpError::TooLarge));
    }

    proptest::proptest! {
        /// Any bytes: no panic, and a request is only ever taken off the
        /// front of a head that ended within the bound.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10_000)) {
            let mut input = BytesMut::from(&bytes[..]);
            let before = input.len();
            if let Ok(Some(_)) = parse(&mut input) {
                proptest::prop_assert!(before - input.len() <= MAX_REQUEST);
            }
        }
    }

    #[test]
    fn a_response_has_length_and_connection_headers() {
        let mut out = BytesMut::new();
        Response::text(404, "no such page").write(false, true, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 13\r\n"), "{text}");
        assert!(text.ends_with("keep-alive\r\n\r\nno such page\n"), "{text}");
        out.clear();
        Response::text(200, "x").write(true, false, &mut out);
        assert!(out.ends_with(b"Connection: close\r\n\r\n"));
    }
}
