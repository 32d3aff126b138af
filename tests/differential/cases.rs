//! The differential suite's cases: a family, a name and the command lines run in order.
//!
//! A line is `[@N] [send|recv] [sorted|shape|scan] COMMAND ARG...`:
//! - `@N`: on the case's connection `N` (0 when absent); each is opened on first use.
//! - `send`: write the command and read nothing yet; `recv`: read one reply, send nothing
//!   (a published message, the answer of a blocked command, a second subscribe confirmation).
//! - `sorted`: the reply is an array whose order Redis does not promise (SMEMBERS, KEYS,
//!   SUNION): compared sorted. `shape`: only the reply's shape is compared (TIME: an array of
//!   two bulk strings). `scan`: a SCAN-family command run until its cursor is 0, all the
//!   elements it returned compared sorted (a proxy's cursor walks several servers).
//! - Arguments are split on spaces; `"..."` keeps spaces, with `\n` and `\"` inside.
//! - `$X1` and `$X2` are two keys that the proxy's ring puts on different servers (for the
//!   cases that honestly differ through a sharding proxy, [`KNOWN_DIFFERENCES`]).
//!
//! Every case starts on empty servers (the runner flushes keys, scripts and functions on each
//! redis-server directly), so names need not be unique across cases; channel names are,
//! since a proxy may keep a backend subscription a moment after its client left.
//! Multi-key atomic commands use a hash tag (`{t}a {t}b`) so that they are expected to work
//! through a proxy run with `--hash-tag "{}"`.

/// One case: a family, a name unique in the family, the command lines.
pub struct Case {
    /// `strings`, `bitmaps`, `keys`, ...: the table's rows.
    pub family: &'static str,
    /// Unique within the family; `family/name` names the case in reports.
    pub name: &'static str,
    /// Command lines, see the module doc.
    pub lines: Vec<String>,
}

/// Cases that may honestly differ through a sharding proxy: `family/name` and why. They are
/// run and listed, but left out of the percentage.
pub const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("keys/rename_cross_server", "RENAME between keys on two servers cannot be atomic: a proxy refuses it"),
    ("sets/smove_cross_server", "SMOVE between keys on two servers cannot be atomic: a proxy refuses it"),
    ("strings/msetnx_cross_server", "MSETNX over two servers cannot be all-or-nothing: a proxy refuses it"),
    ("transactions/multi_cross_server", "a transaction pinned to one server cannot hold a key of another"),
    ("scripting/eval_cross_server_keys", "a script runs on one server and cannot reach a key of another"),
    ("server/select_1", "a sharding proxy serves database 0 only (as Redis Cluster does)"),
    ("pubsub/pubsub_numpat", "PSUBSCRIBE subscribes on every server: a summed NUMPAT counts it once per server"),
];

/// The SHA1 of `return ARGV[1]`.
const SHA_ARGV: &str = "098e0f0d1448c0a81dafe820f66d460eb09263da";
/// The SHA1 of `return redis.call('GET', KEYS[1])`.
const SHA_GET: &str = "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f";
/// The SHA1 of `return redis.call('INCRBY', KEYS[1], ARGV[1])`.
const SHA_INCRBY: &str = "8cd00688c05c46bde4a2e60658ef20a2e5c0b248";

/// A library with `echo` (no keys), `get` (read-only, one key) and `incr` (one key).
const LIBRARY: &str = "\"#!lua name=difflib\\n\
redis.register_function('echo', function(keys, args) return args[1] end)\\n\
redis.register_function{function_name='get', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\\n\
redis.register_function('incr', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\"";

/// Every case, in family order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut family = |family: &'static str, list: Vec<(&'static str, Vec<String>)>| {
        cases.extend(list.into_iter().map(|(name, lines)| Case { family, name, lines }));
    };
    family("strings", strings());
    family("bitmaps", bitmaps());
    family("keys", keys());
    family("hashes", hashes());
    family("lists", lists());
    family("sets", sets());
    family("sorted-sets", sorted_sets());
    family("hyperloglog", hyperloglog());
    family("geo", geo());
    family("streams", streams());
    family("scripting", scripting());
    family("transactions", transactions());
    family("pubsub", pubsub());
    family("server", server());
    cases
}

/// `c("name", &["LINE", ...])`: one case's entry.
fn c(name: &'static str, lines: &[&str]) -> (&'static str, Vec<String>) {
    (name, lines.iter().map(|l| l.to_string()).collect())
}

