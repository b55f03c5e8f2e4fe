//! A minimal, real SMTP server for tests.
//!
//! It listens on `127.0.0.1:<random port>`, speaks plain SMTP (no TLS, no AUTH)
//! well enough for common clients such as `lettre`'s async transport, and keeps
//! every accepted message in memory. `fail_next(n)` makes the next `n` DATA
//! transactions end with a temporary failure (`451`) so retry logic can be
//! tested.
//!
//! Dependencies: `tokio` with the `net`, `io-util`, `sync`, `time`, `rt` and
//! `macros` features. Nothing else.

// Test support: not every helper is used by every test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Longest command line accepted (RFC 5321 says 512; be generous).
const MAX_COMMAND_LINE: usize = 4096;
/// Longest text line inside DATA (RFC 5321 says 1000; be generous).
const MAX_DATA_LINE: usize = 1 << 20;
/// Largest message accepted; larger ones are answered with 552.
const MAX_MESSAGE_SIZE: usize = 32 << 20;
/// Most recipients accepted in one transaction.
const MAX_RECIPIENTS: usize = 1000;

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Reverse path from `MAIL FROM:<...>` (empty for the null sender `<>`).
    pub from: String,
    /// Forward paths from every accepted `RCPT TO:<...>`, in order.
    pub to: Vec<String>,
    /// Raw RFC 5322 message as received: dot-unstuffed, line endings kept
    /// (CRLF), without the terminating `.` line. Not valid UTF-8 is replaced
    /// lossily.
    pub data: String,
}

impl Mail {
    /// The value of the first header field named `name` (case-insensitive),
    /// with folded continuation lines joined. Raw: encoded words are not decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut found: Option<String> = None;
        for line in self.data.split("\r\n").flat_map(|l| l.split('\n')) {
            if line.is_empty() {
                break; // end of the header section
            }
            if let Some(value) = found.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    value.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((field, value)) = line.split_once(':')
                && field.trim().eq_ignore_ascii_case(name)
            {
                found = Some(value.trim_start().to_string());
            }
        }
        found.map(|v| v.trim_end().to_string())
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    fail_remaining: usize,
    attempts: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave State inconsistent; go on.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An SMTP server running in the background of the current tokio runtime.
/// It stops (and drops every open connection) when this value is dropped.
pub struct SmtpServer {
    /// Address the server listens on (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    state: Shared,
    task: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds `127.0.0.1:0` and starts serving. Panics only if the bind fails.
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("SmtpServer: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("SmtpServer: local_addr");
        let state: Shared = Arc::default();
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        SmtpServer { addr, state, task }
    }

    /// `smtp://127.0.0.1:PORT`, usable with `lettre`'s `from_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far, in order of acceptance.
    pub fn mails(&self) -> Vec<Mail> {
        lock(&self.state).mails.clone()
    }

    /// The next `n` DATA transactions are answered `451 4.3.0 try again later`
    /// after the message is read; those messages are not stored.
    /// Replaces any count still pending from an earlier call.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_remaining = n;
    }

    /// DATA transactions seen so far (accepted plus failed).
    pub fn attempts(&self) -> usize {
        lock(&self.state).attempts
    }

    /// Forgets stored messages and the attempt count.
    pub fn clear(&self) {
        let mut st = lock(&self.state);
        st.mails.clear();
        st.attempts = 0;
    }

    /// Waits until at least `n` messages have been accepted, or `timeout`
    /// passes; returns the messages accepted by then either way.
    pub async fn wait_for_mails(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n || tokio::time::Instant::now() >= deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Shared) {
    // Connections live in this JoinSet so that aborting the accept task
    // (on drop of SmtpServer) aborts them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let state = state.clone();
                    connections.spawn(async move {
                        // I/O errors just end the session.
                        let _ = Session::new(state).run(stream).await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[derive(Default)]
struct Session {
    state: Shared,
    greeted: bool,
    from: Option<String>,
    to: Vec<String>,
}

enum Line {
    Data(Vec<u8>),
    TooLong,
    Eof,
}

/// Reads one line including its `\n`. A line longer than `max` is consumed
/// up to its end and reported as `TooLong`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Data(line)
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len();
        reader.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Data(line)
            });
        }
    }
}

