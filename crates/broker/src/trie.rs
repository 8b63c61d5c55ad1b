//! Subscription trie: topic filters split into levels, `+` and `#` as ordinary children that
//! matching visits alongside the literal level. Shared subscriptions (`$share/<group>/<filter>`)
//! hang off the node of their inner filter, one member list per group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrocore_mqtt::SubscriptionOptions;

/// The subscriber side of a subscription; `K` identifies a session.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber<K> {
    pub key: K,
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
}

#[derive(Debug)]
struct SharedGroup<K> {
    name: Box<str>,
    members: Vec<Subscriber<K>>,
    /// Round-robin position; advanced on every match.
    cursor: AtomicUsize,
}

#[derive(Debug)]
struct Node<K> {
    children: HashMap<Box<str>, Node<K>>,
    subscribers: Vec<Subscriber<K>>,
    shared: Vec<SharedGroup<K>>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            subscribers: Vec::new(),
            shared: Vec::new(),
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.shared.is_empty()
    }
}

/// A shared group that matched: deliver to one of `members`, starting at `start`.
pub(crate) struct SharedMatch<'a, K> {
    pub members: &'a [Subscriber<K>],
    pub start: usize,
}

#[derive(Debug)]
pub(crate) struct Trie<K> {
    root: Node<K>,
}

impl<K: PartialEq + Clone> Default for Trie<K> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
        }
    }
}

impl<K: PartialEq + Clone> Trie<K> {
    /// Adds or replaces `key`'s subscription to `filter` (in group `share` when shared).
    /// Returns true when it replaced an existing one.
    pub fn insert(&mut self, share: Option<&str>, filter: &str, subscriber: Subscriber<K>) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let list = match share {
            None => &mut node.subscribers,
            Some(group) => {
                let index = match node.shared.iter().position(|g| &*g.name == group) {
                    Some(i) => i,
                    None => {
                        node.shared.push(SharedGroup {
                            name: group.into(),
                            members: Vec::new(),
                            cursor: AtomicUsize::new(0),
                        });
                        node.shared.len() - 1
                    }
                };
                &mut node.shared[index].members
            }
        };
        if let Some(existing) = list.iter_mut().find(|s| s.key == subscriber.key) {
            *existing = subscriber;
            true
        } else {
            list.push(subscriber);
            false
        }
    }

    /// Removes `key`'s subscription; returns whether there was one.
    pub fn remove(&mut self, share: Option<&str>, filter: &str, key: &K) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        Self::remove_at(&mut self.root, &levels, share, key)
    }

    fn remove_at(node: &mut Node<K>, levels: &[&str], share: Option<&str>, key: &K) -> bool {
        let Some((first, rest)) = levels.split_first() else {
            return match share {
                None => remove_key(&mut node.subscribers, key),
                Some(group) => {
                    let Some(i) = node.shared.iter().position(|g| &*g.name == group) else {
                        return false;
                    };
                    let removed = remove_key(&mut node.shared[i].members, key);
                    if node.shared[i].members.is_empty() {
                        node.shared.swap_remove(i);
                    }
                    removed
                }
            };
        };
        let Some(child) = node.children.get_mut(*first) else {
            return false;
        };
        let removed = Self::remove_at(child, rest, share, key);
        if child.is_empty() {
            node.children.remove(*first);
        }
        removed
    }

    /// Calls `direct` for every non-shared subscription matching `topic` and `shared` for
    /// every matching shared group. A subscriber may be reported several times (overlapping
    /// filters); the caller merges.
    pub fn matches<'a>(
        &'a self,
        topic: &str,
        mut direct: impl FnMut(&'a Subscriber<K>),
        mut shared: impl FnMut(SharedMatch<'a, K>),
    ) {
        let mut visit = |node: &'a Node<K>| {
            for s in &node.subscribers {
                direct(s);
            }
            for g in &node.shared {
                if !g.members.is_empty() {
                    let start = g.cursor.fetch_add(1, Ordering::Relaxed) % g.members.len();
                    shared(SharedMatch {
                        members: &g.members,
                        start,
                    });
                }
            }
        };
        // Wildcards at the first level never match topics starting with '$'.
        let dollar = topic.starts_with('$');
        let levels: Vec<&str> = topic.split('/').collect();
        Self::match_at(&self.root, &levels, !dollar, &mut visit);
    }

    fn match_at<'a>(
        node: &'a Node<K>,
        levels: &[&str],
        wildcards_allowed: bool,
        visit: &mut impl FnMut(&'a Node<K>),
    ) {
        if wildcards_allowed {
            // `a/#` matches `a` itself as well as everything below it.
            if let Some(hash) = node.children.get("#") {
                visit(hash);
            }
        }
        let Some((first, rest)) = levels.split_first() else {
            visit(node);
            return;
        };
        if let Some(child) = node.children.get(*first) {
            Self::match_at(child, rest, true, visit);
        }
        if wildcards_allowed && let Some(plus) = node.children.get("+") {
            Self::match_at(plus, rest, true, visit);
        }
    }
}