fn strings() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("set_get", &["SET s:k hello", "GET s:k"]),
        c("get_missing", &["GET s:none"]),
        c("set_nx", &["SET k 1 NX", "SET k 2 NX", "GET k"]),
        c("set_xx", &["SET k 1 XX", "SET k 1", "SET k 2 XX", "GET k"]),
        c("set_get_option", &["SET k a", "SET k b GET", "SET nk c GET"]),
        c("set_ex_ttl", &["SET k v EX 1000", "TTL k"]),
        c("set_keepttl", &["SET k v EX 1000", "SET k w KEEPTTL", "TTL k", "GET k"]),
        c("set_exat", &["SET k v EXAT 32503680000", "EXPIRETIME k"]),
        c("set_syntax_error", &["SET k v EX", "SET k v NX XX"]),
        c("set_arity", &["SET k"]),
        c("setex", &["SETEX k 1000 v", "TTL k", "GET k"]),
        c("psetex", &["PSETEX k 1000000 v", "TTL k"]),
        c("setnx", &["SETNX k a", "SETNX k b", "GET k"]),
        c("getset", &["GETSET k a", "GETSET k b", "GET k"]),
        c("getdel", &["SET k v", "GETDEL k", "GET k", "GETDEL k"]),
        c("getex", &["SET k v", "GETEX k EX 1000", "TTL k", "GETEX k PERSIST", "TTL k"]),
        c("append_strlen", &["APPEND k hello", "APPEND k \" world\"", "STRLEN k", "GET k", "STRLEN none"]),
        c("incr_decr", &["INCR n", "INCRBY n 10", "DECR n", "DECRBY n 5", "GET n"]),
        c("incr_not_integer", &["SET n abc", "INCR n"]),
        c("incr_overflow", &["SET n 9223372036854775807", "INCR n"]),
        c("incrbyfloat", &["INCRBYFLOAT f 1.5", "INCRBYFLOAT f 2.25", "INCRBYFLOAT f -0.75"]),
        c("setrange_getrange", &["SET k \"Hello World\"", "SETRANGE k 6 Redis", "GETRANGE k 0 4", "GETRANGE k -5 -1"]),
        c("substr", &["SET k hello", "SUBSTR k 1 3"]),
        c("mset_mget", &["MSET a 1 b 2 c 3 d 4 e 5", "MGET a b c d e missing"]),
        c("msetnx_tag", &["MSETNX {m}a 1 {m}b 2", "MSETNX {m}b 3 {m}c 4", "MGET {m}a {m}b {m}c"]),
        c("msetnx_cross_server", &["MSETNX $X1 1 $X2 2", "MGET $X1 $X2"]),
        c("lcs_tag", &["MSET {l}a ohmytext {l}b mynewtext", "LCS {l}a {l}b", "LCS {l}a {l}b LEN"]),
        c("wrongtype", &["LPUSH k x", "GET k", "APPEND k x"]),
        c("binary_value", &["SET k \"a b\\nc\"", "GET k", "STRLEN k"]),
    ]
}

fn bitmaps() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("setbit_getbit", &["SETBIT b 7 1", "SETBIT b 7 0", "SETBIT b 100 1", "GETBIT b 100", "GETBIT b 5"]),
        c("getbit_missing", &["GETBIT none 3"]),
        c("bitcount", &["SET b foobar", "BITCOUNT b", "BITCOUNT b 0 0", "BITCOUNT b 1 1"]),
        c("bitcount_bit_range", &["SET b foobar", "BITCOUNT b 5 30 BIT"]),
        c("bitcount_missing", &["BITCOUNT none"]),
        c("bitpos", &["SETBIT b 10 1", "BITPOS b 1", "BITPOS b 0"]),
        c("bitpos_range", &["SET b foobar", "BITPOS b 1 2", "BITPOS b 0 1 -1", "BITPOS b 1 7 15 BIT"]),
        c("bitop_and_tag", &["SET {bo}a foobar", "SET {bo}b abcdef", "BITOP AND {bo}d {bo}a {bo}b", "GET {bo}d"]),
        c("bitop_or_tag", &["SET {bo}a foobar", "SET {bo}b abcdef", "BITOP OR {bo}d {bo}a {bo}b", "GET {bo}d"]),
        c("bitop_xor_tag", &["SET {bo}a foobar", "SET {bo}b abcdef", "BITOP XOR {bo}d {bo}a {bo}b", "GET {bo}d"]),
        c("bitop_not_tag", &["SET {bo}a foobar", "BITOP NOT {bo}d {bo}a", "STRLEN {bo}d"]),
        c("bitfield", &["BITFIELD b SET i8 0 100 GET i8 0 INCRBY u4 4 3"]),
        c("bitfield_overflow", &["BITFIELD b OVERFLOW SAT INCRBY u2 0 10", "BITFIELD b OVERFLOW FAIL INCRBY u2 0 10"]),
        c("bitfield_ro", &["SETBIT b 0 1", "BITFIELD_RO b GET u8 0"]),
        c("setbit_wrongtype", &["LPUSH b x", "SETBIT b 1 1"]),
    ]
}

