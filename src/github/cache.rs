//! What the GitHub client remembers between requests and between processes: the last ETag and
//! body of each GET (so that an unchanged answer comes back as a 304 and costs no rate limit),
//! answers that cannot change (a file at a commit), and the token's own login.
//!
//! A resume on the same machine finds the cache in a file beside the state
//! (`<state file>.github-cache`). Whatever is on disk in the workspace could have been written
//! by an agent, and a forged body behind a real 304 would be a forged record of GitHub, so the
//! file is sealed with an HMAC-SHA256 keyed by the token: agents never see the token (the
//! runner's variables are removed from their environment), so they cannot seal a file the run
//! will accept, and a new token (each workflow job gets one) starts with an empty cache. A file
//! that does not verify, is for another API, or cannot be read is ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The most GET answers kept; the least recently stored go first.
const MAX_ENTRIES: usize = 256;
/// The largest cache file read.
const MAX_FILE: u64 = 64 << 20;
const VERSION: u32 = 1;

/// The cache file of the run whose state is at `state`.
pub(crate) fn cache_file(state: &Path) -> std::path::PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".github-cache");
    name.into()
}

/// Hex sha256 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One remembered GET answer.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub etag: String,
    pub body: Value,
    /// The answer's `Link` header (the next page of a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The answer cannot change: it is used without asking.
    #[serde(default)]
    pub fixed: bool,
    /// When it was stored, in store order (the oldest go first).
    #[serde(default)]
    seq: u64,
}

impl Entry {
    /// The headers a caller needs from a remembered answer.
    pub(crate) fn headers(&self) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(link) = self.link.as_deref().and_then(|l| http::HeaderValue::from_str(l).ok()) {
            h.insert("link", link);
        }
        h
    }
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Cache {
    /// The API these answers came from.
    api: String,
    entries: BTreeMap<String, Entry>,
    /// Whether `GET /user` was answered (see `user`).
    #[serde(default)]
    user_known: bool,
    /// The token's user; `None` when it has none (an app's or the workflow's token).
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    seq: u64,
    #[serde(skip)]
    dirty: bool,
}

/// The file: the cache as JSON text, and its seal.
#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    mac: String,
    data: String,
}

fn mac(token: &[u8], data: &[u8]) -> ring::hmac::Tag {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token), data)
}

impl Cache {
    pub(crate) fn new(api: &str) -> Cache {
        Cache { api: api.to_owned(), ..Cache::default() }
    }

    pub(crate) fn get(&self, url: &str) -> Option<Entry> {
        self.entries.get(url).cloned()
    }

    pub(crate) fn put(&mut self, url: &str, etag: &str, body: &Value, link: Option<&str>) {
        self.insert(
            url,
            Entry { etag: etag.to_owned(), body: body.clone(), link: link.map(str::to_owned), fixed: false, seq: 0 },
        );
    }

    /// An answer that cannot change.
    pub(crate) fn put_fixed(&mut self, url: &str, body: &Value, link: Option<&str>) {
        self.insert(
            url,
            Entry { etag: String::new(), body: body.clone(), link: link.map(str::to_owned), fixed: true, seq: 0 },
        );
    }

    fn insert(&mut self, url: &str, mut entry: Entry) {
        if self.entries.get(url).is_some_and(|e| {
            e.etag == entry.etag && e.body == entry.body && e.link == entry.link && e.fixed == entry.fixed
        }) {
            return;
        }
        self.seq += 1;
        entry.seq = self.seq;
        self.entries.insert(url.to_owned(), entry);
        while self.entries.len() > MAX_ENTRIES {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.seq).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
        self.dirty = true;
    }

    /// What `GET /user` answered, if it was asked: `Some(None)` for a token without a user.
    pub(crate) fn user(&self) -> Option<Option<String>> {
        self.user_known.then(|| self.user.clone())
    }

    pub(crate) fn set_user(&mut self, user: Option<String>) {
        self.user_known = true;
        self.user = user;
        self.dirty = true;
    }

    /// Whether anything changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Take what an earlier process remembered, where this one knows nothing newer.
    pub(crate) fn merge(&mut self, older: Cache) {
        if !self.user_known {
            self.user_known = older.user_known;
            self.user = older.user;
        }
        let base = self.seq;
        for (url, mut e) in older.entries {
            e.seq = e.seq.min(base);
            self.entries.entry(url).or_insert(e);
        }
        self.seq = self.seq.max(older.seq);
    }

