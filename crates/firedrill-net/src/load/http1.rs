//! The HTTP/1.1 side of the generator: a keep-alive connection that writes a request encoded
//! once per target and reads the answer in place, on the sending task itself.
//!
//! hyper's client runs each connection on a task of its own and hands every request and
//! answer across channels, building a request and header map each time: against nginx
//! (`benches/load-compare.sh`) that was 19,000 user-space instructions per request, this path
//! about 6,000 (callgrind). A load generator sends the same few requests over and over and reads
//! only the status and the body's length, so it writes bytes and parses heads with `httparse`,
//! allocating nothing per request. HTTP/2 stays with hyper.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::stats::ErrorClass;

/// A connection's byte stream, cleartext or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Answers with a longer head than this are refused (hyper's default limit is similar).
const MAX_HEAD: usize = 64 * 1024;
/// Header lines read from an answer; more fail it as malformed.
const MAX_HEADERS: usize = 64;

/// A request, encoded once: the bytes written for every send, and whether its answer has no
/// body whatever its headers say (`HEAD`).
pub(super) struct Encoded {
    bytes: Vec<u8>,
    head: bool,
}

impl Encoded {
    /// `method path` to `authority` with `body`; a body's length is always given, and an empty
    /// one too where the method usually has a body, as hyper does.
    pub(super) fn new(method: &hyper::Method, path: &str, authority: &str, body: &[u8]) -> Self {
        let mut bytes = format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\n").into_bytes();
        let usually_has_body = matches!(*method, hyper::Method::POST | hyper::Method::PUT | hyper::Method::PATCH);
        if !body.is_empty() || usually_has_body {
            bytes.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body);
        Encoded { bytes, head: *method == hyper::Method::HEAD }
    }
}

/// How the body of an answer ends.
enum BodyLength {
    /// After this many bytes.
    Fixed(u64),
    /// After the last chunk.
    Chunked,
    /// When the server closes the connection.
    UntilClose,
}

/// An open connection and the bytes read from it but not yet used.
pub(super) struct Connection {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not yet parsed.
    start: usize,
    end: usize,
    /// It carried an answer already: a failure before any byte of the next answer may be the
    /// server closing it while idle.
    reused: bool,
    /// The server will close it after the current answer, or did.
    closing: bool,
    /// Bytes of the current answer read so far.
    received: usize,
}

/// The end of one exchange.
pub(super) enum Outcome {
    /// A whole answer with this status.
    Answered(u16),
    /// The connection failed before a byte of the answer came, on a reused connection: the
    /// server closed it while it was idle, and the request may be sent again on a new one.
    Stale,
    /// Failed.
    Failed(ErrorClass),
}

impl Connection {
    /// A connection over `stream`.
    pub(super) fn new(stream: Box<dyn Stream>) -> Self {
        Connection { stream, buf: vec![0; 16 * 1024], start: 0, end: 0, reused: false, closing: false, received: 0 }
    }

    /// Whether another request may be sent on it.
    pub(super) fn is_open(&self) -> bool {
        !self.closing
    }

    /// Sends `request` and reads its whole answer.
    pub(super) async fn exchange(&mut self, request: &Encoded) -> Outcome {
        let reused = self.reused;
        self.received = self.end - self.start;
        let fail = |class: ErrorClass, received: usize| {
            if reused && received == 0 {
                Outcome::Stale
            } else {
                Outcome::Failed(class)
            }
        };
        if let Err(e) = self.stream.write_all(&request.bytes).await {
            self.closing = true;
            return fail(ErrorClass::of_io(&e), 0);
        }
        if let Err(e) = self.stream.flush().await {
            self.closing = true;
            return fail(ErrorClass::of_io(&e), 0);
        }
        match self.answer(request.head).await {
            Ok(status) => {
                self.reused = true;
                Outcome::Answered(status)
            }
            Err(class) => {
                self.closing = true;
                fail(class, self.received)
            }
        }
    }