fn keys() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("exists_del", &["SET a 1", "SET b 2", "EXISTS a b c a", "DEL a b c", "EXISTS a"]),
        c("del_missing", &["DEL none"]),
        c(
            "type",
            &[
                "SET s v",
                "LPUSH l x",
                "SADD t x",
                "HSET h f v",
                "ZADD z 1 m",
                "TYPE s",
                "TYPE l",
                "TYPE t",
                "TYPE h",
                "TYPE z",
                "TYPE none",
            ],
        ),
        c("type_stream", &["XADD x 1-1 f v", "TYPE x"]),
        c("expire_ttl_persist", &["SET k v", "EXPIRE k 1000", "TTL k", "PERSIST k", "TTL k", "PERSIST k"]),
        c("pexpire_pttl_missing", &["SET k v", "PEXPIRE k 1000000", "TTL k", "PTTL none", "PTTL k2"]),
        c("expire_missing", &["EXPIRE none 10", "TTL none"]),
        c(
            "expire_options",
            &["SET k v", "EXPIRE k 1000 XX", "EXPIRE k 1000 NX", "EXPIRE k 2000 GT", "EXPIRE k 500 GT", "TTL k"],
        ),
        c("expireat_expiretime", &["SET k v", "EXPIREAT k 32503680000", "EXPIRETIME k", "PEXPIRETIME k"]),
        c("pexpireat", &["SET k v", "PEXPIREAT k 32503680000000", "TTL none", "EXPIRETIME k"]),
        c("expire_past_deletes", &["SET k v", "EXPIRE k -1", "EXISTS k"]),
        c("rename_tag", &["SET {u}a 1", "RENAME {u}a {u}b", "GET {u}a", "GET {u}b"]),
        c("renamenx_tag", &["SET {u}a 1", "SET {u}b 2", "RENAMENX {u}a {u}b", "RENAMENX {u}a {u}c", "GET {u}c"]),
        c("rename_missing", &["RENAME {u}x {u}y"]),
        c("rename_keeps_ttl", &["SET {u}a v EX 1000", "RENAME {u}a {u}b", "TTL {u}b"]),
        c("rename_cross_server", &["SET $X1 v", "RENAME $X1 $X2", "GET $X2"]),
        c("unlink", &["SET a 1", "SET b 2", "UNLINK a b c", "EXISTS a b"]),
        c("touch", &["SET a 1", "SET b 1", "TOUCH a b c"]),
        c("copy_tag", &["SET {c}a v", "COPY {c}a {c}b", "GET {c}b", "COPY {c}a {c}b", "COPY {c}a {c}b REPLACE"]),
        c("copy_hash_tag", &["HSET {c}h f v", "COPY {c}h {c}g", "HGETALL {c}g"]),
        c(
            "object_encoding",
            &[
                "SET i 123",
                "SET e abc",
                "SADD si 1 2 3",
                "SADD ss a b c",
                "HSET h f v",
                "ZADD z 1 m",
                "OBJECT ENCODING i",
                "OBJECT ENCODING e",
                "OBJECT ENCODING si",
                "OBJECT ENCODING ss",
                "OBJECT ENCODING h",
                "OBJECT ENCODING z",
                "OBJECT ENCODING none",
            ],
        ),
        c("object_encoding_raw", &["SET r 0123456789012345678901234567890123456789012345", "OBJECT ENCODING r"]),
        c("dump", &["SET k v", "RPUSH l a b", "DUMP k", "DUMP l", "DUMP none"]),
        c("memory_usage", &["SET k v", "MEMORY USAGE k", "MEMORY USAGE none"]),
        c("keys_pattern", &["MSET kp:1 a kp:2 b kp:3 c other d", "sorted KEYS kp:*", "sorted KEYS *", "KEYS nothing*"]),
        c("scan_all", &["MSET sc:1 a sc:2 b sc:3 c sc:4 d sc:5 e zz f", "scan SCAN 0 MATCH sc:* COUNT 100"]),
        c("scan_type", &["SET st:s v", "LPUSH st:l x", "scan SCAN 0 TYPE list COUNT 100"]),
        c("randomkey_one", &["SET only v", "RANDOMKEY"]),
        c("sort_list", &["RPUSH l 3 1 2", "SORT l", "SORT l DESC", "SORT l LIMIT 0 2", "SORT_RO l"]),
        c("sort_alpha", &["RPUSH l b c a", "SORT l ALPHA", "SORT l ALPHA DESC LIMIT 1 1"]),
        c("sort_store_tag", &["RPUSH {s}l 3 1 2", "SORT {s}l STORE {s}d", "LRANGE {s}d 0 -1"]),
    ]
}

fn hashes() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("hset_hget", &["HSET h f v", "HGET h f", "HGET h nf", "HGET none f"]),
        c("hset_many", &["HSET h a 1 b 2 c 3", "HSET h a 9 d 4", "HLEN h", "HGETALL h"]),
        c("hmset_hmget", &["HMSET h a 1 b 2", "HMGET h a b c"]),
        c("hdel_hexists", &["HSET h a 1 b 2", "HDEL h a x", "HEXISTS h a", "HEXISTS h b", "HDEL h b", "EXISTS h"]),
        c("hkeys_hvals", &["HSET h x 1 y 2 z 3", "HKEYS h", "HVALS h"]),
        c("hincrby", &["HINCRBY h n 5", "HINCRBY h n -2", "HGET h n"]),
        c("hincrbyfloat", &["HINCRBYFLOAT h f 1.5", "HINCRBYFLOAT h f 0.25"]),
        c("hincrby_not_integer", &["HSET h n abc", "HINCRBY h n 1"]),
        c("hsetnx", &["HSETNX h f a", "HSETNX h f b", "HGET h f"]),
        c("hstrlen", &["HSET h f hello", "HSTRLEN h f", "HSTRLEN h none"]),
        c("hrandfield_single", &["HSET h only v", "HRANDFIELD h", "HRANDFIELD h -3", "HRANDFIELD h -2 WITHVALUES"]),
        c("hrandfield_all", &["HSET h a 1 b 2 c 3", "sorted HRANDFIELD h 10"]),
        c("hscan", &["HSET h a 1 b 2", "scan HSCAN h 0"]),
        c("hgetall_missing", &["HGETALL none", "HLEN none"]),
        c("hash_wrongtype", &["SET k v", "HGET k f", "HSET k f v"]),
        c("hset_arity", &["HSET h a", "HSET h a 1 b"]),
        c(
            "hash_encoding_grows",
            &["HSET h f 0123456789012345678901234567890123456789012345678901234567890123456789", "OBJECT ENCODING h"],
        ),
    ]
}

