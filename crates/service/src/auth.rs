//! Who may talk to a binary, with Redis's semantics and texts: `--requirepass` (`AUTH pass`,
//! `AUTH default pass`, `HELLO <proto> AUTH default pass`, `-NOAUTH` before it), the proxy's
//! `--admin-password` (`AUTH admin pass`; commands flagged [`Flags::GUARDED`] answer
//! `-NOPERM` without it) and protected mode (`-DENIED` to clients beyond loopback when no
//! password is set).
//!
//! Passwords are kept as SHA-256 digests and compared digest to digest with an XOR fold, as
//! Redis does (`time_independent_strcmp` over digests): the time taken depends neither on
//! where the first wrong byte is nor on the length of either password.
//!
//! Failed AUTHs are throttled per connection: each one is counted in
//! [`ClientState::auth_failures`]; the proxy holds its replies back [`throttle`] (100 ms per
//! failure so far, at most 1 s), and after [`MAX_AUTH_FAILURES`] both binaries close the
//! connection (see [`must_close`]), so guessing costs a new connection every few tries.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use resp::command::{Command, Flags};
use sha2::{Digest, Sha256};

use crate::common::ClientState;

/// Before authentication, every command not flagged `no_auth`.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// A wrong password, or an unknown user.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// `AUTH pass` with no `--requirepass`.
pub const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. \
                               Are you sure your configuration is correct?";
/// `HELLO` without `AUTH` before authentication.
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                                HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
                                the RESP protocol version at the same time";
/// Redis's protected-mode refusal, shortened to its essentials (the hints kept).
pub const DENIED: &str = "DENIED Running in protected mode because protected mode is enabled and no password is set \
                          for the default user. In this mode connections are only accepted from the loopback \
                          interface. If you want to connect from external computers, either 1) restart with \
                          '--requirepass <password>' (and, for the proxy, '--admin-password <password>'), or \
                          2) if the machine is not reachable from untrusted networks, restart with \
                          '--protected-mode no'. One of them is enough.";
/// The user name that `AUTH` takes for the proxy's admin password.
pub const ADMIN_USER: &[u8] = b"admin";
/// Failed AUTHs one connection may make; the last one's reply is its final one.
pub const MAX_AUTH_FAILURES: u32 = 10;
/// What the proxy waits per failed AUTH so far before it answers.
const THROTTLE_STEP: Duration = Duration::from_millis(100);
/// The longest such wait.
const THROTTLE_MAX: Duration = Duration::from_secs(1);

/// A password as its SHA-256 digest.
#[derive(Clone, PartialEq, Eq)]
struct Secret([u8; 32]);

impl Secret {
    fn new(password: &[u8]) -> Self {
        Secret(Sha256::digest(password).into())
    }

    /// Whether `guess` is this password, in time independent of both.
    fn matches(&self, guess: &[u8]) -> bool {
        let guess = Secret::new(guess);
        let diff = self.0.iter().zip(guess.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        // Keep the fold from being turned into an early exit.
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A binary's access rules: built once at start from its flags.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `--requirepass`: the default user's password.
    requirepass: Option<Secret>,
    /// `--admin-password` (the proxy's): needed for [`Flags::GUARDED`] commands.
    admin: Option<Secret>,
    /// `--protected-mode` (on unless `no`).
    protected_mode: bool,
}

/// What [`Auth::gate`] decided about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Run it as usual.
    Run,
    /// Answered `+OK` (a successful AUTH).
    Ok,
    /// Answered with this error (without `-`); the command is not run.
    Error(String),
}

impl Auth {
    /// Rules from the flags: empty passwords count as none.
    pub fn new(requirepass: Option<&str>, admin_password: Option<&str>, protected_mode: bool) -> Self {
        let secret = |p: Option<&str>| p.filter(|p| !p.is_empty()).map(|p| Secret::new(p.as_bytes()));
        Auth { requirepass: secret(requirepass), admin: secret(admin_password), protected_mode }
    }

    /// Whether clients must AUTH before other commands.
    pub fn requires_password(&self) -> bool {
        self.requirepass.is_some()
    }

    /// Whether protected mode refuses clients that are not on loopback: it is on and no
    /// password is set (Redis's rule).
    pub fn protects(&self) -> bool {
        self.protected_mode && self.requirepass.is_none()
    }

