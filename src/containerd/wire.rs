//! gRPC to containerd over its Unix socket, without an async runtime.
//!
//! This module owns the transport every containerd question of the start
//! path travels on: one Unix-socket connection, HTTP/2 by `h2` (framing,
//! HPACK, flow control), gRPC's length-prefixed messages encoded by `prost`
//! with `containerd-client`'s message types, and the `grpc-status` of each
//! reply. [`run`] drives it on the calling thread: the socket is
//! non-blocking, every future is polled with a no-op waker, and when none
//! can move the thread waits in `poll(2)` on that one socket until it is
//! readable (or writable, when a write was refused) or the deadline passes.
//! No runtime, thread, timer wheel or `epoll` set is made per start. The
//! same [`Conn`] also runs on a tokio runtime ([`connect_tokio`]) for the
//! operator tools that wait between calls.

use std::cell::Cell;
use std::future::Future;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest single gRPC message accepted from containerd.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The HTTP/2 receive window, per stream and for the connection: large
/// enough that a reply never waits for a window update.
const WINDOW: u32 = 32 * 1024 * 1024;

/// gRPC status codes, as `tonic` (under `containerd-client`) names them.
pub use containerd_client::tonic::Code;

/// A call that failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// containerd answered with a non-OK gRPC status.
    #[error("{code:?}: {message}")]
    Status {
        /// The status code.
        code: Code,
        /// Its message (percent-decoded).
        message: String,
    },
    /// The HTTP/2 connection or stream failed.
    #[error("Unavailable: HTTP/2: {0}")]
    Http2(#[from] h2::Error),
    /// The reply broke the gRPC protocol.
    #[error("Internal: malformed gRPC reply: {0}")]
    Protocol(String),
}

impl WireError {
    /// The gRPC code: `NotFound` for a missing record, and so on.
    pub fn code(&self) -> Code {
        match self {
            WireError::Status { code, .. } => *code,
            WireError::Http2(_) => Code::Unavailable,
            WireError::Protocol(_) => Code::Internal,
        }
    }
}

/// Why a connection could not carry the calls.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The socket could not be connected.
    #[error("containerd at {address} is unreachable: {why}; containerd must run and --address/CONTAINERD_ADDRESS name its socket")]
    Unreachable {
        /// The socket.
        address: String,
        /// Why.
        why: String,
    },
    /// The deadline passed.
    #[error("containerd at {address} did not answer within {ms} ms; PORTCULLIS_CONTAINERD_TIMEOUT_MS sets the bound")]
    Timeout {
        /// The socket.
        address: String,
        /// The deadline.
        ms: u128,
    },
}

/// One connection to containerd's gRPC API; cheap to clone, one per call.
#[derive(Clone)]
pub struct Conn {
    send: h2::client::SendRequest<Bytes>,
}

/// The messages of one reply, read as they arrive.
pub struct Messages {
    recv: h2::RecvStream,
    buf: BytesMut,
    ended: bool,
}

fn builder() -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .max_header_list_size(64 * 1024);
    b
}

impl Conn {
    /// Call a unary method (`/containerd.services.….v1.Service/Method`) in
    /// `namespace` ("" for none) and decode its one reply.
    pub async fn unary<Q: prost::Message, R: prost::Message + Default>(
        &self,
        method: &str,
        namespace: &str,
        request: &Q,
    ) -> Result<R, WireError> {
        let mut m = self.stream(method, namespace, request).await?;
        let reply = m
            .next::<R>()
            .await?
            .ok_or_else(|| WireError::Protocol(format!("{method} sent no reply")))?;
        match m.next::<R>().await? {
            None => Ok(reply),
            Some(_) => Err(WireError::Protocol(format!(
                "{method} sent more than one reply"
            ))),
        }
    }

    /// Call a method and return its reply stream (server-streaming calls).
    pub async fn stream<Q: prost::Message>(
        &self,
        method: &str,
        namespace: &str,
        request: &Q,
    ) -> Result<Messages, WireError> {
        let mut send = self.send.clone().ready().await?;
        let mut head = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("http://containerd{method}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers");
        if !namespace.is_empty() {
            head = head.header("containerd-namespace", namespace);
        }
        let head = head
            .body(())
            .map_err(|e| WireError::Protocol(format!("request for {method}: {e}")))?;
        let (response, mut body) = send.send_request(head, false)?;
        let len = request.encoded_len();
        let mut frame = BytesMut::with_capacity(5 + len);
        frame.put_u8(0);
        frame.put_u32(
            u32::try_from(len).map_err(|_| WireError::Protocol("request too large".into()))?,
        );
        request
            .encode(&mut frame)
            .map_err(|e| WireError::Protocol(e.to_string()))?;
        body.send_data(frame.freeze(), true)?;
        let (parts, recv) = response.await?.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(WireError::Protocol(format!(
                "{method}: HTTP status {}",
                parts.status
            )));
        }
        // A "trailers-only" reply carries its status in the headers.
        let ended = match status_of(&parts.headers) {
            Some(r) => {
                r?;
                true
            }
            None => false,
        };
        Ok(Messages {
            recv,
            buf: BytesMut::new(),
            ended,
        })
    }
}

