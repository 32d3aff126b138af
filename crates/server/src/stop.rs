//! SHUTDOWN from a client: asks [`crate::run`] to stop as SIGTERM does (stop accepting,
//! answer what clients already sent, close them), and says whether the snapshot is written.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use tokio::sync::Notify;

/// Whether a stop writes the snapshot (`--snapshot`): SHUTDOWN's `SAVE` and `NOSAVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// As configured: written when the server has `--snapshot` (a signal's stop too).
    AsConfigured = 0,
    /// `SHUTDOWN SAVE`.
    Save = 1,
    /// `SHUTDOWN NOSAVE`: not written, so the next start loads the file of an earlier stop.
    NoSave = 2,
}

/// A client's request to stop the server. Shared through [`crate::Ctx`].
#[derive(Debug, Default)]
pub struct StopRequest {
    asked: Notify,
    save: AtomicU8,
}

impl StopRequest {
    /// Asks the server to stop, with or without its snapshot.
    pub fn ask(&self, save: Save) {
        self.save.store(save as u8, Relaxed);
        // A permit is kept when `run` is not waiting yet.
        self.asked.notify_one();
    }

    /// Resolves once a client asked the server to stop.
    pub async fn asked(&self) {
        self.asked.notified().await;
    }

    /// What the last request said of the snapshot ([`Save::AsConfigured`] when none came).
    pub fn save(&self) -> Save {
        match self.save.load(Relaxed) {
            1 => Save::Save,
            2 => Save::NoSave,
            _ => Save::AsConfigured,
        }
    }
}
