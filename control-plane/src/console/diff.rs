//! A line diff (longest common subsequence) for comparing two task
//! definition revisions' JSON.

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// In both.
    Same(String),
    /// Only in the old text.
    Removed(String),
    /// Only in the new text.
    Added(String),
}

impl Line {
    /// `same`, `removed` or `added`, for styling.
    pub fn kind(&self) -> &'static str {
        match self {
            Line::Same(_) => "same",
            Line::Removed(_) => "removed",
            Line::Added(_) => "added",
        }
    }

    /// `" "`, `"-"` or `"+"`.
    pub fn sign(&self) -> &'static str {
        match self {
            Line::Same(_) => " ",
            Line::Removed(_) => "-",
            Line::Added(_) => "+",
        }
    }

    /// The line's text.
    pub fn text(&self) -> &str {
        match self {
            Line::Same(t) | Line::Removed(t) | Line::Added(t) => t,
        }
    }
}

/// Longest texts compared line by line (the table is old × new).
const MAX_LINES: usize = 4000;

/// The lines of `old` and `new` as kept, removed and added. Texts past
/// [`MAX_LINES`] lines are shown as all removed and all added.
pub fn lines(old: &str, new: &str) -> Vec<Line> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common head and tail first: revisions differ in a few places.
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut out: Vec<Line> = a[..head]
        .iter()
        .map(|l| Line::Same(l.to_string()))
        .collect();
    if am.len() > MAX_LINES || bm.len() > MAX_LINES {
        out.extend(am.iter().map(|l| Line::Removed(l.to_string())));
        out.extend(bm.iter().map(|l| Line::Added(l.to_string())));
    } else {
        // lcs[i][j]: longest common subsequence of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        let at = |i: usize, j: usize| i * (m + 1) + j;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[at(i, j)] = if am[i] == bm[j] {
                    lcs[at(i + 1, j + 1)] + 1
                } else {
                    lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                out.push(Line::Same(am[i].to_string()));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
                // Removals first, as `diff -u` shows a changed line.
                out.push(Line::Removed(am[i].to_string()));
                i += 1;
            } else {
                out.push(Line::Added(bm[j].to_string()));
                j += 1;
            }
        }
    }
    out.extend(
        a[a.len() - tail..]
            .iter()
            .map(|l| Line::Same(l.to_string())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| format!("{}{}", l.sign(), l.text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn shows_what_changed_between_revisions() {
        let old = "{\n  \"cpu\": \"256\",\n  \"image\": \"a:1\",\n  \"name\": \"web\"\n}";
        let new =
            "{\n  \"cpu\": \"512\",\n  \"image\": \"a:1\",\n  \"name\": \"web\",\n  \"x\": 1\n}";
        assert_eq!(
            render(&lines(old, new)),
            " {\n-  \"cpu\": \"256\",\n+  \"cpu\": \"512\",\n   \"image\": \"a:1\",\n-  \"name\": \"web\"\n+  \"name\": \"web\",\n+  \"x\": 1\n }"
        );
    }

    #[test]
    fn equal_and_empty_texts() {
        assert!(lines("a\nb", "a\nb").iter().all(|l| l.kind() == "same"));
        assert_eq!(lines("", "x"), vec![Line::Added("x".into())]);
        assert_eq!(lines("x", ""), vec![Line::Removed("x".into())]);
        assert!(lines("", "").is_empty());
    }

    #[test]
    fn every_line_of_both_texts_appears_once_in_order() {
        let old: String = (0..50).map(|i| format!("{}\n", i * 3 % 17)).collect();
        let new: String = (0..60).map(|i| format!("{}\n", i * 5 % 13)).collect();
        let diff = lines(&old, &new);
        let kept_old: Vec<&str> = diff
            .iter()
            .filter(|l| l.kind() != "added")
            .map(Line::text)
            .collect();
        let kept_new: Vec<&str> = diff
            .iter()
            .filter(|l| l.kind() != "removed")
            .map(Line::text)
            .collect();
        assert_eq!(kept_old, old.lines().collect::<Vec<_>>());
        assert_eq!(kept_new, new.lines().collect::<Vec<_>>());
    }
}
