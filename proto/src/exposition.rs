//! What a scrape gets: `prometheus-client` encodes OpenMetrics text, which
//! Prometheus asks for first; anything else (curl, `promtool check
//! metrics`, older scrapers) gets the Prometheus text format 0.0.4, as the
//! Go client negotiates. The two differ only in framing: 0.0.4 names a
//! counter family with its `_total` suffix, and has no `# UNIT` lines and
//! no `# EOF`.

/// OpenMetrics' content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format's content type.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type and body for a request with this `Accept` header,
/// from the OpenMetrics text `openmetrics`.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (OPENMETRICS, openmetrics)
    } else {
        (TEXT_004, to_text_004(&openmetrics))
    }
}

/// OpenMetrics text as the Prometheus text format 0.0.4.
pub fn to_text_004(openmetrics: &str) -> String {
    // Which families are counters: their HELP and TYPE lines take `_total`.
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(kind);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OM: &str = "# HELP berth_x Things.\n# TYPE berth_x counter\nberth_x_total{a=\"b\"} 3\n# HELP berth_h Time.\n# TYPE berth_h histogram\n# UNIT berth_h seconds\nberth_h_sum 1.0\nberth_h_count 1\n# HELP berth_g Level.\n# TYPE berth_g gauge\nberth_g 2\n# EOF\n";

    #[test]
    fn counters_take_their_total_name_and_openmetrics_framing_goes() {
        let text = to_text_004(OM);
        assert_eq!(
            text,
            "# HELP berth_x_total Things.\n# TYPE berth_x_total counter\nberth_x_total{a=\"b\"} 3\n# HELP berth_h Time.\n# TYPE berth_h histogram\nberth_h_sum 1.0\nberth_h_count 1\n# HELP berth_g Level.\n# TYPE berth_g gauge\nberth_g 2\n"
        );
    }

    #[test]
    fn prometheus_gets_openmetrics_and_everyone_else_text() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom), OM.into()), (OPENMETRICS, OM.into()));
        assert_eq!(negotiate(Some("*/*"), OM.into()).0, TEXT_004);
        assert_eq!(negotiate(None, OM.into()).0, TEXT_004);
    }
}
