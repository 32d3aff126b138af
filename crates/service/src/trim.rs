//! Gives freed heap back to the operating system after a flood of clients has left.
//!
//! Every client holds buffers and a task while it is connected. When thousands leave at
//! once, glibc's allocator keeps the freed pages for reuse: the process would stay near its
//! peak for ever (measured: 5,000 clients left the proxy 11 MiB above its baseline). After a
//! drop of [`FLOOD`] clients or more, [`after_floods`] asks the allocator to return what it
//! holds free (`malloc_trim`), off the serving threads.

use std::time::Duration;

/// Clients that must have left since the last peak for a trim: small comings and goings cost
/// nothing, as the allocator reuses what they free.
pub const FLOOD: usize = 1_000;
/// How often the client count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches `clients` (the number connected now; `None` once the server is gone, which ends
/// the loop) and trims the heap after every drop of [`FLOOD`] clients from a peak.
pub async fn after_floods(clients: impl Fn() -> Option<usize>) {
    let mut peak = 0;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(now) = clients() else { return };
        peak = peak.max(now);
        if peak - now >= FLOOD {
            tracing::debug!(from = peak, to = now, "clients left; returning freed memory to the OS");
            peak = now;
            // It walks the whole heap: not on a thread that serves clients.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// Returns the allocator's free pages to the OS (glibc; elsewhere nothing to do).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