    /// Whether a client from `peer` may connect (see [`DENIED`]).
    pub fn admits(&self, peer: &SocketAddr) -> bool {
        !self.protects() || is_local(peer.ip())
    }

    /// Whether `command` may run for `client` now, without side effects: authenticated (or
    /// no password), and admin for guarded commands when an admin password is set.
    pub fn allows(&self, command: &Command, client: &ClientState) -> bool {
        (self.requirepass.is_none() || client.authenticated || command.flags.contains(Flags::NO_AUTH))
            && (self.admin.is_none() || client.admin || !command.flags.contains(Flags::GUARDED))
    }

    /// Checks a request (command found, argument count checked) before it runs: answers AUTH
    /// itself, authenticates `HELLO ... AUTH user pass`, and refuses what `client` may not
    /// run yet (`-NOAUTH`, `-NOPERM`).
    pub fn gate(&self, command: &Command, args: &[Bytes], client: &mut ClientState) -> Gate {
        if command.name == "auth" {
            return self.auth(args, client);
        }
        if command.name == "hello" {
            return self.hello(args, client);
        }
        if self.requirepass.is_some() && !client.authenticated && !command.flags.contains(Flags::NO_AUTH) {
            return Gate::Error(NOAUTH.into());
        }
        if self.admin.is_some() && !client.admin && command.flags.contains(Flags::GUARDED) {
            return Gate::Error(format!(
                "NOPERM {} changes the ring or erases or reconfigures every server: it needs the admin password \
                 (AUTH admin <password>, set with --admin-password)",
                command.display
            ));
        }
        Gate::Run
    }

    /// `AUTH password` or `AUTH user password`.
    fn auth(&self, args: &[Bytes], client: &mut ClientState) -> Gate {
        match args {
            [_, password] => match &self.requirepass {
                None => Gate::Error(NO_PASSWORD.into()),
                Some(_) => self.login(b"default", password, client),
            },
            [_, user, password] => self.login(user, password, client),
            _ => Gate::Error("ERR syntax error".into()),
        }
    }

