//! Reading optional numbers and names of a request against their limits, collecting every
//! problem (so one 400 names each bad field) instead of stopping at the first.

use super::{check_id, FieldProblem};

/// Longest name of a lock, job queue, job, cache key, tag or namespace.
pub const MAX_NAME_CHARS: usize = 200;

/// Collects the problems of one request.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldProblem>);

impl Problems {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.push(FieldProblem::new(field, problem));
    }

    /// `v` (or `default` when absent) if it is within `lo..=hi`; else records the problem.
    pub fn range(
        &mut self,
        field: &str,
        v: Option<u64>,
        default: Option<u64>,
        lo: u64,
        hi: u64,
    ) -> u64 {
        match v.or(default) {
            Some(n) if (lo..=hi).contains(&n) => n,
            Some(_) => {
                self.add(field, format!("must be between {lo} and {hi}"));
                lo
            }
            None => {
                self.add(field, "is required");
                lo
            }
        }
    }

    /// A required name (1 to [`MAX_NAME_CHARS`] characters, none a control character).
    pub fn name<'a>(&mut self, field: &str, v: Option<&'a str>) -> &'a str {
        match v {
            Some(s) => {
                if let Err(p) = check_id(field, s, MAX_NAME_CHARS) {
                    self.0.push(p);
                }
                s
            }
            None => {
                self.add(field, "is required");
                ""
            }
        }
    }

    /// Ok when nothing was wrong.
    pub fn done(self) -> Result<(), Vec<FieldProblem>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Checks a name given in a path or query.
pub fn check_name(field: &str, v: &str) -> Result<(), FieldProblem> {
    check_id(field, v, MAX_NAME_CHARS)
}
