//! A connection's byte stream: plain TCP, or TLS over it after STARTTLS or
//! for direct TLS (XEP-0368), or a BOSH session standing in for one.

use crate::bosh_pipe::BoshPipe;
use futures_rustls::client::TlsStream as ClientTlsStream;
use futures_rustls::server::TlsStream;
use smol::io::{AsyncRead, AsyncWrite};
use smol::Async;
use std::cell::RefCell;
use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Size of the per-thread read buffer.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// One read buffer per executor thread instead of one per connection:
    /// an idle connection waits for readiness holding no buffer at all.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// Plain or TLS.
pub enum Transport {
    /// Unencrypted TCP (before STARTTLS).
    Plain(Async<TcpStream>),
    /// TLS over TCP, we the server.
    Tls(Box<TlsStream<Async<TcpStream>>>),
    /// TLS over TCP, we the client (outgoing s2s).
    TlsClient(Box<ClientTlsStream<Async<TcpStream>>>),
    /// A BOSH session (XEP-0206): HTTP requests carry the bytes.
    Bosh(Arc<BoshPipe>),
}

impl Transport {
    /// The TCP socket underneath.
    fn socket(&self) -> Option<&Async<TcpStream>> {
        match self {
            Transport::Plain(s) => Some(s),
            Transport::Tls(s) => Some(s.get_ref().0),
            Transport::TlsClient(s) => Some(s.get_ref().0),
            Transport::Bosh(_) => None,
        }
    }

    /// Wait until input is available and hand it to `consume`; returns the
    /// number of bytes (0 at end of stream). Data already decrypted inside
    /// the TLS session is taken before waiting on the socket.
    pub async fn read_with(&mut self, mut consume: impl FnMut(&[u8])) -> io::Result<usize> {
        if let Transport::Bosh(pipe) = self {
            return pipe.read_with(consume).await;
        }
        loop {
            if let Poll::Ready(r) = self.read_now(&mut consume) {
                return r;
            }
            match self.socket() {
                Some(s) => s.readable().await?,
                None => return Err(io::ErrorKind::NotConnected.into()),
            }
        }
    }

    /// One non-blocking read into this thread's buffer.
    fn read_now(&mut self, consume: &mut impl FnMut(&[u8])) -> Poll<io::Result<usize>> {
        READ_BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(&mut *self).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(n)) => {
                    consume(&buf[..n]);
                    Poll::Ready(Ok(n))
                }
                other => other,
            }
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            // Read through `read_with`, never as a byte stream.
            Transport::Bosh(_) => Poll::Ready(Err(io::ErrorKind::Unsupported.into())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Bosh(p) => p.poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Bosh(p) => p.poll_flush(),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::Bosh(p) => p.poll_close(),
        }
    }
}
