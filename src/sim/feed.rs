//! The query of the emulator's feeds, `GET /api/alerts` and Graph's `alerts_v2`: the subset of
//! OData the real APIs accept for them (docs/microsoft-api.md §8, and §10 for Graph). `$filter`
//! compares the update time (`lastUpdateTime`, Graph `lastUpdateDateTime`)
//! or the creation time (`alertCreationTime`, Graph `createdDateTime`) with `ge`, `gt`, `le` or
//! `lt` to a time, clauses joined by `and`; `$top` is 1 to 10,000; `$skip` any count; Defender
//! adds the evidence for `$expand=evidence`, Graph always sends it. Anything else is an error
//! the server answers 400 with. Pure: text in, query out.

use std::collections::HashMap;

/// The largest page the API serves.
pub const MAX_TOP: usize = 10_000;

/// Which API's names a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Defender,
    Graph,
}

impl Dialect {
    fn field(self, name: &str) -> Option<Field> {
        match (self, name) {
            (Dialect::Defender, "lastUpdateTime") | (Dialect::Graph, "lastUpdateDateTime") => {
                Some(Field::LastUpdateTime)
            }
            (Dialect::Defender, "alertCreationTime") | (Dialect::Graph, "createdDateTime") => {
                Some(Field::AlertCreationTime)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    LastUpdateTime,
    AlertCreationTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
}

impl Op {
    pub fn holds(self, value: i64, bound: i64) -> bool {
        match self {
            Op::Ge => value >= bound,
            Op::Gt => value > bound,
            Op::Le => value <= bound,
            Op::Lt => value < bound,
        }
    }
}

/// One `field op time` clause; the time in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clause {
    pub field: Field,
    pub op: Op,
    pub micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    pub clauses: Vec<Clause>,
    pub top: usize,
    pub skip: usize,
    pub evidence: bool,
}

impl FeedQuery {
    /// Whether an alert with these times passes every clause.
    pub fn admits(&self, created_micros: i64, updated_micros: i64) -> bool {
        self.clauses.iter().all(|clause| {
            let value = match clause.field {
                Field::LastUpdateTime => updated_micros,
                Field::AlertCreationTime => created_micros,
            };
            clause.op.holds(value, clause.micros)
        })
    }
}

/// Reads the query parameters of a feed request; the error is the message of the 400.
pub fn parse(params: &HashMap<String, String>, dialect: Dialect) -> Result<FeedQuery, String> {
    let mut query = FeedQuery {
        clauses: Vec::new(),
        top: MAX_TOP,
        skip: 0,
        evidence: dialect == Dialect::Graph,
    };
    for (name, value) in params {
        match name.as_str() {
            "$filter" => query.clauses = parse_filter(value, dialect)?,
            "$top" => {
                query.top = value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|top| (1..=MAX_TOP).contains(top))
                    .ok_or_else(|| {
                        format!("The value of $top ('{value}') must be between 1 and {MAX_TOP}.")
                    })?
            }
            "$skip" => {
                query.skip = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("The value of $skip ('{value}') is not a count."))?
            }
            "$expand" if dialect == Dialect::Defender => {
                if value.trim() != "evidence" {
                    return Err(format!(
                        "Could not find a property named '{value}' to expand."
                    ));
                }
                query.evidence = true;
            }
            other => return Err(format!("The query parameter '{other}' is not supported.")),
        }
    }
    Ok(query)
}

fn parse_filter(filter: &str, dialect: Dialect) -> Result<Vec<Clause>, String> {
    let invalid = || format!("Invalid filter clause: '{filter}'.");
    let words: Vec<&str> = filter.split_whitespace().collect();
    if words.is_empty() {
        return Err(invalid());
    }
    let mut clauses = Vec::new();
    for (n, clause) in words.split(|w| w.eq_ignore_ascii_case("and")).enumerate() {
        let [field, op, time] = clause else {
            return Err(invalid());
        };
        let Some(field) = dialect.field(field) else {
            return Err(format!(
                "The property '{field}' cannot be used in $filter here (clause {}).",
                n + 1
            ));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            "le" => Op::Le,
            "lt" => Op::Lt,
            _ => return Err(invalid()),
        };
        let time = time.trim_matches('\'');
        let micros = crate::defender::time::parse(time)
            .map(crate::defender::time::to_micros)
            .ok_or_else(|| format!("'{time}' is not a valid DateTimeOffset."))?;
        clauses.push(Clause { field, op, micros });
    }
    Ok(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn the_subset_the_api_accepts() {
        let query = parse(
            &params(&[
            ("$filter", "lastUpdateTime ge 2026-11-30T00:00:00Z and lastUpdateTime lt 2026-11-30T01:00:00.5Z"),
            ("$top", "10"),
            ("$skip", "20"),
            ("$expand", "evidence"),
        ]),
            Dialect::Defender,
        )
        .unwrap();
        assert_eq!(query.clauses.len(), 2);
        assert_eq!((query.top, query.skip, query.evidence), (10, 20, true));
        let at =
            |t: &str| crate::defender::time::to_micros(crate::defender::time::parse(t).unwrap());
        assert!(query.admits(0, at("2026-11-30T00:00:00Z")));
        assert!(!query.admits(0, at("2026-11-30T01:00:00.5Z")));
        assert!(query.admits(0, at("2026-11-30T01:00:00.4999999Z")));
        let defaults = parse(&HashMap::new(), Dialect::Defender).unwrap();
        assert_eq!(
            (defaults.top, defaults.skip, defaults.evidence),
            (MAX_TOP, 0, false)
        );
        assert!(defaults.admits(0, 0));
    }

    #[test]
    fn everything_else_is_a_400() {
        for bad in [
            ("$filter", "status eq 'New'"),
            ("$filter", "lastUpdateTime eq 2026-11-30T00:00:00Z"),
            ("$filter", "lastUpdateTime ge yesterday"),
            ("$filter", "lastUpdateTime ge 2026-11-30T00:00:00Z or alertCreationTime lt 2026-11-30T00:00:00Z"),
            ("$filter", ""),
            ("$top", "0"),
            ("$top", "10001"),
            ("$top", "ten"),
            ("$skip", "-1"),
            ("$expand", "comments"),
            ("$orderby", "lastUpdateTime"),
        ] {
            assert!(parse(&params(&[bad]), Dialect::Defender).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn graph_names_its_fields_its_own_way_and_always_sends_evidence() {
        let query = parse(
            &params(&[("$filter", "lastUpdateDateTime ge 2026-11-30T00:00:00Z and createdDateTime lt 2026-12-01T00:00:00Z")]),
            Dialect::Graph,
        )
        .unwrap();
        assert_eq!(query.clauses.len(), 2);
        assert!(query.evidence);
        for bad in [
            ("$filter", "lastUpdateTime ge 2026-11-30T00:00:00Z"),
            ("$expand", "evidence"),
        ] {
            assert!(parse(&params(&[bad]), Dialect::Graph).is_err(), "{bad:?}");
        }
    }
}