    /// The file's bytes, sealed with `token`.
    pub(crate) fn seal(&self, token: &[u8]) -> Vec<u8> {
        let data = serde_json::to_string(self).unwrap_or_default();
        let mac = mac(token, data.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
        serde_json::to_vec(&Sealed { version: VERSION, mac, data }).unwrap_or_default()
    }

    /// The cache in `bytes`, if `token` sealed it for `api`.
    pub(crate) fn open(bytes: &[u8], api: &str, token: &[u8]) -> Option<Cache> {
        let sealed: Sealed = serde_json::from_slice(bytes).ok()?;
        if sealed.version != VERSION || sealed.mac.len() != 64 {
            return None;
        }
        let tag: Vec<u8> =
            (0..32).map(|i| u8::from_str_radix(sealed.mac.get(2 * i..2 * i + 2)?, 16).ok()).collect::<Option<_>>()?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token);
        ring::hmac::verify(&key, sealed.data.as_bytes(), &tag).ok()?;
        let cache: Cache = serde_json::from_str(&sealed.data).ok()?;
        (cache.api == api).then_some(cache)
    }

    /// The cache in `file`, if there is a good one.
    pub(crate) fn load(file: &Path, api: &str, token: &[u8]) -> Option<Cache> {
        let meta = std::fs::symlink_metadata(file).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE {
            return None;
        }
        Cache::open(&std::fs::read(file).ok()?, api, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Cache {
        let mut c = Cache::new("https://api.github.com");
        c.put("https://api.github.com/repos/o/r/pulls/7", "\"abc\"", &json!({"head": {"sha": "1"}}), None);
        c.set_user(Some("me".into()));
        c
    }

    #[test]
    fn a_sealed_cache_opens_only_with_the_same_token_and_api() {
        let bytes = sample().seal(b"token-1");
        let back = Cache::open(&bytes, "https://api.github.com", b"token-1").expect("opens");
        assert_eq!(back.get("https://api.github.com/repos/o/r/pulls/7").unwrap().etag, "\"abc\"");
        assert_eq!(back.user(), Some(Some("me".into())));
        let mut none = Cache::new("a");
        assert_eq!(none.user(), None, "not asked");
        none.set_user(None);
        assert_eq!(Cache::open(&none.seal(b"t"), "a", b"t").unwrap().user(), Some(None), "asked: no user");
        assert!(Cache::open(&bytes, "https://api.github.com", b"token-2").is_none(), "another token");
        assert!(Cache::open(&bytes, "https://ghe.example/api/v3", b"token-1").is_none(), "another API");
    }

    #[test]
    fn a_changed_cache_file_is_refused_whatever_was_changed() {
        let bytes = sample().seal(b"token-1");
        let text = String::from_utf8(bytes.clone()).unwrap();
        // A forged body, a forged identity, a seal of the forged data with another key.
        for forged in [
            text.replace("\\\"1\\\"", "\\\"2\\\""),
            text.replace("\\\"me\\\"", "\\\"alice\\\""),
            String::from_utf8(sample_with_user("alice").seal(b"agent-guess")).unwrap(),
            text.replace("\"version\":1", "\"version\":2"),
            text[..text.len() / 2].to_owned(),
            String::new(),
            "{\"version\":1,\"mac\":\"zz\",\"data\":\"{}\"}".into(),
            format!("{{\"version\":1,\"mac\":\"{}\",\"data\":\"{{}}\"}}", "é".repeat(32)),
        ] {
            assert_ne!(forged, text);
            assert!(Cache::open(forged.as_bytes(), "https://api.github.com", b"token-1").is_none(), "{forged}");
        }
    }

    fn sample_with_user(user: &str) -> Cache {
        let mut c = sample();
        c.set_user(Some(user.into()));
        c
    }

    #[test]
    fn the_oldest_answers_go_first_and_an_unchanged_answer_changes_nothing() {
        let mut c = Cache::new("a");
        for i in 0..MAX_ENTRIES + 10 {
            c.put(&format!("u{i}"), "e", &json!(i), None);
        }
        assert_eq!(c.entries.len(), MAX_ENTRIES);
        assert!(c.get("u0").is_none() && c.get(&format!("u{}", MAX_ENTRIES + 9)).is_some());
        assert!(c.take_dirty());
        c.put("u300", "e", &json!(300), None);
        c.put(&format!("u{}", MAX_ENTRIES + 9), "e", &json!(MAX_ENTRIES + 9), None);
        assert!(c.take_dirty(), "a new answer");
        c.put("u300", "e", &json!(300), None);
        assert!(!c.take_dirty(), "the same answer again");
        // The same body and ETag with a next page now: the `Link` is what changed.
        c.put("u300", "e", &json!(300), Some("<https://h/x?page=2>; rel=\"next\""));
        assert!(c.take_dirty(), "a new link");
        assert!(c.get("u300").unwrap().link.is_some());
    }

    #[test]
    fn the_cache_file_sits_beside_the_state() {
        assert_eq!(
            cache_file(Path::new(".claude/orchestrator_state.json")),
            Path::new(".claude/orchestrator_state.json.github-cache")
        );
    }
}