fn lists() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("lpush_lrange", &["LPUSH l a b c", "LRANGE l 0 -1", "LRANGE l 1 1", "LRANGE none 0 -1"]),
        c("rpush_lpop_rpop", &["RPUSH l a b c d", "LPOP l", "RPOP l", "LRANGE l 0 -1"]),
        c("pop_count", &["RPUSH l a b c d e", "LPOP l 2", "RPOP l 2", "LPOP none 2"]),
        c("llen_lindex", &["RPUSH l a b c", "LLEN l", "LINDEX l 0", "LINDEX l -1", "LINDEX l 9"]),
        c("lset", &["RPUSH l a b", "LSET l 1 x", "LSET l 5 x", "LRANGE l 0 -1"]),
        c("linsert", &["RPUSH l a c", "LINSERT l BEFORE c b", "LINSERT l AFTER nope x", "LRANGE l 0 -1"]),
        c("lrem", &["RPUSH l a b a c a", "LREM l 2 a", "LRANGE l 0 -1"]),
        c("ltrim", &["RPUSH l a b c d", "LTRIM l 1 2", "LRANGE l 0 -1"]),
        c("pushx", &["LPUSHX l a", "RPUSH l b", "LPUSHX l a", "RPUSHX l c", "LRANGE l 0 -1"]),
        c("lpos", &["RPUSH l a b c b", "LPOS l b", "LPOS l b RANK 2", "LPOS l b COUNT 0", "LPOS l z"]),
        c("lmove_tag", &["RPUSH {q}a 1 2 3", "LMOVE {q}a {q}b LEFT RIGHT", "LRANGE {q}a 0 -1", "LRANGE {q}b 0 -1"]),
        c("rpoplpush_tag", &["RPUSH {q}a 1 2", "RPOPLPUSH {q}a {q}b", "LRANGE {q}b 0 -1"]),
        c("lmpop_tag", &["RPUSH {q}b x y z", "LMPOP 2 {q}a {q}b LEFT COUNT 2", "LMPOP 1 {q}a RIGHT"]),
        c("blpop_ready", &["RPUSH l a b", "BLPOP l 1", "BRPOP l 1"]),
        c("blpop_timeout", &["BLPOP empty 0.1"]),
        c("blpop_woken", &["@1 send BLPOP {bl}q 5", "RPUSH {bl}q hello", "@1 recv", "LLEN {bl}q"]),
        c(
            "blmove_woken_tag",
            &["@1 send BLMOVE {bm}a {bm}b LEFT LEFT 5", "RPUSH {bm}a x", "@1 recv", "LRANGE {bm}b 0 -1"],
        ),
        c("blmpop_ready_tag", &["RPUSH {q}a 1 2", "BLMPOP 1 2 {q}a {q}b RIGHT COUNT 5"]),
        c("list_wrongtype", &["SET k v", "LPUSH k a", "LRANGE k 0 -1"]),
        c("list_encoding", &["RPUSH l a b", "OBJECT ENCODING l"]),
    ]
}

fn sets() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("sadd_smembers", &["SADD s c a b a", "sorted SMEMBERS s", "SCARD s"]),
        c("sismember_smismember", &["SADD s a b", "SISMEMBER s a", "SISMEMBER s z", "SMISMEMBER s a z b"]),
        c("srem", &["SADD s a b c", "SREM s a z", "sorted SMEMBERS s"]),
        c("spop_single", &["SADD s only", "SPOP s", "SPOP s", "EXISTS s"]),
        c("srandmember_single", &["SADD s only", "SRANDMEMBER s", "SRANDMEMBER s -3"]),
        c("srandmember_all", &["SADD s a b c", "sorted SRANDMEMBER s 10"]),
        c("intset_members", &["SADD s 3 1 2", "SMEMBERS s", "OBJECT ENCODING s"]),
        c("smove_tag", &["SADD {s}a x y", "SMOVE {s}a {s}b x", "SMOVE {s}a {s}b z", "sorted SMEMBERS {s}b"]),
        c("smove_cross_server", &["SADD $X1 x", "SMOVE $X1 $X2 x", "SMEMBERS $X2"]),
        c("sinter_tag", &["SADD {s}a a b c", "SADD {s}b b c d", "sorted SINTER {s}a {s}b", "SINTER {s}a {s}none"]),
        c(
            "sinterstore_tag",
            &["SADD {s}a a b c", "SADD {s}b b c d", "SINTERSTORE {s}d {s}a {s}b", "sorted SMEMBERS {s}d"],
        ),
        c(
            "sintercard_tag",
            &["SADD {s}a a b c", "SADD {s}b b c d", "SINTERCARD 2 {s}a {s}b", "SINTERCARD 2 {s}a {s}b LIMIT 1"],
        ),
        c("sunion_tag", &["SADD {s}a a b", "SADD {s}b b c", "sorted SUNION {s}a {s}b"]),
        c("sunionstore_tag", &["SADD {s}a a b", "SADD {s}b b c", "SUNIONSTORE {s}d {s}a {s}b", "SCARD {s}d"]),
        c("sdiff_tag", &["SADD {s}a a b c", "SADD {s}b b", "sorted SDIFF {s}a {s}b"]),
        c("sdiffstore_tag", &["SADD {s}a a b c", "SADD {s}b b", "SDIFFSTORE {s}d {s}a {s}b", "sorted SMEMBERS {s}d"]),
        c("sscan", &["SADD s a b c d", "scan SSCAN s 0"]),
        c("set_wrongtype", &["SET k v", "SADD k a", "SCARD k"]),
    ]
}

