//! Commands the table does not know, learned from the servers: a newer Redis or a module
//! behind the proxy brings commands of its own. The first time a program sends one, the
//! proxy asks a server `COMMAND INFO name` and routes the command by the key specs it
//! reports, as it routes the table's own rows. Answers are kept (up to
//! [`resp::command::learn::MAX_LEARNED`] names), unknown ones too.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;
use resp::command::{self, learn, Command, LookupError};
use resp::{Frame, Request};

use crate::cluster::Topology;

/// What the servers said about names the table does not hold.
#[derive(Debug, Default)]
pub struct Learned {
    names: Mutex<HashMap<Vec<u8>, Option<&'static Command>>>,
}

impl Learned {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Option<&'static Command>>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The command `request` names: the table's, else one learned from the servers.
    pub fn resolve(&self, request: &Request) -> Result<&'static Command, LookupError> {
        match command::lookup(&request.args) {
            Err(LookupError::UnknownCommand) => {
                let name = request.name().to_ascii_lowercase();
                self.lock().get(&name).copied().flatten().ok_or(LookupError::UnknownCommand)
            }
            found => found,
        }
    }

    /// Whether `request` names a command neither the table nor the servers were asked about.
    pub fn should_ask(&self, request: &Request) -> bool {
        // Programs only: a person's typo gets the seed's hint at once.
        request.raw.is_some()
            && matches!(command::lookup(&request.args), Err(LookupError::UnknownCommand))
            && !self.lock().contains_key(&request.name().to_ascii_lowercase())
    }

    /// Asks a server that is up what `request`'s command is, and remembers the answer.
    pub async fn ask(&self, topology: &Topology, request: &Request) {
        let name = request.name().to_ascii_lowercase();
        let Some(server) = topology.up_servers().next() else { return };
        let mut question = BytesMut::new();
        resp::write::command(&mut question, &[&b"COMMAND"[..], b"INFO", &name]);
        let receiver = topology.backend(server).send(question.freeze(), 1).await;
        let Ok(Ok(replies)) = receiver.await else { return };
        let learned = match replies.frame(0) {
            Frame::Array(rows) => rows.first().and_then(learn::facts_from_info).map(learn::command_from),
            _ => None,
        };
        let mut names = self.lock();
        if names.len() < learn::MAX_LEARNED {
            if let Some(command) = learned {
                tracing::info!(command = command.display, route = ?command.route, "[proxy] learned a command from a server");
            }
            names.insert(name, learned);
        }
    }
}