impl Messages {
    /// The next message, `None` after the last (with an OK status).
    pub async fn next<R: prost::Message + Default>(&mut self) -> Result<Option<R>, WireError> {
        loop {
            if let Some(m) = self.take()? {
                return R::decode(m)
                    .map(Some)
                    .map_err(|e| WireError::Protocol(e.to_string()));
            }
            if self.ended {
                return Ok(None);
            }
            match self.recv.data().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    let _ = self.recv.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
                None => {
                    self.ended = true;
                    if !self.buf.is_empty() {
                        return Err(WireError::Protocol("the reply ends mid-message".into()));
                    }
                    let trailers = self.recv.trailers().await?.unwrap_or_default();
                    match status_of(&trailers) {
                        Some(r) => r?,
                        None => return Err(WireError::Protocol("no grpc-status".into())),
                    }
                }
            }
        }
    }

    /// One whole length-prefixed message off the buffer.
    fn take(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(WireError::Protocol(
                "a compressed message (none was asked for)".into(),
            ));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(WireError::Protocol(format!(
                "a message of {len} bytes (at most {MAX_MESSAGE})"
            )));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// The status in `grpc-status`/`grpc-message`, when there is one.
fn status_of(h: &http::HeaderMap) -> Option<Result<(), WireError>> {
    let code = h.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Unknown);
    if code == Code::Ok {
        return Some(Ok(()));
    }
    let message = h
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Err(WireError::Status { code, message }))
}

/// gRPC percent-encodes `grpc-message` (`%XX` for bytes outside 0x20–0x7E
/// and for `%` itself).
fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).and_then(|b| hex(*b)),
            s.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The socket as `h2` sees it: never blocks, counts what moved, and reads
/// nothing after the deadline (so a peer that never lets the socket go
/// empty cannot hold one poll of the connection past it).
struct Sock {
    stream: Rc<UnixStream>,
    state: Rc<SockState>,
    deadline: Instant,
}

#[derive(Default)]
struct SockState {
    /// Bytes read or written, and ends of stream seen.
    moved: Cell<u64>,
    /// A write was refused (the socket buffer is full).
    want_write: Cell<bool>,
}

impl Sock {
    fn io<T>(&self, r: std::io::Result<T>, size: impl Fn(&T) -> u64) -> Poll<std::io::Result<T>> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Poll::Pending,
            Ok(v) => {
                self.state
                    .moved
                    .set(self.state.moved.get() + size(&v).max(1));
                Poll::Ready(Ok(v))
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl tokio::io::AsyncRead for Sock {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        use std::io::Read;
        if Instant::now() >= self.deadline {
            return Poll::Pending;
        }
        let r = (&*self.stream).read(buf.initialize_unfilled());
        match self.io(r, |n| *n as u64) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for Sock {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        let r = (&*self.stream).write(buf);
        let p = self.io(r, |n| *n as u64);
        if p.is_pending() {
            self.state.want_write.set(true);
        }
        p
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// Connect to `address` (a socket path, `unix://` optional), run `calls`
/// on the connection on this thread, and return what they return; every
/// wait is bounded by `timeout` from now.
pub fn run<T, E, F, Fut>(address: &str, timeout: Duration, calls: F) -> Result<T, E>
where
    E: From<DriveError>,
    F: FnOnce(Conn) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    let unreachable = |why: String| DriveError::Unreachable {
        address: address.to_string(),
        why,
    };
    let timed_out = || DriveError::Timeout {
        address: address.to_string(),
        ms: timeout.as_millis(),
    };
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let stream = connect_until(path, deadline).map_err(|s| match s {
        Stall::Timeout => timed_out(),
        Stall::Io(e) => unreachable(e),
    })?;
    let stream = Rc::new(stream);
    let state = Rc::new(SockState::default());
    let sock = Sock {
        stream: stream.clone(),
        state: state.clone(),
        deadline,
    };
    let wait = || wait_socket(&stream, &state, deadline);
    let (send, mut connection) = drive(
        builder().handshake::<_, Bytes>(sock),
        None,
        &state,
        &wait,
        deadline,
    )
    .map_err(|s| match s {
        Stall::Timeout => timed_out(),
        Stall::Io(e) => unreachable(e),
    })?
    .map_err(|e| unreachable(format!("HTTP/2 handshake: {e}")))?;
    match drive(
        calls(Conn { send }),
        Some(&mut connection),
        &state,
        &wait,
        deadline,
    ) {
        Ok(r) => r,
        Err(Stall::Timeout) => Err(timed_out().into()),
        Err(Stall::Io(e)) => Err(unreachable(e).into()),
    }
}

enum Stall {
    Timeout,
    Io(String),
}

/// A non-blocking connection to the socket at `path`, made by `deadline`.
/// A blocking connect waits for as long as the listener's accept queue is
/// full (a stopped containerd, or one flooded with connections); a
/// non-blocking one is refused with `EAGAIN` then, and is tried again every
/// millisecond until the deadline.
fn connect_until(path: &str, deadline: Instant) -> Result<UnixStream, Stall> {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let io = |e: Errno| Stall::Io(std::io::Error::from(e).to_string());
    let addr = UnixAddr::new(path).map_err(io)?;
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(AddressFamily::Unix, SockType::Stream, flags, None).map_err(io)?;
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => return Ok(UnixStream::from(fd)),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::EAGAIN) => return Err(Stall::Timeout),
            Err(e) => return Err(io(e)),
        }
    }
}