fn sorted_sets() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("zadd_zrange", &["ZADD z 1 a 2 b 3 c", "ZRANGE z 0 -1", "ZRANGE z 0 -1 WITHSCORES"]),
        c(
            "zadd_options",
            &["ZADD z 1 a", "ZADD z NX 5 a 2 b", "ZADD z XX CH 7 a 9 c", "ZADD z GT 1 a", "ZRANGE z 0 -1 WITHSCORES"],
        ),
        c("zadd_incr", &["ZADD z INCR 2.5 a", "ZADD z INCR 1 a", "ZADD z NX INCR 1 a"]),
        c("zincrby_zscore", &["ZINCRBY z 1.5 a", "ZINCRBY z 2 a", "ZSCORE z a", "ZSCORE z none"]),
        c("zmscore", &["ZADD z 1 a 2 b", "ZMSCORE z a x b"]),
        c("zrank_zrevrank", &["ZADD z 1 a 2 b 3 c", "ZRANK z a", "ZREVRANK z a", "ZRANK z none"]),
        c("zcard_zcount", &["ZADD z 1 a 2 b 3 c", "ZCARD z", "ZCOUNT z 2 +inf", "ZCOUNT z (1 3"]),
        c(
            "zrangebyscore",
            &["ZADD z 1 a 2 b 3 c 4 d", "ZRANGEBYSCORE z 2 4 LIMIT 1 2", "ZREVRANGEBYSCORE z +inf -inf WITHSCORES"],
        ),
        c("zrange_byscore_rev", &["ZADD z 1 a 2 b 3 c", "ZRANGE z +inf -inf BYSCORE REV LIMIT 0 2"]),
        c("zrangebylex", &["ZADD z 0 a 0 b 0 c 0 d", "ZRANGEBYLEX z [b (d", "ZLEXCOUNT z - +", "ZRANGE z [c + BYLEX"]),
        c(
            "zrem_ranges",
            &[
                "ZADD z 1 a 2 b 3 c 4 d 5 e",
                "ZREM z a x",
                "ZREMRANGEBYRANK z 0 0",
                "ZREMRANGEBYSCORE z 4 4",
                "ZRANGE z 0 -1",
            ],
        ),
        c("zremrangebylex", &["ZADD z 0 a 0 b 0 c", "ZREMRANGEBYLEX z [a [b", "ZRANGE z 0 -1"]),
        c("zpopmin_zpopmax", &["ZADD z 1 a 2 b 3 c 4 d", "ZPOPMIN z", "ZPOPMAX z 2", "ZRANGE z 0 -1"]),
        c("zrangestore_tag", &["ZADD {z}a 1 x 2 y 3 w", "ZRANGESTORE {z}d {z}a 0 1", "ZRANGE {z}d 0 -1 WITHSCORES"]),
        c(
            "zunionstore_tag",
            &[
                "ZADD {z}a 1 x 2 y",
                "ZADD {z}b 10 y 20 w",
                "ZUNIONSTORE {z}d 2 {z}a {z}b WEIGHTS 1 2",
                "ZRANGE {z}d 0 -1 WITHSCORES",
            ],
        ),
        c(
            "zinterstore_tag",
            &[
                "ZADD {z}a 1 x 2 y",
                "ZADD {z}b 10 y 20 w",
                "ZINTERSTORE {z}d 2 {z}a {z}b AGGREGATE MAX",
                "ZRANGE {z}d 0 -1 WITHSCORES",
            ],
        ),
        c(
            "zunion_zinter_tag",
            &["ZADD {z}a 1 x 2 y", "ZADD {z}b 10 y", "ZUNION 2 {z}a {z}b WITHSCORES", "ZINTER 2 {z}a {z}b"],
        ),
        c(
            "zdiff_tag",
            &["ZADD {z}a 1 x 2 y", "ZADD {z}b 1 y", "ZDIFF 2 {z}a {z}b WITHSCORES", "ZDIFFSTORE {z}d 2 {z}a {z}b"],
        ),
        c("zintercard_tag", &["ZADD {z}a 1 x 2 y", "ZADD {z}b 1 y", "ZINTERCARD 2 {z}a {z}b"]),
        c("zrandmember_single", &["ZADD z 1 only", "ZRANDMEMBER z", "ZRANDMEMBER z -2 WITHSCORES"]),
        c("bzpopmin_ready", &["ZADD z 1 a 2 b", "BZPOPMIN z 1", "BZPOPMAX z 1"]),
        c("bzpopmin_woken", &["@1 send BZPOPMIN {bz}z 5", "ZADD {bz}z 3 c", "@1 recv"]),
        c("zmpop_tag", &["ZADD {z}b 1 x 2 y 3 w", "ZMPOP 2 {z}a {z}b MIN COUNT 2", "BZMPOP 1 1 {z}b MAX"]),
        c("zscan", &["ZADD z 1 a 2 b", "scan ZSCAN z 0"]),
        c("zset_wrongtype", &["SET k v", "ZADD k 1 a", "ZADD z notafloat a"]),
    ]
}

