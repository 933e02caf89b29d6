//! Key-based pagination for the List actions. A `nextToken` is opaque to
//! clients: hex of the action, the filters of the first request and the last
//! key returned. Pages are stable under concurrent inserts (they resume after
//! a key, not at an offset), and a token replayed with other filters is
//! refused instead of silently returning the wrong page.

use super::{Result, invalid};

/// Where a page starts and how long it is.
#[derive(Debug, Clone)]
pub(super) struct Page {
    kind: &'static str,
    filters: String,
    /// Items with keys greater than this one.
    pub after: Option<String>,
    /// Page size.
    pub limit: usize,
}

impl Page {
    /// Parses `nextToken`/`maxResults` for action `kind` with `filters`.
    pub fn start(
        kind: &'static str,
        filters: &impl serde::Serialize,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<Page> {
        let limit = crate::validate::max_results(max_results)?;
        let filters = serde_json::to_string(filters).unwrap_or_default();
        let after = match next_token.filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => {
                let bad = || {
                    invalid(
                        "nextToken is not valid: pass the nextToken of the previous page, unchanged, with the same filters.",
                    )
                };
                let raw = hex_decode(token).ok_or_else(bad)?;
                let mut parts = raw.splitn(3, '\n');
                let (k, f, last) = (parts.next(), parts.next(), parts.next());
                match (k, f, last) {
                    (Some(k), Some(f), Some(last)) if k == kind && f == filters => {
                        Some(last.to_owned())
                    }
                    _ => return Err(bad()),
                }
            }
        };
        Ok(Page {
            kind,
            filters,
            after,
            limit,
        })
    }

    /// Takes one page from `items` (sorted by key, all after `self.after`).
    pub fn collect<T>(&self, items: impl Iterator<Item = (String, T)>) -> (Vec<T>, Option<String>) {
        let mut out = Vec::new();
        let mut last = None;
        let mut items = items.peekable();
        while out.len() < self.limit {
            match items.next() {
                Some((k, v)) => {
                    last = Some(k);
                    out.push(v);
                }
                None => break,
            }
        }
        let next = match (items.peek(), last) {
            (Some(_), Some(last)) => Some(hex_encode(&format!(
                "{}\n{}\n{last}",
                self.kind, self.filters
            ))),
            _ => None,
        };
        (out, next)
    }

    /// Whether `key` belongs on or after this page's start.
    pub fn includes(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|after| key > after)
    }
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_resume_after_the_last_key() {
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let first = Page::start("T", &"f", None, Some(2)).unwrap();
        let (items, token) = first.collect(
            keys.iter()
                .filter(|k| first.includes(k))
                .map(|k| (k.clone(), k.clone())),
        );
        assert_eq!(items, ["k0", "k1"]);
        let second = Page::start("T", &"f", token.as_deref(), Some(2)).unwrap();
        let (items, token) = second.collect(
            keys.iter()
                .filter(|k| second.includes(k))
                .map(|k| (k.clone(), k.clone())),
        );
        assert_eq!(items, ["k2", "k3"]);
        let third = Page::start("T", &"f", token.as_deref(), Some(2)).unwrap();
        let (items, token) = third.collect(
            keys.iter()
                .filter(|k| third.includes(k))
                .map(|k| (k.clone(), k.clone())),
        );
        assert_eq!(items, ["k4"]);
        assert!(token.is_none());
    }

    #[test]
    fn tokens_are_bound_to_their_filters() {
        let p = Page::start("T", &"a", None, Some(1)).unwrap();
        let (_, token) = p.collect(vec![("1".to_owned(), 1), ("2".to_owned(), 2)].into_iter());
        assert!(Page::start("T", &"b", token.as_deref(), None).is_err());
        assert!(Page::start("U", &"a", token.as_deref(), None).is_err());
        assert!(Page::start("T", &"a", Some("zz"), None).is_err());
        assert!(
            Page::start("T", &"a", Some(""), None)
                .unwrap()
                .after
                .is_none()
        );
    }
}