fn remove_key<K: PartialEq>(list: &mut Vec<Subscriber<K>>, key: &K) -> bool {
    match list.iter().position(|s| &s.key == key) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sub(key: u32) -> Subscriber<u32> {
        Subscriber {
            key,
            options: SubscriptionOptions::default(),
            subscription_id: None,
        }
    }

    fn matching(trie: &Trie<u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut shared = Vec::new();
        trie.matches(
            topic,
            |s| out.push(s.key),
            |g| shared.push(g.members[g.start].key),
        );
        out.extend(shared);
        out.sort_unstable();
        out
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut t = Trie::default();
        t.insert(None, "a/+/c", sub(1));
        t.insert(None, "a/#", sub(2));
        t.insert(None, "#", sub(3));
        t.insert(None, "+/b/c", sub(4));
        t.insert(None, "$SYS/#", sub(5));
        t.insert(None, "a/b/c", sub(6));
        assert_eq!(matching(&t, "a/b/c"), vec![1, 2, 3, 4, 6]);
        assert_eq!(matching(&t, "a"), vec![2, 3]);
        assert_eq!(matching(&t, "$SYS/x"), vec![5]);
        assert_eq!(matching(&t, "$aws/things/x"), Vec::<u32>::new());
    }

    #[test]
    fn remove_prunes_and_replace_counts_once() {
        let mut t = Trie::default();
        assert!(!t.insert(None, "a/b", sub(1)));
        assert!(t.insert(None, "a/b", sub(1)));
        assert!(t.remove(None, "a/b", &1));
        assert!(!t.remove(None, "a/b", &1));
        assert!(t.root.is_empty());
    }

    #[test]
    fn shared_groups_round_robin() {
        let mut t = Trie::default();
        t.insert(Some("g"), "s/+", sub(1));
        t.insert(Some("g"), "s/+", sub(2));
        t.insert(Some("h"), "s/#", sub(3));
        let mut picked = Vec::new();
        for _ in 0..4 {
            let got = matching(&t, "s/x");
            assert_eq!(got.len(), 2, "one per group");
            assert!(got.contains(&3));
            picked.extend(got.into_iter().filter(|k| *k != 3));
        }
        assert!(picked.contains(&1) && picked.contains(&2));
        assert!(t.remove(Some("g"), "s/+", &1));
        assert!(t.remove(Some("g"), "s/+", &2));
        assert_eq!(matching(&t, "s/x"), vec![3]);
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("".to_string()),
            Just("$x".to_string())
        ]
    }

    fn filter_level() -> impl Strategy<Value = String> {
        prop_oneof![level(), Just("+".to_string())]
    }

    proptest! {
        /// The trie agrees with the codec's reference matcher.
        #[test]
        fn agrees_with_reference_matcher(
            filters in prop::collection::vec(
                (prop::collection::vec(filter_level(), 1..4), any::<bool>()), 1..12),
            topic in prop::collection::vec(level(), 1..5),
        ) {
            let topic = topic.join("/");
            let mut t = Trie::default();
            let mut expected = Vec::new();
            for (i, (levels, hash)) in filters.iter().enumerate() {
                let mut f = levels.join("/");
                if *hash { f.push_str("/#"); }
                t.insert(None, &f, sub(i as u32));
                if ferrocore_mqtt::topic::matches(&f, &topic) {
                    expected.push(i as u32);
                }
            }
            prop_assert_eq!(matching(&t, &topic), expected);
        }
    }
}