fn hyperloglog() -> Vec<(&'static str, Vec<String>)> {
    let many: String = (0..200).map(|i| format!(" e{i}")).collect();
    vec![
        c("pfadd_pfcount", &["PFADD h a b c d", "PFADD h a", "PFCOUNT h"]),
        ("pfadd_many", vec![format!("PFADD h{many}"), "PFCOUNT h".to_string()]),
        c("pfadd_empty", &["PFADD h", "PFCOUNT h", "PFADD h"]),
        c("pfcount_missing", &["PFCOUNT none"]),
        c("pfmerge_tag", &["PFADD {h}a a b c", "PFADD {h}b c d", "PFMERGE {h}d {h}a {h}b", "PFCOUNT {h}d"]),
        c("pfcount_multi_tag", &["PFADD {h}a a b c", "PFADD {h}b c d e", "PFCOUNT {h}a {h}b"]),
        c("hll_value", &["PFADD h x y", "GET h"]),
        c("hll_wrongtype", &["SET h notanhll", "PFADD h a", "PFCOUNT h"]),
    ]
}

fn geo() -> Vec<(&'static str, Vec<String>)> {
    const SICILY: &str = "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania";
    vec![
        c("geoadd_geopos", &[SICILY, "GEOPOS g Palermo Catania none"]),
        c("geodist", &[SICILY, "GEODIST g Palermo Catania", "GEODIST g Palermo Catania km", "GEODIST g Palermo none"]),
        c("geohash", &[SICILY, "GEOHASH g Palermo Catania"]),
        c("geosearch_radius", &[SICILY, "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST WITHCOORD"]),
        c("geosearch_box", &[SICILY, "GEOSEARCH g FROMMEMBER Palermo BYBOX 400 400 km DESC COUNT 1 WITHHASH"]),
        c("georadius", &[SICILY, "GEORADIUS g 15 37 200 km WITHDIST ASC", "GEORADIUS_RO g 15 37 100 km"]),
        c("georadiusbymember", &[SICILY, "GEORADIUSBYMEMBER g Palermo 300 km ASC"]),
        c(
            "geosearchstore_tag",
            &[
                "GEOADD {g}a 13.361389 38.115556 P 15.087269 37.502669 C",
                "GEOSEARCHSTORE {g}d {g}a FROMLONLAT 15 37 BYRADIUS 500 km STOREDIST",
                "ZRANGE {g}d 0 -1",
            ],
        ),
        c("geoadd_options", &[SICILY, "GEOADD g NX 0 0 Palermo", "GEOADD g XX CH 13 38 Palermo", "ZSCORE g Palermo"]),
        c("geo_as_zset", &[SICILY, "ZRANGE g 0 -1 WITHSCORES", "ZCARD g"]),
        c("geoadd_invalid", &["GEOADD g 200 100 bad"]),
    ]
}

fn streams() -> Vec<(&'static str, Vec<String>)> {
    const FILL: &str = "XADD s 1-1 a 1";
    vec![
        c("xadd_xlen", &["XADD s 1-1 a 1", "XADD s 1-2 b 2", "XLEN s", "XLEN none"]),
        c("xadd_id_too_small", &["XADD s 5-0 a 1", "XADD s 4-0 a 1", "XADD s 5-0 a 1"]),
        c("xadd_seq_auto", &["XADD s 7-* a 1", "XADD s 7-* a 2"]),
        c("xadd_nomkstream", &["XADD s NOMKSTREAM 1-1 a 1", "EXISTS s"]),
        c(
            "xrange_xrevrange",
            &[
                FILL,
                "XADD s 2-0 b 2",
                "XADD s 3-0 c 3",
                "XRANGE s - +",
                "XRANGE s 2 + COUNT 1",
                "XREVRANGE s + - COUNT 2",
            ],
        ),
        c("xdel", &[FILL, "XADD s 2-0 b 2", "XDEL s 1-1 9-9", "XRANGE s - +"]),
        c("xtrim", &[FILL, "XADD s 2-0 b 2", "XADD s 3-0 c 3", "XTRIM s MAXLEN 1", "XRANGE s - +"]),
        c("xadd_maxlen", &[FILL, "XADD s MAXLEN 1 2-0 b 2", "XLEN s"]),
        c("xread", &[FILL, "XADD s 2-0 b 2", "XREAD COUNT 1 STREAMS s 0", "XREAD STREAMS s 2-0"]),
        c("xread_tag_two_streams", &["XADD {x}a 1-1 a 1", "XADD {x}b 2-2 b 2", "XREAD STREAMS {x}a {x}b 0 0"]),
        c(
            "xgroup_xreadgroup_xack",
            &[FILL, "XGROUP CREATE s g 0", "XREADGROUP GROUP g c1 COUNT 1 STREAMS s >", "XACK s g 1-1", "XACK s g 1-1"],
        ),
        c(
            "xpending_summary",
            &[FILL, "XADD s 2-0 b 2", "XGROUP CREATE s g 0", "XREADGROUP GROUP g c1 STREAMS s >", "XPENDING s g"],
        ),
        c(
            "xautoclaim",
            &[
                FILL,
                "XGROUP CREATE s g 0",
                "XREADGROUP GROUP g c1 STREAMS s >",
                "XAUTOCLAIM s g c2 0 0-0 COUNT 1 JUSTID",
            ],
        ),
        c("xgroup_errors", &["XGROUP CREATE none g 0", "XGROUP CREATE s g $ MKSTREAM", "XGROUP CREATE s g $"]),
        c("xinfo_stream", &[FILL, "XADD s 2-0 b 2", "XINFO STREAM s"]),
        c("xinfo_groups", &[FILL, "XGROUP CREATE s g 0", "XGROUP CREATECONSUMER s g c1", "XINFO GROUPS s"]),
        c("xsetid", &[FILL, "XSETID s 10-0", "XADD s 9-0 a 1", "XINFO STREAM s"]),
        c("xread_block_woken", &["@1 send XREAD BLOCK 5000 STREAMS {xb}s $", "XADD {xb}s 10-1 f v", "@1 recv"]),
        c("stream_wrongtype", &["SET s v", "XADD s 1-1 a 1", "XLEN s"]),
    ]
}

