//! Counting the HTTP/1.1 requests that cross the link, by what they do to an S3 store.
//!
//! The proxy sees a byte stream per connection, client to server. [`RequestParser`] finds
//! the request heads in it (skipping bodies by `Content-Length` or chunked encoding, so a
//! body that happens to contain `GET /` is never counted) and [`classify`] names each
//! request from its method, query string and headers alone: S3's kinds of request differ
//! only there (`list-type=2`, `uploads`, `partNumber`, `uploadId`, `x-amz-copy-source`).
//! Nothing else of the request is kept.

use std::collections::BTreeMap;

/// What one request does, as S3 tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `GET ?list-type=2`: one page of a listing.
    List,
    /// `HEAD` of an object.
    Head,
    /// `GET` of an object (whole or a range).
    Get,
    /// `PUT` of a whole object in one request.
    Put,
    /// `PUT` with `x-amz-copy-source`: a server-side copy.
    Copy,
    /// `POST ?uploads`: start a multipart upload.
    CreateMultipart,
    /// `PUT ?partNumber&uploadId`: one part.
    UploadPart,
    /// `POST ?uploadId`: complete a multipart upload.
    CompleteMultipart,
    /// `DELETE ?uploadId`: abort a multipart upload.
    AbortMultipart,
    /// `DELETE` of one object.
    Delete,
    /// `POST ?delete`: delete many objects in one request.
    DeleteMany,
    /// Anything else (bucket calls, other protocols).
    Other,
}

/// The requests and bytes that crossed a link so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests by kind (kinds never seen are absent).
    pub requests: BTreeMap<RequestKind, u64>,
    /// Bytes client → server (request heads and bodies).
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// Every request line (`METHOD target`), in the order seen on each connection.
    pub lines: Vec<String>,
}

impl Counts {
    /// Requests of one kind.
    pub fn get(&self, kind: RequestKind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// Name a request from its method, target (path and query) and headers.
pub fn classify(method: &str, target: &str, headers: &[httparse::Header<'_>]) -> RequestKind {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) == name)
    };
    let header = |name: &str| headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
    match method {
        "GET" if has("list-type") => RequestKind::List,
        "GET" if has("uploadId") || has("uploads") => RequestKind::Other,
        "GET" if is_object(target) => RequestKind::Get,
        "HEAD" if is_object(target) => RequestKind::Head,
        "PUT" if has("partNumber") && has("uploadId") => RequestKind::UploadPart,
        "PUT" if header("x-amz-copy-source") => RequestKind::Copy,
        "PUT" if is_object(target) && query.is_empty() => RequestKind::Put,
        "POST" if has("uploads") => RequestKind::CreateMultipart,
        "POST" if has("uploadId") => RequestKind::CompleteMultipart,
        "POST" if has("delete") => RequestKind::DeleteMany,
        "DELETE" if has("uploadId") => RequestKind::AbortMultipart,
        "DELETE" if is_object(target) && query.is_empty() => RequestKind::Delete,
        _ => RequestKind::Other,
    }
}

/// Path-style S3 (`/bucket/key…`): an object request names more than the bucket.
fn is_object(target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    path.trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty())
}

/// Longest request head accepted; past it the connection is no longer counted.
const MAX_HEAD: usize = 64 << 10;

#[derive(Debug)]
enum State {
    /// Reading a request head.
    Head,
    /// Skipping a body of this many bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping a chunk's data and its CRLF.
    ChunkData(u64),
    /// Reading trailer lines until the empty one.
    Trailer,
    /// Lost track (head too long or malformed): count nothing more here.
    Lost,
}

/// Finds request heads in one connection's client → server bytes.
#[derive(Debug)]
pub struct RequestParser {
    state: State,
    buf: Vec<u8>,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self {
            state: State::Head,
            buf: Vec::new(),
        }
    }
}