    /// Checks `user`'s `password`; on success marks the client authenticated (and admin).
    fn login(&self, user: &[u8], password: &[u8], client: &mut ClientState) -> Gate {
        let accepted = match user {
            // With no password the default user takes any (Redis's `nopass`).
            b"default" => self.requirepass.as_ref().is_none_or(|secret| secret.matches(password)),
            ADMIN_USER => self.admin.as_ref().is_some_and(|secret| secret.matches(password)),
            _ => false,
        };
        if !accepted {
            client.auth_failures = client.auth_failures.saturating_add(1);
            return Gate::Error(WRONGPASS.into());
        }
        client.authenticated = true;
        client.admin |= user == ADMIN_USER;
        Gate::Ok
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`: authenticates with its AUTH option,
    /// then lets the shared handler answer; before authentication without AUTH, Redis's
    /// NOAUTH. A protocol version that does not parse is left to the handler's error.
    fn hello(&self, args: &[Bytes], client: &mut ClientState) -> Gate {
        let mut credentials = None;
        let mut i = 2;
        while i < args.len() {
            let option = &args[i];
            let more = args.len() - i - 1;
            if option.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                credentials = Some((&args[i + 1], &args[i + 2]));
                i += 3;
            } else if option.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                i += 2;
            } else {
                return Gate::Error(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(option)));
            }
        }
        if let Some((user, password)) = credentials {
            if let Gate::Error(text) = self.login(user, password, client) {
                return Gate::Error(text);
            }
        }
        if self.requirepass.is_some() && !client.authenticated {
            return Gate::Error(HELLO_NOAUTH.into());
        }
        Gate::Run
    }
}

/// Whether a connection has failed AUTH too often and must be closed after its replies.
pub fn must_close(client: &ClientState) -> bool {
    client.auth_failures >= MAX_AUTH_FAILURES
}

/// How long to hold back the replies of a batch in which `client`'s failed AUTHs grew from
/// `before`: none when they did not.
pub fn throttle(before: u32, client: &ClientState) -> Option<Duration> {
    (client.auth_failures > before).then(|| (THROTTLE_STEP * client.auth_failures).min(THROTTLE_MAX))
}

/// Whether `ip` is loopback as Redis counts it: 127.0.0.1 and ::1 only (also IPv4-mapped).
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4 == std::net::Ipv4Addr::LOCALHOST),
    }
}

/// Whether a `--bind` address listens only on loopback.
pub fn is_loopback_bind(bind: &str) -> bool {
    match bind.trim_matches(|c| c == '[' || c == ']') {
        "localhost" => true,
        other => other.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

/// The protected-mode refusal as a RESP error, for the accept paths.
pub fn denied_reply() -> bytes::BytesMut {
    let mut out = bytes::BytesMut::new();
    resp::write::error(&mut out, DENIED.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    fn gate(auth: &Auth, text: &str, client: &mut ClientState) -> Gate {
        let args = args(text);
        let command = resp::command::lookup(&args).expect("a known command");
        auth.gate(command, &args, client)
    }

    #[test]
    fn secrets_match_only_themselves() {
        let secret = Secret::new(b"sekret");
        assert!(secret.matches(b"sekret"));
        assert!(!secret.matches(b"sekreT") && !secret.matches(b"") && !secret.matches(b"sekret1"));
    }

    #[test]
    fn requirepass_gates_everything_but_no_auth_commands() {
        let auth = Auth::new(Some("pw"), None, true);
        let mut client = ClientState::new();
        assert_eq!(gate(&auth, "GET k", &mut client), Gate::Error(NOAUTH.into()));
        assert_eq!(gate(&auth, "QUIT", &mut client), Gate::Run);
        assert_eq!(gate(&auth, "HELLO 2", &mut client), Gate::Error(HELLO_NOAUTH.into()));
        assert_eq!(gate(&auth, "AUTH nope", &mut client), Gate::Error(WRONGPASS.into()));
        assert_eq!(gate(&auth, "AUTH other pw", &mut client), Gate::Error(WRONGPASS.into()));
        assert_eq!(client.auth_failures, 2);
        assert_eq!(gate(&auth, "HELLO 2 AUTH default pw", &mut client), Gate::Run);
        assert_eq!(gate(&auth, "GET k", &mut client), Gate::Run);
        assert!(!auth.protects());
    }

    #[test]
    fn without_a_password_auth_says_so_as_redis_does() {
        let auth = Auth::new(None, None, true);
        let mut client = ClientState::new();
        assert_eq!(gate(&auth, "AUTH x", &mut client), Gate::Error(NO_PASSWORD.into()));
        assert_eq!(gate(&auth, "AUTH default x", &mut client), Gate::Ok);
        assert_eq!(gate(&auth, "AUTH a b c", &mut client), Gate::Error("ERR syntax error".into()));
        assert_eq!(gate(&auth, "FLUSHALL", &mut client), Gate::Run);
        assert!(auth.protects());
    }

    #[test]
    fn guarded_commands_need_the_admin_password() {
        let auth = Auth::new(None, Some("root"), true);
        let mut client = ClientState::new();
        assert!(matches!(gate(&auth, "FLUSHALL", &mut client), Gate::Error(t) if t.starts_with("NOPERM FLUSHALL ")));
        assert!(matches!(gate(&auth, "CONFIG SET a b", &mut client), Gate::Error(t) if t.starts_with("NOPERM")));
        assert_eq!(gate(&auth, "CONFIG GET a", &mut client), Gate::Run);
        assert_eq!(gate(&auth, "AUTH admin nope", &mut client), Gate::Error(WRONGPASS.into()));
        assert_eq!(gate(&auth, "AUTH admin root", &mut client), Gate::Ok);
        assert_eq!(gate(&auth, "ADD_SERVER 127.0.0.1:1", &mut client), Gate::Run);
    }

    #[test]
    fn loopback_is_what_redis_counts() {
        assert!(is_local("127.0.0.1".parse().unwrap()) && is_local("::1".parse().unwrap()));
        assert!(is_local("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_local("127.0.0.2".parse().unwrap()) && !is_local("10.0.0.1".parse().unwrap()));
        assert!(is_loopback_bind("127.0.0.1") && is_loopback_bind("::1") && is_loopback_bind("localhost"));
        assert!(!is_loopback_bind("0.0.0.0") && !is_loopback_bind("::"));
    }

    #[test]
    fn throttling_grows_and_closes() {
        let mut client = ClientState::new();
        assert_eq!(throttle(0, &client), None);
        client.auth_failures = 3;
        assert_eq!(throttle(2, &client), Some(Duration::from_millis(300)));
        client.auth_failures = MAX_AUTH_FAILURES;
        assert_eq!(throttle(0, &client), Some(THROTTLE_MAX));
        assert!(must_close(&client));
    }
}