fn scripting() -> Vec<(&'static str, Vec<String>)> {
    let library_load = format!("FUNCTION LOAD {LIBRARY}");
    let with_library = |rest: &[&str]| -> Vec<String> {
        std::iter::once(library_load.clone()).chain(rest.iter().map(|l| l.to_string())).collect()
    };
    vec![
        c("eval_constant", &["EVAL \"return 1\" 0", "EVAL \"return 'two'\" 0"]),
        c("eval_table", &["EVAL \"return {1, 2, 'three', {4}}\" 0"]),
        c("eval_keys_argv", &["EVAL \"return redis.call('SET', KEYS[1], ARGV[1])\" 1 ek hello", "GET ek"]),
        c("eval_get", &["SET ek v", "EVAL \"return redis.call('GET', KEYS[1])\" 1 ek"]),
        c("eval_tagged_keys", &["EVAL \"redis.call('SET', KEYS[1], ARGV[1]); return redis.call('APPEND', KEYS[2], ARGV[1])\" 2 {e}a {e}b x", "MGET {e}a {e}b"]),
        c("eval_cross_server_keys", &["EVAL \"return redis.call('MSET', KEYS[1], 'a', KEYS[2], 'b')\" 2 $X1 $X2", "MGET $X1 $X2"]),
        c("eval_error_reply", &["EVAL \"return redis.error_reply('MY bad thing')\" 0"]),
        c("eval_call_error", &["SET ek abc", "EVAL \"return redis.call('INCR', KEYS[1])\" 1 ek"]),
        c("eval_pcall", &["SET ek abc", "EVAL \"local r = redis.pcall('INCR', KEYS[1]); return type(r)\" 1 ek"]),
        c("eval_ro", &["SET ek v", "EVAL_RO \"return redis.call('GET', KEYS[1])\" 1 ek", "EVAL_RO \"return redis.call('DEL', KEYS[1])\" 1 ek"]),
        c("eval_numkeys_error", &["EVAL \"return 1\" 2 a"]),
        ("script_load_evalsha", vec!["SCRIPT LOAD \"return ARGV[1]\"".into(), format!("EVALSHA {SHA_ARGV} 0 hi")]),
        (
            "evalsha_with_key",
            vec![
                "SCRIPT LOAD \"return redis.call('GET', KEYS[1])\"".into(),
                "SET ek v".into(),
                format!("EVALSHA {SHA_GET} 1 ek"),
                format!("EVALSHA_RO {SHA_GET} 1 ek"),
            ],
        ),
        (
            "evalsha_many_keys",
            vec![
                "SCRIPT LOAD \"return redis.call('INCRBY', KEYS[1], ARGV[1])\"".into(),
                format!("EVALSHA {SHA_INCRBY} 1 n1 5"),
                format!("EVALSHA {SHA_INCRBY} 1 n2 6"),
                format!("EVALSHA {SHA_INCRBY} 1 n3 7"),
                "MGET n1 n2 n3".into(),
            ],
        ),
        c("evalsha_missing", &["EVALSHA ffffffffffffffffffffffffffffffffffffffff 0"]),
        (
            "script_exists",
            vec![
                "SCRIPT LOAD \"return ARGV[1]\"".into(),
                format!("SCRIPT EXISTS {SHA_ARGV} ffffffffffffffffffffffffffffffffffffffff"),
            ],
        ),
        ("script_flush", vec!["SCRIPT LOAD \"return ARGV[1]\"".into(), "SCRIPT FLUSH".into(), format!("SCRIPT EXISTS {SHA_ARGV}")]),
        ("function_load_fcall", with_library(&["FCALL echo 0 hello"])),
        ("fcall_with_key", with_library(&["FCALL incr 1 fk 5", "FCALL incr 1 fk 5", "GET fk"])),
        ("fcall_ro", with_library(&["SET fk v", "FCALL_RO get 1 fk", "FCALL_RO incr 1 fk 1"])),
        ("function_load_twice", with_library(&[&library_load, "FUNCTION DELETE difflib", "FCALL echo 0 x"])),
        c("fcall_missing", &["FCALL nosuchfunction 0"]),
    ]
}

