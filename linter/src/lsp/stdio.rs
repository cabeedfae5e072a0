//! The connection over stdin and stdout: lsp-server's `Connection` (so that
//! its handshake helpers serve as before), fed by a reader that survives
//! broken frames (`apiload::lsp_framing`): each one is answered with a
//! JSON-RPC error and the session goes on, where lsp-server's own reader
//! would end it.

use apiload::lsp_framing::{self, Frame};
use lsp_server::{Connection, Message};
use std::io::Write;
use std::thread::JoinHandle;

/// The reader and writer threads, joined once the connection is dropped.
pub struct IoThreads {
    reader: JoinHandle<()>,
    writer: JoinHandle<std::io::Result<()>>,
}

impl IoThreads {
    pub fn join(self) -> std::io::Result<()> {
        // The reader may be blocked on stdin after `exit` was sent: it ends
        // with the process, so it is not waited for unless it is done.
        if self.reader.is_finished() {
            let _ = self.reader.join();
        }
        match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::other("the writer thread panicked")),
        }
    }
}

/// Writes one framed message; stdout's lock keeps the reader's error
/// answers and the writer's messages whole.
fn write_framed(content: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(lsp_framing::frame(content).as_bytes())?;
    out.flush()
}

pub fn connection() -> std::io::Result<(Connection, IoThreads)> {
    let (to_server, from_client) = crossbeam_channel::bounded::<Message>(0);
    let (to_client, from_server) = crossbeam_channel::bounded::<Message>(0);
    let writer = std::thread::Builder::new().name("apiload-lsp-writer".into()).spawn(move || {
        for message in from_server {
            // lsp-server frames it (and adds `"jsonrpc": "2.0"`).
            message.write(&mut std::io::stdout().lock())?;
        }
        Ok(())
    })?;
    let reader = std::thread::Builder::new().name("apiload-lsp-reader".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match lsp_framing::read_frame(&mut stdin) {
                Ok(Some(Frame::Message(message))) => {
                    let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
                    if to_server.send(message).is_err() || exit {
                        return;
                    }
                }
                Ok(Some(Frame::Invalid { code, message, id, then_skip })) => {
                    eprintln!("apiload lsp: {message}");
                    if write_framed(&lsp_framing::error_response(code, &message, &id)).is_err()
                        || lsp_framing::skip(&mut stdin, then_skip).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    eprintln!("apiload lsp: cannot read stdin: {e}");
                    return;
                }
            }
        }
    })?;
    Ok((Connection { sender: to_client, receiver: from_client }, IoThreads { reader, writer }))
}
