//! Authorizer answers across connections, by [`CacheKey`], each until its expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::custom_auth::{AuthorizerAnswer, CacheKey};

pub(super) struct AnswerCache {
    max_entries: usize,
    entries: HashMap<CacheKey, Entry>,
}

struct Entry {
    authorizer: String,
    answer: Arc<AuthorizerAnswer>,
    expires: Instant,
}

impl AnswerCache {
    pub(super) fn new(max_entries: usize) -> AnswerCache {
        AnswerCache {
            max_entries,
            entries: HashMap::new(),
        }
    }

    /// The answer under `key` if it has not expired at `now`.
    pub(super) fn get(&mut self, key: &CacheKey, now: Instant) -> Option<Arc<AuthorizerAnswer>> {
        let entry = self.entries.get(key)?;
        if now < entry.expires {
            return Some(Arc::clone(&entry.answer));
        }
        self.entries.remove(key);
        None
    }

    /// Keeps `answer` of `authorizer` under `key` until `expires`. When full, expired entries
    /// go first, else the one expiring soonest (a scan, paid only by inserts into a full
    /// cache).
    pub(super) fn insert(
        &mut self,
        key: CacheKey,
        authorizer: &str,
        answer: Arc<AuthorizerAnswer>,
        expires: Instant,
        now: Instant,
    ) {
        if self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            self.entries.retain(|_, entry| now < entry.expires);
            if self.entries.len() >= self.max_entries
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires)
                    .map(|(key, _)| *key)
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(
            key,
            Entry {
                authorizer: authorizer.to_owned(),
                answer,
                expires,
            },
        );
    }

    /// Drops every answer of `authorizer`.
    pub(super) fn forget_authorizer(&mut self, authorizer: &str) {
        self.entries
            .retain(|_, entry| entry.authorizer != authorizer);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}
