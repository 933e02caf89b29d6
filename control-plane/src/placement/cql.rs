//! The ECS cluster query language: `memberOf` placement constraints and the
//! `filter` of ListContainerInstances. A pure parser and evaluator.
//!
//! Grammar (ECS's, formalised; keywords are case-sensitive):
//!
//! ```text
//! expr     := and_expr { ("||" | "or") and_expr }
//! and_expr := not_expr { ("&&" | "and") not_expr }
//! not_expr := ("!" | "not") not_expr | "(" expr ")" | atom
//! atom     := subject ("exists" | "!exists" | "not_exists")
//!           | subject binary_op value
//!           | subject ("in" | "!in" | "not_in") "[" value { "," value } "]"
//! subject  := "agentConnected" | "agentVersion" | "ec2InstanceId" | "registeredAt"
//!           | "runningTasksCount" | "task:group" | "attribute:" name
//! value    := word | 'quoted' | "quoted"
//! ```
//!
//! Semantics where ECS is silent (documented in the README):
//! - A missing attribute makes every comparison false, `!=`/`!in`/`!~`
//!   included (`attribute:stack != prod` lists instances that *have* a
//!   `stack`); `exists` is false and `!exists` true. `not(...)` negates.
//! - `task:group` is the set of groups of the instance's non-STOPPED tasks:
//!   positive operators hold when any group satisfies them, negative ones
//!   when none satisfies the positive form.
//! - `=~` matches the whole value (Java `matches()`); patterns are regexes.
//! - Ordering compares numbers as numbers, `agentVersion` part by part,
//!   `registeredAt` as times (a date alone is midnight UTC), otherwise text.
//!
//! Parse errors carry the 1-based character position and what was expected.

use regex::Regex;
use std::fmt;

/// Longest expression ECS accepts.
pub const MAX_EXPRESSION_CHARS: usize = 2000;