/// Extracts the address inside `<...>` after a `FROM:` / `TO:` prefix,
/// e.g. `FROM:<a@b> SIZE=12` gives `a@b`. Tolerates a missing `<>`.
fn parse_path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        let path = &inner[..end];
        // Drop an obsolete source route "@a,@b:user@host".
        let path = match (path.starts_with('@'), path.find(':')) {
            (true, Some(i)) => &path[i + 1..],
            _ => path,
        };
        Some(path.to_string())
    } else {
        let addr = rest.split_whitespace().next()?;
        Some(addr.to_string())
    }
}

impl Session {
    fn new(state: Shared) -> Self {
        Session {
            state,
            ..Default::default()
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }

    async fn run(mut self, stream: TcpStream) -> std::io::Result<()> {
        let _ = stream.set_nodelay(true);
        let (read_half, mut writer) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        writer
            .write_all(b"220 localhost ESMTP test server ready\r\n")
            .await?;

        loop {
            let line = match read_line(&mut reader, MAX_COMMAND_LINE).await? {
                Line::Eof => return Ok(()),
                Line::TooLong => {
                    writer.write_all(b"500 5.5.2 line too long\r\n").await?;
                    continue;
                }
                Line::Data(l) => l,
            };
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v, a.trim()),
                None => (line, ""),
            };
            let verb = verb.to_ascii_uppercase();

            let reply: String = match verb.as_str() {
                "EHLO" | "HELO" if arg.is_empty() => "501 5.5.4 domain name required\r\n".into(),
                "EHLO" => {
                    self.greeted = true;
                    self.reset();
                    format!(
                        "250-localhost greets {arg}\r\n\
                         250-8BITMIME\r\n\
                         250-SMTPUTF8\r\n\
                         250-PIPELINING\r\n\
                         250-SIZE {MAX_MESSAGE_SIZE}\r\n\
                         250 HELP\r\n"
                    )
                }
                "HELO" => {
                    self.greeted = true;
                    self.reset();
                    format!("250 localhost greets {arg}\r\n")
                }
                "MAIL" => {
                    if !self.greeted {
                        "503 5.5.1 send EHLO or HELO first\r\n".into()
                    } else if self.from.is_some() {
                        "503 5.5.1 nested MAIL command\r\n".into()
                    } else {
                        match parse_path(arg, "FROM:") {
                            Some(from) => {
                                self.from = Some(from);
                                "250 2.1.0 OK\r\n".into()
                            }
                            None => "501 5.5.4 syntax: MAIL FROM:<address>\r\n".into(),
                        }
                    }
                }
                "RCPT" => {
                    if self.from.is_none() {
                        "503 5.5.1 need MAIL before RCPT\r\n".into()
                    } else if self.to.len() >= MAX_RECIPIENTS {
                        "452 4.5.3 too many recipients\r\n".into()
                    } else {
                        match parse_path(arg, "TO:") {
                            Some(to) if !to.is_empty() => {
                                self.to.push(to);
                                "250 2.1.5 OK\r\n".into()
                            }
                            _ => "501 5.5.4 syntax: RCPT TO:<address>\r\n".into(),
                        }
                    }
                }
                "DATA" => {
                    if !arg.is_empty() {
                        "501 5.5.4 DATA takes no argument\r\n".into()
                    } else if self.from.is_none() {
                        "503 5.5.1 need MAIL command\r\n".into()
                    } else if self.to.is_empty() {
                        "554 5.5.1 no valid recipients\r\n".into()
                    } else {
                        writer
                            .write_all(b"354 start mail input; end with <CRLF>.<CRLF>\r\n")
                            .await?;
                        match self.receive_data(&mut reader).await? {
                            None => return Ok(()), // connection closed mid-message
                            Some(reply) => reply,
                        }
                    }
                }
                "RSET" => {
                    self.reset();
                    "250 2.0.0 OK\r\n".into()
                }
                "NOOP" => "250 2.0.0 OK\r\n".into(),
                "VRFY" => "252 2.1.5 cannot VRFY user\r\n".into(),
                "HELP" => "214 2.0.0 commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT\r\n".into(),
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 bye\r\n").await?;
                    let _ = writer.shutdown().await;
                    return Ok(());
                }
                "STARTTLS" | "AUTH" | "BDAT" => "502 5.5.1 not implemented\r\n".into(),
                _ => "500 5.5.2 command not recognized\r\n".into(),
            };
            writer.write_all(reply.as_bytes()).await?;
        }
    }

    /// Reads the message after `354` up to the `.` line. Returns the final
    /// reply, or `None` if the client went away before the end.
    async fn receive_data<R: tokio::io::AsyncBufRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> std::io::Result<Option<String>> {
        let mut data: Vec<u8> = Vec::new();
        let mut oversized = false;
        loop {
            let line = match read_line(reader, MAX_DATA_LINE).await? {
                Line::Eof => return Ok(None),
                Line::TooLong => {
                    oversized = true;
                    continue;
                }
                Line::Data(l) => l,
            };
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            if line.is_empty() {
                continue;
            }
            let unstuffed = if line[0] == b'.' {
                &line[1..]
            } else {
                &line[..]
            };
            if data.len() + unstuffed.len() > MAX_MESSAGE_SIZE {
                oversized = true;
            }
            if !oversized {
                data.extend_from_slice(unstuffed);
            }
        }

        let from = self.from.take().unwrap_or_default();
        let to = std::mem::take(&mut self.to);
        let mut st = lock(&self.state);
        st.attempts += 1;
        if oversized {
            return Ok(Some("552 5.3.4 message too big\r\n".into()));
        }
        if st.fail_remaining > 0 {
            st.fail_remaining -= 1;
            return Ok(Some("451 4.3.0 try again later\r\n".into()));
        }
        st.mails.push(Mail {
            from,
            to,
            data: String::from_utf8_lossy(&data).into_owned(),
        });
        let n = st.mails.len();
        Ok(Some(format!("250 2.0.0 OK queued as {n}\r\n")))
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) -> String {
        // Reads a (possibly multi-line) reply, asserts its code.
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert!(
                line.starts_with(code),
                "expected {code}, got {line:?} (so far {all:?})"
            );
            all.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    }

    #[tokio::test]
    async fn raw_dialogue_pipelined_and_dot_unstuffed() {
        let server = SmtpServer::start().await;
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, "220").await;
        // Commands before EHLO are refused.
        w.write_all(b"MAIL FROM:<a@x>\r\n").await.unwrap();
        expect(&mut r, "503").await;
        w.write_all(b"EHLO me\r\n").await.unwrap();
        let ehlo = expect(&mut r, "250").await;
        assert!(!ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"));
        // Pipelined envelope.
        w.write_all(b"MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<b@y>\r\nrcpt to: c@z\r\nDATA\r\n")
            .await
            .unwrap();
        expect(&mut r, "250").await;
        expect(&mut r, "250").await;
        expect(&mut r, "250").await;
        expect(&mut r, "354").await;
        w.write_all(b"Subject: hi\r\n\r\n..leading dot\r\n..\r\nnot the end\r\n.\r\n")
            .await
            .unwrap();
        expect(&mut r, "250").await;
        w.write_all(b"DATA\r\n").await.unwrap();
        expect(&mut r, "503").await;
        w.write_all(b"RSET\r\nNOOP\r\nBOGUS\r\nQUIT\r\n")
            .await
            .unwrap();
        expect(&mut r, "250").await;
        expect(&mut r, "250").await;
        expect(&mut r, "500").await;
        expect(&mut r, "221").await;
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());

        let mails = server.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].from, "");
        assert_eq!(mails[0].to, vec!["b@y".to_string(), "c@z".to_string()]);
        assert_eq!(
            mails[0].data,
            "Subject: hi\r\n\r\n.leading dot\r\n.\r\nnot the end\r\n"
        );
        assert_eq!(mails[0].header("subject").as_deref(), Some("hi"));
        assert_eq!(server.attempts(), 1);
    }

    #[tokio::test]
    async fn client_vanishing_mid_data_is_harmless() {
        let server = SmtpServer::start().await;
        {
            let stream = TcpStream::connect(server.addr).await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            expect(&mut r, "220").await;
            w.write_all(b"HELO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npartial")
                .await
                .unwrap();
            expect(&mut r, "250").await;
            expect(&mut r, "250").await;
            expect(&mut r, "250").await;
            expect(&mut r, "354").await;
        }
        // Garbage and over-long lines do not crash the server either.
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, "220").await;
        let mut junk = vec![0xffu8; MAX_COMMAND_LINE * 3];
        junk.extend_from_slice(b"\r\n");
        w.write_all(&junk).await.unwrap();
        expect(&mut r, "500").await;
        w.write_all(b"EHLO\r\nNOOP\r\n").await.unwrap();
        expect(&mut r, "501").await;
        expect(&mut r, "250").await;
        assert!(server.mails().is_empty());
        assert_eq!(server.attempts(), 0);
    }
}
