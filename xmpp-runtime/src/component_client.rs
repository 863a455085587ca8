//! Connecting a component to a server (XEP-0114) over TCP: the driver for
//! the core's [`ComponentClient`] machine, for programs that serve a domain
//! (gateways, bots, app servers) and for tests.
//!
//! The machine decides everything (handshake, keepalives, errors); this
//! file moves its bytes and runs its timer while waiting for stanzas.

use crate::clock::{instant_for, now_ms};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::net::SocketAddr;
use xmpp_core::stream::{component_client::SendError, StreamErrorCondition};
use xmpp_core::stream::{ComponentClient, ComponentClientConfig, ComponentOutput};
use xmpp_core::Element;

/// What can end a component connection.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The transport failed.
    #[error("component connection: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended, with the condition either side gave.
    #[error("component stream closed{}", .0.map(|c| format!(" ({c})")).unwrap_or_default())]
    Closed(Option<StreamErrorCondition>),
    /// A stanza was sent before the handshake was accepted or after the end.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// A component's connection to its server.
#[derive(Debug)]
pub struct ComponentConnection {
    tcp: TcpStream,
    machine: ComponentClient,
    /// Stanzas received and not yet taken.
    inbox: VecDeque<Element>,
    connected: bool,
    /// Set once the machine reported the end.
    closed: Option<Option<StreamErrorCondition>>,
}

impl ComponentConnection {
    /// Connect to the server's component port and complete the handshake.
    pub async fn connect(
        addr: SocketAddr,
        cfg: ComponentClientConfig,
    ) -> Result<Self, ComponentError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut c = ComponentConnection {
            tcp,
            machine: ComponentClient::new(cfg, now_ms()),
            inbox: VecDeque::new(),
            connected: false,
            closed: None,
        };
        while !c.connected {
            c.check_open()?;
            c.turn().await?;
        }
        Ok(c)
    }

    /// Send a stanza from the component's domain.
    pub async fn send(&mut self, stanza: &Element) -> Result<(), ComponentError> {
        self.machine.send_stanza(now_ms(), stanza)?;
        self.perform().await?;
        self.check_open()
    }

    /// The next stanza from the server (keepalives go out meanwhile).
    pub async fn recv(&mut self) -> Result<Element, ComponentError> {
        loop {
            // What arrived before the end is still handed out.
            if let Some(stanza) = self.inbox.pop_front() {
                return Ok(stanza);
            }
            self.check_open()?;
            self.turn().await?;
        }
    }

    /// End the stream gracefully.
    pub async fn close(mut self) -> Result<(), ComponentError> {
        self.machine.close(now_ms());
        self.perform().await
    }

    /// Wait for bytes or the machine's timer, feed them, perform outputs.
    async fn turn(&mut self) -> Result<(), ComponentError> {
        self.perform().await?;
        let mut buf = [0u8; 4096];
        let deadline = self.machine.poll_timeout();
        let read = async { Some(self.tcp.read(&mut buf).await) };
        let timer = async {
            match deadline {
                Some(at) => {
                    smol::Timer::at(instant_for(at)).await;
                }
                None => std::future::pending::<()>().await,
            }
            None
        };
        match smol::future::or(read, timer).await {
            Some(Ok(0)) => return Err(ComponentError::Closed(None)),
            Some(Ok(n)) => self.machine.handle_input(now_ms(), &buf[..n]),
            Some(Err(e)) => return Err(e.into()),
            None => self.machine.handle_timeout(now_ms()),
        }
        self.perform().await
    }

    /// Write what the machine wrote, keep what it received.
    async fn perform(&mut self) -> Result<(), ComponentError> {
        while let Some(out) = self.machine.poll_output() {
            match out {
                ComponentOutput::Write(bytes) => self.tcp.write_all(&bytes).await?,
                ComponentOutput::Connected => self.connected = true,
                ComponentOutput::Stanza(stanza) => self.inbox.push_back(stanza),
                ComponentOutput::Closed(condition) => self.closed = Some(condition),
            }
        }
        self.tcp.flush().await?;
        Ok(())
    }

    /// An error once the stream has ended.
    fn check_open(&self) -> Result<(), ComponentError> {
        match self.closed {
            Some(condition) => Err(ComponentError::Closed(condition)),
            None => Ok(()),
        }
    }
}