fn transactions() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("multi_exec", &["MULTI", "SET {t}a 1", "INCR {t}a", "GET {t}a", "EXEC"]),
        c("multi_exec_one_key", &["MULTI", "SET k v", "GET k", "EXEC"]),
        c("multi_exec_types", &["MULTI", "HSET {t}h f v", "RPUSH {t}l a", "HGETALL {t}h", "LRANGE {t}l 0 -1", "EXEC"]),
        c("multi_empty", &["MULTI", "EXEC"]),
        c("multi_discard", &["MULTI", "SET {t}a 1", "DISCARD", "GET {t}a"]),
        c("exec_without_multi", &["EXEC"]),
        c("discard_without_multi", &["DISCARD"]),
        c("multi_nested", &["MULTI", "MULTI", "DISCARD"]),
        c("execabort_unknown_command", &["MULTI", "SET {t}a 1", "NOSUCHCMD x", "EXEC", "GET {t}a"]),
        c("execabort_arity", &["MULTI", "SET {t}a", "EXEC"]),
        c("exec_runtime_error", &["MULTI", "SET {t}a abc", "INCR {t}a", "GET {t}a", "EXEC"]),
        c("watch_untouched", &["WATCH {t}a", "MULTI", "SET {t}a 1", "EXEC"]),
        c("watch_touched", &["WATCH {t}a", "@1 SET {t}a x", "MULTI", "SET {t}a 1", "EXEC", "GET {t}a"]),
        c("unwatch", &["WATCH {t}a", "UNWATCH", "@1 SET {t}a x", "MULTI", "SET {t}a 1", "EXEC"]),
        c("watch_inside_multi", &["MULTI", "WATCH {t}a", "DISCARD"]),
        c("multi_cross_server", &["MULTI", "SET $X1 1", "SET $X2 2", "EXEC", "MGET $X1 $X2"]),
    ]
}

fn pubsub() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("subscribe_publish", &["@1 SUBSCRIBE ch:a", "PUBLISH ch:a hello", "@1 recv"]),
        c("publish_nobody", &["PUBLISH ch:nobody x"]),
        c("subscribe_two_channels", &["@1 SUBSCRIBE ch:b1 ch:b2", "@1 recv", "PUBLISH ch:b2 x", "@1 recv"]),
        c("psubscribe_publish", &["@1 PSUBSCRIBE news.*", "PUBLISH news.tech hi", "@1 recv"]),
        c("unsubscribe", &["@1 SUBSCRIBE ch:c", "@1 UNSUBSCRIBE ch:c", "PUBLISH ch:c x"]),
        c("ping_while_subscribed", &["@1 SUBSCRIBE ch:d", "@1 PING", "@1 PING hi"]),
        c("command_while_subscribed", &["@1 SUBSCRIBE ch:e", "@1 GET k"]),
        c("two_subscribers", &["@1 SUBSCRIBE ch:f", "@2 SUBSCRIBE ch:f", "PUBLISH ch:f m", "@1 recv", "@2 recv"]),
        c("messages_in_order", &["@1 SUBSCRIBE ch:g", "PUBLISH ch:g one", "PUBLISH ch:g two", "@1 recv", "@1 recv"]),
        c("pubsub_channels", &["@1 SUBSCRIBE ch:h", "PUBSUB CHANNELS ch:h*", "PUBSUB NUMSUB ch:h ch:none"]),
        c("pubsub_numpat", &["@1 PSUBSCRIBE numpat.*", "PUBSUB NUMPAT"]),
        c("ssubscribe_spublish", &["@1 SSUBSCRIBE sch:a", "SPUBLISH sch:a hi", "@1 recv"]),
    ]
}

fn server() -> Vec<(&'static str, Vec<String>)> {
    vec![
        c("ping", &["PING", "PING hello"]),
        c("echo", &["ECHO \"hi there\"", "ECHO \"\""]),
        c("dbsize", &["DBSIZE", "MSET a 1 b 2 c 3 d 4 e 5", "SET f 6", "DBSIZE"]),
        c("time_shape", &["shape TIME"]),
        c("select_0", &["SELECT 0", "SET k v", "GET k"]),
        c("select_1", &["SELECT 1", "GET k"]),
        c("client_setname_getname", &["CLIENT GETNAME", "CLIENT SETNAME diff-client", "CLIENT GETNAME"]),
        c("client_setname_invalid", &["CLIENT SETNAME \"has space\""]),
        c("client_id_shape", &["shape CLIENT ID"]),
        c("flushall", &["MSET a 1 b 2 c 3", "FLUSHALL", "DBSIZE", "GET a"]),
        c("flushdb", &["MSET a 1 b 2 c 3", "FLUSHDB", "DBSIZE"]),
        c("config_get", &["CONFIG GET maxmemory-policy"]),
        c("unknown_command", &["FOOBAR a b"]),
        c("wait", &["WAIT 0 0"]),
        c("info_shape", &["shape INFO server"]),
        c("hello_2_shape", &["shape HELLO 2"]),
        c("reset", &["CLIENT SETNAME named", "RESET", "CLIENT GETNAME"]),
        c("quit", &["QUIT"]),
        c("lastsave_shape", &["shape LASTSAVE"]),
    ]
}