/// Poll `fut` (and the connection beside it) until it is ready, waiting on
/// the socket only when neither moved a byte. A peer that keeps the socket
/// busy without answering (pings, window updates) meets the deadline too.
fn drive<O>(
    fut: impl Future<Output = O>,
    mut connection: Option<&mut h2::client::Connection<Sock, Bytes>>,
    state: &SockState,
    wait: &dyn Fn() -> Result<(), Stall>,
    deadline: Instant,
) -> Result<O, Stall> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut closed = None;
    loop {
        let before = state.moved.get();
        state.want_write.set(false);
        if let Poll::Ready(o) = fut.as_mut().poll(&mut cx) {
            return Ok(o);
        }
        if let Some(c) = connection.as_deref_mut() {
            if let Poll::Ready(r) = Pin::new(c).poll(&mut cx) {
                // The calls see the end on their next poll.
                closed = Some(match r {
                    Ok(()) => "containerd closed the connection".to_string(),
                    Err(e) => format!("the connection failed: {e}"),
                });
                connection = None;
                continue;
            }
        } else if let Some(why) = closed.take() {
            return Err(Stall::Io(why));
        }
        if state.moved.get() == before {
            wait()?;
        } else if Instant::now() >= deadline {
            return Err(Stall::Timeout);
        }
    }
}

/// Sleep until the socket can move (or the deadline passes).
fn wait_socket(stream: &UnixStream, state: &SockState, deadline: Instant) -> Result<(), Stall> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Stall::Timeout);
        }
        let mut flags = PollFlags::POLLIN;
        if state.want_write.get() {
            flags |= PollFlags::POLLOUT;
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as u32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stream.as_fd(), flags)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Stall::Io(format!("poll: {e}"))),
        }
    }
}

