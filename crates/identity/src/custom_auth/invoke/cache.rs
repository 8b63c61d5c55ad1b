//! Authorizer answers across connections, by [`CacheKey`], each until its expiry and never
//! beyond its `disconnectAfterInSeconds` counted from when it was given: a hit gets the
//! answer with `disconnect_after` shortened by the entry's age, so a connection admitted
//! from the cache ends when the first one would have (e.g. when the token expires).

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
    /// When the answer was given.
    stored: Instant,
    expires: Instant,
}

impl AnswerCache {
    pub(super) fn new(max_entries: usize) -> AnswerCache {
        AnswerCache {
            max_entries,
            entries: HashMap::new(),
        }
    }

    /// The answer under `key` if it has not expired at `now`, its `disconnect_after` (if any)
    /// less the time since it was given; none once that has run out.
    pub(super) fn get(&mut self, key: &CacheKey, now: Instant) -> Option<Arc<AuthorizerAnswer>> {
        let entry = self.entries.get(key)?;
        let age = now.saturating_duration_since(entry.stored);
        let disconnect_after = entry.answer.disconnect_after;
        let live = now < entry.expires && disconnect_after.is_none_or(|after| age < after);
        if !live {
            self.entries.remove(key);
            return None;
        }
        match disconnect_after {
            Some(after) if !age.is_zero() => {
                let mut answer = AuthorizerAnswer::clone(&entry.answer);
                answer.disconnect_after = Some(after - age);
                Some(Arc::new(answer))
            }
            _ => Some(Arc::clone(&entry.answer)),
        }
    }

    /// Keeps `answer` of `authorizer`, given at `now`, under `key` until `expires`. When full,
    /// expired entries go first, else the eighth of the entries expiring soonest: one scan
    /// makes room for many inserts, so a full cache under a stream of new devices costs a
    /// constant amortized amount per insert, not a scan each.
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
            if self.entries.len() >= self.max_entries {
                let mut by_expiry: Vec<(Instant, CacheKey)> = self
                    .entries
                    .iter()
                    .map(|(key, entry)| (entry.expires, *key))
                    .collect();
                let evicted = (self.max_entries / 8).max(1);
                by_expiry.select_nth_unstable(evicted - 1);
                for (_, key) in &by_expiry[..evicted] {
                    self.entries.remove(key);
                }
            }
        }
        self.entries.insert(
            key,
            Entry {
                authorizer: authorizer.to_owned(),
                answer,
                stored: now,
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
