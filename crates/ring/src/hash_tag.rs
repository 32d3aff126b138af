//! Hash tags: hash only part of a key, so that related keys land on one server.
//!
//! twemproxy's `hash_tag` and Redis Cluster's rule: with the tag `{}`, a key that holds a
//! `{` followed later by a `}` with at least one byte between them is hashed by those bytes
//! alone (`{user1}:cart` and `{user1}:orders` by `user1`). Any other key is hashed whole.

/// A pair of delimiters (`{` and `}`), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashTag(Option<(u8, u8)>);

impl HashTag {
    /// No hash tag: keys are hashed whole (the seed's behaviour).
    pub const NONE: HashTag = HashTag(None);

    /// A tag from its two delimiter bytes (`"{}"`); `None` when `spec` is not two bytes.
    pub fn parse(spec: &str) -> Option<HashTag> {
        match spec.as_bytes() {
            [] => Some(HashTag::NONE),
            [open, close] => Some(HashTag(Some((*open, *close)))),
            _ => None,
        }
    }

    /// Whether a tag is set.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The part of `key` that decides its server.
    pub fn routing_key<'a>(&self, key: &'a [u8]) -> &'a [u8] {
        let Some((open, close)) = self.0 else { return key };
        let Some(start) = key.iter().position(|b| *b == open) else { return key };
        let rest = &key[start + 1..];
        match rest.iter().position(|b| *b == close) {
            Some(end) if end > 0 => &rest[..end],
            _ => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_cluster_rule() {
        let tag = HashTag::parse("{}").unwrap();
        assert_eq!(tag.routing_key(b"{user1}:cart"), b"user1");
        assert_eq!(tag.routing_key(b"x{user1}y{z}"), b"user1");
        assert_eq!(tag.routing_key(b"{}user1"), b"{}user1", "an empty tag hashes the whole key");
        assert_eq!(tag.routing_key(b"{user1"), b"{user1");
        assert_eq!(tag.routing_key(b"plain"), b"plain");
        assert_eq!(HashTag::NONE.routing_key(b"{user1}"), b"{user1}");
        assert!(HashTag::parse("{").is_none());
    }
}