impl RequestParser {
    /// Feed the next bytes; `seen` is called with each complete request's kind and line.
    pub fn feed(&mut self, mut data: &[u8], seen: &mut dyn FnMut(RequestKind, String)) {
        while !data.is_empty() {
            match self.state {
                State::Lost => return,
                State::Body(n) => {
                    let take = (n as usize).min(data.len());
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                }
                State::ChunkData(n) => {
                    let take = (n as usize).min(data.len());
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::ChunkSize
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::Head => data = self.head(data, seen),
                State::ChunkSize | State::Trailer => data = self.line(data),
            }
        }
    }

    /// Buffer until the head is complete, then count it and enter its body.
    fn head<'a>(&mut self, data: &'a [u8], seen: &mut dyn FnMut(RequestKind, String)) -> &'a [u8] {
        let before = self.buf.len();
        self.buf.extend_from_slice(data);
        // Search from a little before the new bytes: the terminator may straddle reads.
        let from = before.saturating_sub(3);
        let Some(end) = find(&self.buf[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
            if self.buf.len() > MAX_HEAD {
                self.state = State::Lost;
            }
            return &[];
        };
        let rest = &data[end - before..];
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {
                let (method, target) = (request.method.unwrap_or(""), request.path.unwrap_or(""));
                seen(
                    classify(method, target, request.headers),
                    format!("{method} {target}"),
                );
                self.state = body_of(request.headers);
            }
            _ => self.state = State::Lost,
        }
        self.buf.clear();
        rest
    }

    /// Buffer one line of chunked framing and act on it.
    fn line<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let Some(nl) = data.iter().position(|b| *b == b'\n') else {
            self.buf.extend_from_slice(data);
            if self.buf.len() > MAX_HEAD {
                self.state = State::Lost;
            }
            return &[];
        };
        self.buf.extend_from_slice(&data[..=nl]);
        let line = String::from_utf8_lossy(&self.buf).trim().to_owned();
        self.buf.clear();
        self.state = match self.state {
            State::ChunkSize => {
                let size = line.split(';').next().unwrap_or("").trim();
                match u64::from_str_radix(size, 16) {
                    Ok(0) => State::Trailer,
                    Ok(n) => State::ChunkData(n + 2),
                    Err(_) => State::Lost,
                }
            }
            _ if line.is_empty() => State::Head,
            _ => State::Trailer,
        };
        &data[nl + 1..]
    }
}

fn body_of(headers: &[httparse::Header<'_>]) -> State {
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        return State::ChunkSize;
    }
    match value("content-length").map(|v| v.parse::<u64>()) {
        Some(Ok(0)) | None => State::Head,
        Some(Ok(n)) => State::Body(n),
        Some(Err(_)) => State::Lost,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(stream: &[u8], split: usize) -> Vec<RequestKind> {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for piece in stream.chunks(split) {
            parser.feed(piece, &mut |k, _| out.push(k));
        }
        out
    }

    #[test]
    fn s3_requests_are_named_by_method_query_and_headers() {
        let kind = |m, t| classify(m, t, &[]);
        assert_eq!(kind("GET", "/b?list-type=2&prefix=x"), RequestKind::List);
        assert_eq!(kind("GET", "/b/k"), RequestKind::Get);
        assert_eq!(kind("HEAD", "/b/k"), RequestKind::Head);
        assert_eq!(kind("PUT", "/b/k"), RequestKind::Put);
        assert_eq!(kind("POST", "/b/k?uploads"), RequestKind::CreateMultipart);
        assert_eq!(
            kind("PUT", "/b/k?partNumber=2&uploadId=u"),
            RequestKind::UploadPart
        );
        assert_eq!(
            kind("POST", "/b/k?uploadId=u"),
            RequestKind::CompleteMultipart
        );
        assert_eq!(
            kind("DELETE", "/b/k?uploadId=u"),
            RequestKind::AbortMultipart
        );
        assert_eq!(kind("DELETE", "/b/k"), RequestKind::Delete);
        assert_eq!(kind("POST", "/b?delete"), RequestKind::DeleteMany);
        assert_eq!(kind("PUT", "/b"), RequestKind::Other, "create bucket");
        let copy = [httparse::Header {
            name: "X-Amz-Copy-Source",
            value: b"/b/a",
        }];
        assert_eq!(classify("PUT", "/b/k", &copy), RequestKind::Copy);
    }

    #[test]
    fn bodies_are_skipped_whatever_they_hold_and_however_the_bytes_arrive() {
        let body = "GET /b/fake HTTP/1.1\r\n\r\n";
        let stream = format!(
            "PUT /b/k HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}\
             PUT /b/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n\
             HEAD /b/k HTTP/1.1\r\n\r\n",
            body.len(),
            body.len()
        );
        for split in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(
                kinds(stream.as_bytes(), split),
                [RequestKind::Put, RequestKind::Put, RequestKind::Head],
                "read {split} bytes at a time"
            );
        }
    }

    #[test]
    fn a_malformed_stream_stops_counting_instead_of_guessing() {
        let stream = b"PUT /b/k HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /b/k HTTP/1.1\r\n\r\n";
        assert_eq!(kinds(stream, 5), [RequestKind::Put]);
    }
}