/// Connect on the current tokio runtime (operator tools that wait between
/// calls); the connection is driven by a spawned task.
pub async fn connect_tokio(address: &str) -> Result<Conn, DriveError> {
    let unreachable = |why: String| DriveError::Unreachable {
        address: address.to_string(),
        why,
    };
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (send, connection) = builder()
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(|e| unreachable(format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn { send })
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::services::v1::{
        Container, GetContainerRequest, GetContainerResponse, ReadContentRequest,
        ReadContentResponse,
    };
    use prost::Message;

    type TestResult<T> = Result<T, Box<dyn std::error::Error>>;

    /// What the test server does with a call.
    #[derive(Clone, Copy)]
    enum Reply {
        /// Echo: a container record named after the request's ID, with the
        /// namespace header as its image.
        Echo,
        /// Three content messages of 1 MiB each, in 100 kB DATA frames.
        Blobs,
        /// A trailers-only `NotFound`.
        NotFound,
        /// Never answer.
        Silent,
        /// Drop the connection.
        Hang,
    }

    const BLOB: usize = 1024 * 1024;

    /// A real HTTP/2 gRPC server (`h2::server` on tokio) on a Unix socket,
    /// in its own thread, answering every call with `reply`.
    fn serve(reply: Reply) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::UnixListener::from_std(listener).unwrap();
                while let Ok((s, _)) = l.accept().await {
                    tokio::spawn(async move {
                        let Ok(mut conn) = h2::server::handshake(s).await else {
                            return;
                        };
                        while let Some(Ok((req, respond))) = conn.accept().await {
                            if matches!(reply, Reply::Hang) {
                                return;
                            }
                            tokio::spawn(answer(reply, req, respond));
                        }
                    });
                }
            });
        });
        (dir, path.display().to_string())
    }

    fn framed(m: &impl Message) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(0);
        b.put_u32(m.encoded_len() as u32);
        m.encode(&mut b).unwrap();
        b.freeze()
    }

    async fn answer(
        reply: Reply,
        req: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
    ) {
        let (parts, mut body) = req.into_parts();
        let mut got = BytesMut::new();
        while let Some(Ok(c)) = body.data().await {
            let _ = body.flow_control().release_capacity(c.len());
            got.extend_from_slice(&c);
        }
        assert_eq!(parts.headers["content-type"], "application/grpc");
        let ok = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        match reply {
            Reply::Echo => {
                assert_eq!(
                    parts.uri.path(),
                    "/containerd.services.containers.v1.Containers/Get"
                );
                let q = GetContainerRequest::decode(&got[5..]).unwrap();
                let r = GetContainerResponse {
                    container: Some(Container {
                        id: q.id,
                        image: parts.headers["containerd-namespace"]
                            .to_str()
                            .unwrap()
                            .to_string(),
                        ..Default::default()
                    }),
                };
                let mut s = respond.send_response(ok.body(()).unwrap(), false).unwrap();
                s.send_data(framed(&r), false).unwrap();
                s.send_trailers(trailers).unwrap();
            }
            Reply::Blobs => {
                let mut all = BytesMut::new();
                for i in 0..3u8 {
                    all.extend_from_slice(&framed(&ReadContentResponse {
                        offset: 0,
                        data: vec![b'a' + i; BLOB],
                    }));
                }
                let mut s = respond.send_response(ok.body(()).unwrap(), false).unwrap();
                for c in all.chunks(100_000) {
                    s.send_data(Bytes::copy_from_slice(c), false).unwrap();
                }
                s.send_trailers(trailers).unwrap();
            }
            Reply::NotFound => {
                let r = ok
                    .header("grpc-status", "5")
                    .header("grpc-message", "container%20x: not found")
                    .body(())
                    .unwrap();
                respond.send_response(r, true).unwrap();
            }
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Reply::Hang => {}
        }
    }

    fn get(conn: &Conn, id: &str) -> impl Future<Output = Result<GetContainerResponse, WireError>> {
        let (conn, id) = (conn.clone(), id.to_string());
        async move {
            conn.unary(
                "/containerd.services.containers.v1.Containers/Get",
                "team-a",
                &GetContainerRequest { id },
            )
            .await
        }
    }

    /// One `containers.Get` that must fail: its error.
    fn get_failing(sock: &str, timeout: Duration) -> Box<dyn std::error::Error> {
        run(sock, timeout, |conn| async move {
            get(&conn, "x")
                .await
                .map_err(Box::<dyn std::error::Error>::from)
        })
        .unwrap_err()
    }

    #[test]
    fn unary_calls_round_trip_and_run_side_by_side() -> TestResult<()> {
        let (_d, sock) = serve(Reply::Echo);
        let (a, b) = run(&sock, Duration::from_secs(10), |conn| async move {
            let (a, b) = tokio::join!(get(&conn, "one"), get(&conn, "two"));
            Ok::<_, Box<dyn std::error::Error>>((a?, b?))
        })?;
        let (a, b) = (a.container.unwrap(), b.container.unwrap());
        assert_eq!((a.id.as_str(), a.image.as_str()), ("one", "team-a"));
        assert_eq!((b.id.as_str(), b.image.as_str()), ("two", "team-a"));
        Ok(())
    }

    #[test]
    fn a_stream_larger_than_the_default_window_arrives_whole() -> TestResult<()> {
        let (_d, sock) = serve(Reply::Blobs);
        let data = run(&sock, Duration::from_secs(10), |conn| async move {
            let mut m = conn
                .stream(
                    "/containerd.services.content.v1.Content/Read",
                    "default",
                    &ReadContentRequest::default(),
                )
                .await?;
            let mut data = Vec::new();
            while let Some(r) = m.next::<ReadContentResponse>().await? {
                data.push(r.data);
            }
            Ok::<_, Box<dyn std::error::Error>>(data)
        })?;
        assert_eq!(data.len(), 3);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d.len(), BLOB);
            assert!(d.iter().all(|b| *b == b'a' + i as u8));
        }
        Ok(())
    }

    #[test]
    fn a_trailers_only_status_is_the_error() {
        let (_d, sock) = serve(Reply::NotFound);
        let e = get_failing(&sock, Duration::from_secs(10));
        let e = e.downcast::<WireError>().unwrap();
        assert_eq!(e.code(), Code::NotFound);
        assert_eq!(e.to_string(), "NotFound: container x: not found");
    }

    #[test]
    fn a_server_that_never_answers_meets_the_deadline() {
        let (_d, sock) = serve(Reply::Silent);
        let e = get_failing(&sock, Duration::from_millis(300));
        let e = e.downcast::<DriveError>().unwrap();
        assert!(matches!(*e, DriveError::Timeout { ms: 300, .. }), "{e}");
    }

    /// A listener whose accept queue is full (a stopped containerd holds
    /// its queued connections): the connect meets the deadline too.
    #[test]
    fn a_full_accept_queue_meets_the_deadline() {
        use nix::sys::socket::{listen, Backlog};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listen(&listener, Backlog::new(0).unwrap()).unwrap();
        let _queued = UnixStream::connect(&path).unwrap();
        let sock = path.display().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(get_failing(&sock, Duration::from_millis(300)).to_string());
        });
        // A blocking connect never returned here (5 s and more).
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the lookup is still blocked after 5 s");
        assert!(e.contains("did not answer within 300 ms"), "{e}");
        drop(listener);
    }

    /// A peer that speaks HTTP/2 and floods the socket with PING frames
    /// (each of which asks for a PONG), never answering a call.
    fn flood() -> (tempfile::TempDir, String) {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut drain = s.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(drain.read(&mut buf), Ok(n) if n > 0) {}
            });
            // An empty SETTINGS frame (RFC 9113 §6.5), then PINGs (§6.7).
            let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
            let pings = ping.repeat(256);
            if s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).is_err() {
                return;
            }
            while s.write_all(&pings).is_ok() {}
        });
        (dir, path.display().to_string())
    }

    #[test]
    fn a_server_that_keeps_the_socket_busy_without_answering_meets_the_deadline() {
        let (_d, sock) = flood();
        let started = Instant::now();
        let e = get_failing(&sock, Duration::from_millis(300));
        let e = e.downcast::<DriveError>().unwrap();
        assert!(matches!(*e, DriveError::Timeout { ms: 300, .. }), "{e}");
        // Without the deadline in the read, one poll of the connection ran
        // for 4 to 27 s here, reading PINGs as fast as they came.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_driver_meets_the_deadline_while_bytes_keep_moving() {
        // A call that never ends while every poll moves bytes: the driver
        // never waits in poll(2), and must still stop at the deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let state = SockState::default();
            let busy = std::future::poll_fn(|_| {
                state.moved.set(state.moved.get() + 1);
                Poll::<()>::Pending
            });
            let never_waits = || -> Result<(), Stall> { unreachable!("bytes moved") };
            let deadline = Instant::now() + Duration::from_millis(100);
            let r = drive(busy, None, &state, &never_waits, deadline);
            let _ = tx.send(matches!(r, Err(Stall::Timeout)));
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
    }

    #[test]
    fn a_dropped_connection_is_an_error_not_a_wait() {
        let (_d, sock) = serve(Reply::Hang);
        let started = Instant::now();
        let e = get_failing(&sock, Duration::from_secs(30));
        // Well before the deadline: the end of the connection ends the call.
        assert!(started.elapsed() < Duration::from_secs(20), "{e}");
        assert!(
            e.downcast_ref::<WireError>().is_some() || e.downcast_ref::<DriveError>().is_some(),
            "{e}"
        );
    }

    #[test]
    fn status_codes_and_messages_decode_as_grpc_sends_them() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert(
            "grpc-message",
            "container%20%22x%22: not found%25".parse().unwrap(),
        );
        let e = status_of(&h).unwrap().unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert_eq!(e.to_string(), "NotFound: container \"x\": not found%");
        h.insert("grpc-status", "0".parse().unwrap());
        assert!(status_of(&h).unwrap().is_ok());
        h.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(status_of(&h).unwrap().unwrap_err().code(), Code::Unknown);
        assert!(status_of(&http::HeaderMap::new()).is_none());
        // A stray or short escape stays as it is.
        assert_eq!(percent_decode(b"100% %4"), "100% %4");
    }
}