    /// Reads an answer: its status once the body is read through.
    async fn answer(&mut self, head_request: bool) -> Result<u16, ErrorClass> {
        loop {
            let (status, length) = self.head(head_request).await?;
            // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            match length {
                BodyLength::Fixed(n) => self.skip(n).await?,
                BodyLength::Chunked => self.skip_chunks().await?,
                BodyLength::UntilClose => {
                    self.closing = true;
                    while self.fill().await? > 0 {
                        self.start = self.end;
                    }
                }
            }
            return Ok(status);
        }
    }

    /// Parses an answer's head: its status and how its body ends.
    async fn head(&mut self, head_request: bool) -> Result<(u16, BodyLength), ErrorClass> {
        loop {
            // Left uninitialised: filling 64 empty headers for every answer cost more than
            // parsing the few an answer has.
            let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                &self.buf[self.start..self.end],
                &mut headers,
            );
            match parsed {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let mut length = None;
                    let mut chunked = false;
                    // HTTP/1.0 closes unless asked not to; HTTP/1.1 keeps alive unless told.
                    let mut keep_alive = response.version == Some(1);
                    for h in response.headers.iter() {
                        // By length first: most headers are none of the three.
                        let name = h.name.as_bytes();
                        if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") {
                            let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
                            length = Some(n.ok_or(ErrorClass::Other)?);
                        } else if name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding") {
                            chunked = h
                                .value
                                .rsplit(|&b| b == b',')
                                .next()
                                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                        } else if name.len() == 10 && name.eq_ignore_ascii_case(b"connection") {
                            for token in h.value.split(|&b| b == b',').map(|t| t.trim_ascii()) {
                                if token.eq_ignore_ascii_case(b"close") {
                                    keep_alive = false;
                                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                                    keep_alive = true;
                                }
                            }
                        }
                    }
                    self.start += len;
                    self.closing |= !keep_alive;
                    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
                    let length = match (bodiless, chunked, length) {
                        (true, _, _) => BodyLength::Fixed(0),
                        (false, true, _) => BodyLength::Chunked,
                        (false, false, Some(n)) => BodyLength::Fixed(n),
                        (false, false, None) => BodyLength::UntilClose,
                    };
                    return Ok((status, length));
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(ErrorClass::Reset);
                    }
                }
                Err(_) => return Err(ErrorClass::Other),
            }
        }
    }

    /// Reads past `n` bytes of body.
    async fn skip(&mut self, mut n: u64) -> Result<(), ErrorClass> {
        loop {
            let here = ((self.end - self.start) as u64).min(n);
            self.start += here as usize;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(ErrorClass::Reset);
            }
        }
    }

    /// Reads past a chunked body and its trailers.
    async fn skip_chunks(&mut self) -> Result<(), ErrorClass> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        self.start += len;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.fill().await? == 0 {
                            return Err(ErrorClass::Reset);
                        }
                    }
                    Err(_) => return Err(ErrorClass::Other),
                }
            };
            if size == 0 {
                break;
            }
            // The chunk and the line end after it.
            self.skip(size + 2).await?;
        }
        // Trailers, if any, end with an empty line.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(&self.buf[self.start..self.end], &mut headers) {
                Ok(httparse::Status::Complete((len, _))) => {
                    self.start += len;
                    return Ok(());
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(ErrorClass::Reset);
                    }
                }
                Err(_) => return Err(ErrorClass::Other),
            }
        }
    }

    /// Reads more bytes after the unparsed ones, making room first; how many came (0: the
    /// server closed the connection).
    async fn fill(&mut self) -> Result<usize, ErrorClass> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(ErrorClass::Other);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await.map_err(|e| ErrorClass::of_io(&e))?;
        self.end += n;
        self.received += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose server side has already written `answers`, and closed its side
    /// after them when `then_close`; the server side, to keep while the connection is used.
    async fn connection(answers: &[u8], then_close: bool) -> (Connection, tokio::io::DuplexStream) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(answers).await.unwrap();
        if then_close {
            server.shutdown().await.unwrap();
        }
        (Connection::new(Box::new(client)), server)
    }

    fn get() -> Encoded {
        Encoded::new(&hyper::Method::GET, "/", "example.test", b"")
    }

    fn answered(outcome: Outcome) -> u16 {
        match outcome {
            Outcome::Answered(status) => status,
            Outcome::Stale => panic!("stale"),
            Outcome::Failed(class) => panic!("failed: {class:?}"),
        }
    }

    #[test]
    fn a_request_is_encoded_with_its_host_and_body_length() {
        assert_eq!(get().bytes, b"GET / HTTP/1.1\r\nhost: example.test\r\n\r\n");
        let post = Encoded::new(&hyper::Method::POST, "/orders?x=1", "shop:8080", b"{}");
        assert_eq!(post.bytes, b"POST /orders?x=1 HTTP/1.1\r\nhost: shop:8080\r\ncontent-length: 2\r\n\r\n{}");
    }

    #[tokio::test]
    async fn answers_end_by_length_chunks_or_interim_status_and_keep_the_connection() {
        let answers = concat!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        );
        let (mut conn, _server) = connection(answers.as_bytes(), false).await;
        for status in [200, 503, 204, 404] {
            assert_eq!(answered(conn.exchange(&get()).await), status);
            assert!(conn.is_open());
        }
    }

    #[tokio::test]
    async fn a_head_answer_has_no_body_whatever_its_length() {
        let head = Encoded::new(&hyper::Method::HEAD, "/", "h", b"");
        let answers = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n";
        let (mut conn, _server) = connection(answers.as_bytes(), false).await;
        assert_eq!(answered(conn.exchange(&head).await), 200);
        assert_eq!(answered(conn.exchange(&head).await), 201);
    }

    #[tokio::test]
    async fn connection_close_or_a_body_until_close_ends_the_connection() {
        let (mut conn, _server) =
            connection(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false).await;
        assert_eq!(answered(conn.exchange(&get()).await), 200);
        assert!(!conn.is_open());
        let (mut conn, _server) = connection(b"HTTP/1.0 200 OK\r\n\r\nthe body runs to the end", true).await;
        assert_eq!(answered(conn.exchange(&get()).await), 200);
        assert!(!conn.is_open());
    }

    #[tokio::test]
    async fn a_server_closing_an_idle_connection_makes_it_stale_not_failed() {
        let (mut conn, _server) = connection(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).await;
        assert_eq!(answered(conn.exchange(&get()).await), 200);
        assert!(matches!(conn.exchange(&get()).await, Outcome::Stale));
        // On a new connection the same is a failure.
        let (mut conn, _server) = connection(b"", true).await;
        assert!(matches!(conn.exchange(&get()).await, Outcome::Failed(ErrorClass::Reset)));
        // So is an answer cut short, or one that is no HTTP.
        let (mut conn, _server) = connection(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", true).await;
        assert!(matches!(conn.exchange(&get()).await, Outcome::Failed(ErrorClass::Reset)));
        let (mut conn, _server) = connection(b"SMTP ready\r\n\r\n", true).await;
        assert!(matches!(conn.exchange(&get()).await, Outcome::Failed(ErrorClass::Other)));
    }
}