/// What an atom talks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `agentConnected`
    AgentConnected,
    /// `agentVersion`
    AgentVersion,
    /// `ec2InstanceId`
    Ec2InstanceId,
    /// `registeredAt`
    RegisteredAt,
    /// `runningTasksCount`
    RunningTasksCount,
    /// `task:group`
    TaskGroup,
    /// `attribute:<name>`
    Attribute(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::RegisteredAt => f.write_str("registeredAt"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
            Subject::TaskGroup => f.write_str("task:group"),
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`, `equals`
    Eq,
    /// `!=`, `not_equals`
    Ne,
    /// `>`, `greater_than`
    Gt,
    /// `>=`, `greater_than_equal`
    Ge,
    /// `<`, `less_than`
    Lt,
    /// `<=`, `less_than_equal`
    Le,
    /// `exists`
    Exists,
    /// `!exists`, `not_exists`
    NotExists,
    /// `in`
    In,
    /// `!in`, `not_in`
    NotIn,
    /// `=~`, `matches`
    Matches,
    /// `!~`, `not_matches`
    NotMatches,
}

impl Op {
    fn from_token(t: &str) -> Option<Op> {
        Some(match t {
            "==" | "equals" => Op::Eq,
            "!=" | "not_equals" => Op::Ne,
            ">" | "greater_than" => Op::Gt,
            ">=" | "greater_than_equal" => Op::Ge,
            "<" | "less_than" => Op::Lt,
            "<=" | "less_than_equal" => Op::Le,
            "exists" => Op::Exists,
            "!exists" | "not_exists" => Op::NotExists,
            "in" => Op::In,
            "!in" | "not_in" => Op::NotIn,
            "=~" | "matches" => Op::Matches,
            "!~" | "not_matches" => Op::NotMatches,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Exists => "exists",
            Op::NotExists => "!exists",
            Op::In => "in",
            Op::NotIn => "!in",
            Op::Matches => "=~",
            Op::NotMatches => "!~",
        }
    }

    fn is_negative(self) -> bool {
        matches!(self, Op::Ne | Op::NotIn | Op::NotMatches)
    }

    fn positive(self) -> Op {
        match self {
            Op::Ne => Op::Eq,
            Op::NotIn => Op::In,
            Op::NotMatches => Op::Matches,
            other => other,
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

/// One comparison.
#[derive(Debug, Clone)]
pub struct Atom {
    /// What is compared.
    pub subject: Subject,
    /// How.
    pub op: Op,
    /// With what: none for `exists`, one value, or the `in` list.
    pub values: Vec<String>,
    /// The compiled pattern for `=~`/`!~`.
    pattern: Option<Regex>,
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.subject == other.subject && self.op == other.op && self.values == other.values
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A comparison.
    Atom(Atom),
}

fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !"()[],'\"=!<>~&|".contains(c))
        && !matches!(v, "and" | "or" | "not");
    if plain {
        v.to_owned()
    } else {
        format!("'{v}'")
    }
}

impl fmt::Display for Expr {
    /// Canonical form: every compound parenthesised, values quoted when needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
            Expr::Not(e) => write!(f, "not({e})"),
            Expr::Atom(a) => match a.op {
                Op::Exists | Op::NotExists => write!(f, "{} {}", a.subject, a.op.symbol()),
                Op::In | Op::NotIn => {
                    let list: Vec<String> = a.values.iter().map(|v| quote(v)).collect();
                    write!(f, "{} {} [{}]", a.subject, a.op.symbol(), list.join(", "))
                }
                _ => write!(f, "{} {} {}", a.subject, a.op.symbol(), quote(&a.values[0])),
            },
        }
    }
}

/// An expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position} of the expression)")]
pub struct ParseError {
    /// 1-based character position.
    pub position: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// A bare word or operator symbol.
    Word(String),
    /// A quoted value.
    Quoted(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position.
    at: usize,
}

fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = single {
            out.push(Token { tok, at });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == c)
                .ok_or_else(|| ParseError {
                    position: at,
                    message: format!("the quoted value starting here is not closed with {c}"),
                })?;
            let text: String = chars[i + 1..i + 1 + end].iter().collect();
            out.push(Token {
                tok: Tok::Quoted(text),
                at,
            });
            i += end + 2;
        } else if "=!<>~&|".contains(c) {
            // An operator symbol, or `!` glued to a word (`!exists`, `!in`).
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = if ["==", "!=", ">=", "<=", "=~", "!~", "&&", "||"].contains(&two.as_str()) {
                two
            } else if c == '!' && chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|x| x.is_alphanumeric() || **x == '_')
                    .count();
                chars[i..i + 1 + len].iter().collect()
            } else {
                c.to_string()
            };
            i += sym.chars().count();
            out.push(Token {
                tok: Tok::Word(sym),
                at,
            });
        } else {
            let len = chars[i..]
                .iter()
                .take_while(|x| !x.is_whitespace() && !"()[],'\"=!<>~&|".contains(**x))
                .count();
            out.push(Token {
                tok: Tok::Word(chars[i..i + len].iter().collect()),
                at,
            });
            i += len;
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
}

const OPERATORS: &str =
    "==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~ (or their word forms)";
const SUBJECTS: &str = "attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt, runningTasksCount";

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn at(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            position: self.at(),
            message: message.into(),
        })
    }

    fn next_is_word(&self, words: &[&str]) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if words.contains(&w.as_str()))
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and_expr()?;
        while self.next_is_word(&["||", "or"]) {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not_expr()?;
        while self.next_is_word(&["&&", "and"]) {
            self.pos += 1;
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, ParseError> {
        if self.next_is_word(&["!", "not"]) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        match self.peek().map(|t| &t.tok) {
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.expr()?;
                match self.peek().map(|t| &t.tok) {
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => self.error("expected ')' to close the '(' before it"),
                }
            }
            Some(_) => self.atom(),
            None => self.error(format!("expected an expression ({SUBJECTS}, 'not' or '(')")),
        }
    }

    fn subject(&mut self) -> Result<Subject, ParseError> {
        let Some(Token {
            tok: Tok::Word(w), ..
        }) = self.peek().cloned()
        else {
            return self.error(format!("expected a subject: {SUBJECTS}"));
        };
        let subject = match w.as_str() {
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            other => match other.strip_prefix("attribute:") {
                Some(name)
                    if !name.is_empty()
                        && name.len() <= 128
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c)) =>
                {
                    Subject::Attribute(name.to_owned())
                }
                Some(name) => {
                    return self.error(format!(
                        "attribute name '{name}' is not valid: use 1-128 letters, digits and - _ / \\ ."
                    ));
                }
                None => {
                    return self.error(format!("unknown subject '{other}': expected {SUBJECTS}"));
                }
            },
        };
        self.pos += 1;
        Ok(subject)
    }

    fn value(&mut self) -> Result<String, ParseError> {
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Word(w)) if !w.chars().all(|c| "=!<>~&|".contains(c)) => {
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::Quoted(q)) => {
                self.pos += 1;
                Ok(q)
            }
            _ => self.error("expected a value (a word or a quoted string)"),
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let subject = self.subject()?;
        let op_at = self.at();
        let op = match self.peek().map(|t| &t.tok) {
            Some(Tok::Word(w)) => Op::from_token(w),
            _ => None,
        };
        let Some(op) = op else {
            return self.error(format!(
                "expected an operator after '{subject}': {OPERATORS}"
            ));
        };
        let allowed = match subject {
            Subject::AgentConnected | Subject::Ec2InstanceId => {
                matches!(
                    op,
                    Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Matches | Op::NotMatches
                )
            }
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                matches!(op, Op::Eq | Op::Ne) || op.is_ordering()
            }
            Subject::TaskGroup | Subject::Attribute(_) => true,
        };
        if !allowed {
            return self.error(format!(
                "'{subject}' cannot be compared with '{}'",
                op.symbol()
            ));
        }
        self.pos += 1;
        let values = match op {
            Op::Exists | Op::NotExists => Vec::new(),
            Op::In | Op::NotIn => {
                if !matches!(self.peek().map(|t| &t.tok), Some(Tok::LBracket)) {
                    return self.error(format!(
                        "expected '[' to start the list after '{}'",
                        op.symbol()
                    ));
                }
                self.pos += 1;
                let mut list = vec![self.value()?];
                loop {
                    match self.peek().map(|t| &t.tok) {
                        Some(Tok::Comma) => {
                            self.pos += 1;
                            list.push(self.value()?);
                        }
                        Some(Tok::RBracket) => {
                            self.pos += 1;
                            break;
                        }
                        _ => return self.error("expected ',' or ']' in the list"),
                    }
                }
                list
            }
            _ => vec![self.value()?],
        };
        let pattern = match op {
            Op::Matches | Op::NotMatches => Some(
                Regex::new(&format!("^(?:{})$", values[0])).map_err(|e| ParseError {
                    position: op_at,
                    message: format!("'{}' is not a valid pattern: {e}", values[0]),
                })?,
            ),
            _ => None,
        };
        if subject == Subject::RegisteredAt
            && let Some(v) = values.iter().find(|v| parse_time(v).is_none())
        {
            return Err(ParseError {
                position: op_at,
                message: format!(
                    "'{v}' is not a time like 2018-06-18, 2018-06-18T22:28:28 or 2018-06-18T22:28:28Z"
                ),
            });
        }
        Ok(Expr::Atom(Atom {
            subject,
            op,
            values,
            pattern,
        }))
    }
}

/// Parses an expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let n = input.chars().count();
    if n > MAX_EXPRESSION_CHARS {
        return Err(ParseError {
            position: MAX_EXPRESSION_CHARS + 1,
            message: format!(
                "the expression is {n} characters long; at most {MAX_EXPRESSION_CHARS} are allowed"
            ),
        });
    }
    let tokens = lex(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: n + 1,
    };
    let expr = p.expr()?;
    if p.pos < p.tokens.len() {
        return p.error("expected 'and', 'or' or the end of the expression");
    }
    Ok(expr)
}

/// What an expression is evaluated against: one container instance.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// (name, value) of every attribute.
    pub attributes: Vec<(&'a str, Option<&'a str>)>,
    /// Whether the agent is connected.
    pub agent_connected: bool,
    /// The agent's version.
    pub agent_version: Option<&'a str>,
    /// `ec2InstanceId`.
    pub ec2_instance_id: &'a str,
    /// Registration time, unix milliseconds.
    pub registered_at_ms: i64,
    /// Tasks with desired status RUNNING.
    pub running_tasks_count: i64,
    /// Groups of the non-STOPPED tasks.
    pub task_groups: Vec<&'a str>,
}

impl Expr {
    /// Whether the expression holds for an instance.
    pub fn eval(&self, facts: &Facts<'_>) -> bool {
        match self {
            Expr::And(a, b) => a.eval(facts) && b.eval(facts),
            Expr::Or(a, b) => a.eval(facts) || b.eval(facts),
            Expr::Not(e) => !e.eval(facts),
            Expr::Atom(a) => a.eval(facts),
        }
    }

    /// Whether the expression mentions `task:group` (its truth then depends
    /// on tasks placed earlier in the same call).
    pub fn uses_task_group(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.uses_task_group() || b.uses_task_group(),
            Expr::Not(e) => e.uses_task_group(),
            Expr::Atom(a) => a.subject == Subject::TaskGroup,
        }
    }
}

impl Atom {
    fn eval(&self, facts: &Facts<'_>) -> bool {
        let connected = facts.agent_connected.to_string();
        let running = facts.running_tasks_count.to_string();
        let registered = facts.registered_at_ms.to_string();
        let values: Vec<&str> = match &self.subject {
            Subject::AgentConnected => vec![connected.as_str()],
            Subject::AgentVersion => facts.agent_version.into_iter().collect(),
            Subject::Ec2InstanceId => vec![facts.ec2_instance_id],
            Subject::RegisteredAt => vec![registered.as_str()],
            Subject::RunningTasksCount => vec![running.as_str()],
            Subject::TaskGroup => facts.task_groups.clone(),
            Subject::Attribute(name) => match facts.attributes.iter().find(|(n, _)| n == name) {
                None => Vec::new(),
                // A value-less (capability) attribute exists but equals nothing.
                Some((_, v)) => vec![v.unwrap_or("")],
            },
        };
        let present = match &self.subject {
            Subject::Attribute(name) => facts.attributes.iter().any(|(n, _)| n == name),
            _ => !values.is_empty(),
        };
        match self.op {
            Op::Exists => return present,
            Op::NotExists => return !present,
            _ => {}
        }
        if values.is_empty() {
            // No such attribute: every comparison is false. No tasks: no
            // group satisfies the positive form, so a negative one holds.
            return self.op.is_negative() && self.subject == Subject::TaskGroup;
        }
        let holds = |v: &str| self.positive_holds(v);
        if self.op.is_negative() {
            !values.iter().any(|v| holds(v))
        } else {
            values.iter().any(|v| holds(v))
        }
    }

    /// The positive form of the operator on one value.
    fn positive_holds(&self, value: &str) -> bool {
        match self.op.positive() {
            Op::Eq => self.compare(value, &self.values[0]) == Some(std::cmp::Ordering::Equal),
            Op::In => self
                .values
                .iter()
                .any(|v| self.compare(value, v) == Some(std::cmp::Ordering::Equal)),
            Op::Matches => self.pattern.as_ref().is_some_and(|p| p.is_match(value)),
            op => {
                let Some(ord) = self.compare(value, &self.values[0]) else {
                    return false;
                };
                match op {
                    Op::Gt => ord.is_gt(),
                    Op::Ge => ord.is_ge(),
                    Op::Lt => ord.is_lt(),
                    Op::Le => ord.is_le(),
                    _ => false,
                }
            }
        }
    }

    fn compare(&self, actual: &str, wanted: &str) -> Option<std::cmp::Ordering> {
        match self.subject {
            Subject::AgentVersion => Some(compare_versions(actual, wanted)),
            Subject::RegisteredAt => Some(actual.parse::<i64>().ok()?.cmp(&parse_time(wanted)?)),
            Subject::RunningTasksCount => Some(
                actual
                    .parse::<i64>()
                    .ok()?
                    .cmp(&wanted.parse::<i64>().ok()?),
            ),
            _ if self.op.positive() == Op::Eq || self.op.positive() == Op::In => {
                Some(actual.cmp(wanted))
            }
            _ => match (actual.parse::<f64>(), wanted.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(actual.cmp(wanted)),
            },
        }
    }
}

/// Dotted versions compared part by part, numerically where both parts are
/// numbers (`1.14.5 < 1.100`).
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if ord.is_ne() {
                    return ord;
                }
            }
        }
    }
}

/// `2018-06-18`, `2018-06-18T22:28:28`, `...Z`, `...+00:00` as unix ms (UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = 0;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix('Z') {
            (c, 0)
        } else if let Some(i) = t.rfind(['+', '-']) {
            let (c, off) = t.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':')?;
            (
                c,
                sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
            )
        } else {
            (t, 0)
        };
        let mut parts = clock.split(':');
        let (h, mi, s): (i64, i64, i64) = (
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.split('.').next()?.parse().ok()?,
        );
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + s - offset;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + secs) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(attrs: &[(&'a str, Option<&'a str>)], groups: &[&'a str]) -> Facts<'a> {
        Facts {
            attributes: attrs.to_vec(),
            agent_connected: true,
            agent_version: Some("1.14.5"),
            ec2_instance_id: "i-abcd1234",
            registered_at_ms: parse_time("2018-06-18T10:00:00Z").unwrap(),
            running_tasks_count: 1,
            task_groups: groups.to_vec(),
        }
    }

    fn holds(expr: &str, f: &Facts<'_>) -> bool {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(f)
    }

    #[test]
    fn documented_examples_parse_and_behave() {
        let t2 = facts(
            &[
                ("ecs.instance-type", Some("t2.small")),
                ("ecs.availability-zone", Some("us-east-1a")),
                ("stack", Some("prod")),
            ],
            &["service:production"],
        );
        let bare = facts(&[("ecs.instance-type", Some("g2.2xlarge"))], &["database"]);
        assert!(holds("attribute:ecs.instance-type == t2.small", &t2));
        assert!(holds(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            &t2
        ));
        assert!(holds(
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
            &facts(
                &[
                    ("ecs.instance-type", Some("g2.2xlarge")),
                    ("ecs.availability-zone", Some("us-east-1a"))
                ],
                &[]
            )
        ));
        assert!(
            !holds(
                "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
                &bare
            ),
            "a missing attribute makes != false"
        );
        assert!(holds("task:group == service:production", &t2));
        assert!(holds("not(task:group == database)", &t2));
        assert!(!holds("not(task:group == database)", &bare));
        assert!(holds("runningTasksCount == 1", &t2));
        assert!(!holds("agentVersion < 1.14.5", &t2));
        assert!(holds("agentVersion < 1.100", &t2));
        assert!(holds("registeredAt < 2018-06-19", &t2));
        assert!(!holds("registeredAt < 2018-02-13", &t2));
        assert!(holds("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", &t2));
        assert!(holds("attribute:stack == prod", &t2));
        assert!(!holds("attribute:stack != prod", &t2));
        assert!(
            !holds("attribute:stack != prod", &bare),
            "missing attribute: != is false"
        );
        assert!(holds("not(attribute:stack == prod)", &bare));
        assert!(holds(
            "attribute:ecs.instance-type in [t2.small, t2.medium]",
            &t2
        ));
        assert!(holds(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a",
            &t2
        ));
        assert!(holds(
            "attribute:ecs.os-family == WINDOWS_SERVER_2022_FULL",
            &facts(&[("ecs.os-family", Some("WINDOWS_SERVER_2022_FULL"))], &[])
        ));
    }

    #[test]
    fn operators_words_and_precedence() {
        let f = facts(&[("a", Some("1")), ("b", Some("2")), ("flag", None)], &[]);
        assert!(holds(
            "attribute:a equals 1 && attribute:b not_equals 3",
            &f
        ));
        assert!(
            holds(
                "attribute:a == 9 or attribute:b == 2 and attribute:a == 1",
                &f
            ),
            "and binds tighter"
        );
        assert!(!holds(
            "(attribute:a == 9 or attribute:b == 2) and attribute:a == 5",
            &f
        ));
        assert!(holds("attribute:flag exists", &f));
        assert!(holds("attribute:nope !exists", &f));
        assert!(holds("attribute:nope not_exists", &f));
        assert!(!holds("attribute:flag == ''", &facts(&[], &[])));
        assert!(holds("attribute:a !in [2, 3]", &f));
        assert!(holds("attribute:a not_in [2, 3]", &f));
        assert!(holds("attribute:b greater_than 10 or attribute:b >= 2", &f));
        assert!(holds("attribute:b < 10", &f), "numbers compare as numbers");
        assert!(holds("attribute:a !~ 'x.*'", &f));
        assert!(holds("! attribute:a == 2", &f));
        assert!(holds("task:group !exists", &f));
        assert!(holds("task:group != web", &f), "no tasks: negative holds");
        assert!(!holds("task:group == web", &f));
        assert!(holds("agentConnected == true", &f));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("attribute:a", 12, "expected an operator"),
            ("attribute:a === b", 15, "expected a value"),
            ("foo == bar", 1, "unknown subject 'foo'"),
            ("attribute:a == 1 and", 21, "expected an expression"),
            ("(attribute:a == 1", 18, "expected ')'"),
            ("attribute:a in 1", 16, "expected '['"),
            ("attribute:a in [1 2]", 19, "expected ',' or ']'"),
            ("attribute:a == 'x", 16, "not closed"),
            ("agentConnected > true", 16, "cannot be compared"),
            ("attribute:a =~ '('", 13, "not a valid pattern"),
            ("registeredAt > yesterday", 14, "not a time"),
            (
                "attribute:a == 1 attribute:b == 2",
                18,
                "expected 'and', 'or'",
            ),
        ];
        for (expr, position, needle) in cases {
            let e = parse(expr).unwrap_err();
            assert_eq!(e.position, position, "{expr}: {e}");
            assert!(e.message.contains(needle), "{expr}: {e}");
        }
        let long = format!("attribute:a == {}", "x".repeat(2000));
        assert!(parse(&long).unwrap_err().message.contains("at most 2000"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(
            parse_time("2018-06-18T22:28:28Z"),
            parse_time("2018-06-18T22:28:28")
        );
        assert_eq!(
            parse_time("2018-06-18T22:28:28+02:00"),
            parse_time("2018-06-18T20:28:28Z")
        );
        assert_eq!(parse_time("2018-13-01"), None);
    }

    use crate::placement::Rng;

    fn random_expr(rng: &mut Rng, depth: u32) -> String {
        let values = ["a", "b", "1", "2.5", "'x y'", "t2.small", "'and'"];
        let attrs = [
            "attribute:a",
            "attribute:b",
            "attribute:ecs.instance-type",
            "task:group",
        ];
        if depth == 0 || rng.next_u64().is_multiple_of(3) {
            let subject = rng.pick(&attrs);
            return match rng.next_u64() % 5 {
                0 => format!(
                    "{subject} {}",
                    rng.pick(&["exists", "!exists", "not_exists"])
                ),
                1 => format!(
                    "{subject} {} [{}, {}]",
                    rng.pick(&["in", "!in", "not_in"]),
                    rng.pick(&values),
                    rng.pick(&values)
                ),
                2 => format!(
                    "{subject} {} '{}.*'",
                    rng.pick(&["=~", "!~", "matches"]),
                    rng.pick(&["a", "t2", "1"])
                ),
                _ => format!(
                    "{subject} {} {}",
                    rng.pick(&["==", "!=", ">", ">=", "<", "<=", "equals", "greater_than"]),
                    rng.pick(&values)
                ),
            };
        }
        let a = random_expr(rng, depth - 1);
        let b = random_expr(rng, depth - 1);
        match rng.next_u64() % 4 {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) || ({b})"),
            2 => format!("not({a})"),
            _ => format!("{a} && {b}"),
        }
    }

    #[test]
    fn property_printing_then_parsing_is_the_identity() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        let f = facts(
            &[
                ("a", Some("1")),
                ("b", Some("b")),
                ("ecs.instance-type", Some("t2.small")),
            ],
            &["x y", "a"],
        );
        for _ in 0..500 {
            let text = random_expr(&mut rng, 3);
            let parsed = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let printed = parsed.to_string();
            let reparsed = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
            assert_eq!(parsed, reparsed, "{text} -> {printed}");
            assert_eq!(parsed.eval(&f), reparsed.eval(&f));
            // not(not(e)) is e.
            let double = parse(&format!("not(not({printed}))")).unwrap();
            assert_eq!(double.eval(&f), parsed.eval(&f));
        }
    }

    #[test]
    fn property_garbage_never_panics() {
        let mut rng = Rng::new(42);
        let alphabet: Vec<char> = "ab:()[],'\" =!<>~&|.* attribute:task:groupnotandor_in"
            .chars()
            .collect();
        for _ in 0..5000 {
            let len = (rng.next_u64() % 40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse(&text);
        }
    }
}
