//! Outcomes of conformance cases, the final summary line and JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The driver did what the contract requires.
    Pass,
    /// It did not; the message says what the contract requires and what happened.
    Fail(String),
    /// The case does not apply; the message says why.
    Skip(String),
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// `suite/case`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// All results of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// In run order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Outcome) -> bool| self.results.iter().filter(|r| f(&r.outcome)).count();
        (
            count(|o| matches!(o, Outcome::Pass)),
            count(|o| matches!(o, Outcome::Fail(_))),
            count(|o| matches!(o, Outcome::Skip(_))),
        )
    }

    /// True when nothing failed.
    pub fn passed(&self) -> bool {
        self.counts().1 == 0
    }

    /// The failures, `name: message`.
    pub fn failures(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Fail(message) => Some(format!("{}: {message}", r.name)),
                _ => None,
            })
            .collect()
    }

    /// `N passed, N failed, N skipped`.
    pub fn summary(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        format!("{passed} passed, {failed} failed, {skipped} skipped")
    }

    /// The results as JUnit XML.
    pub fn junit(&self) -> String {
        let (_, failed, skipped) = self.counts();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuite name=\"driver-conformance\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
            self.results.len()
        );
        for result in &self.results {
            let (suite, case) = result
                .name
                .split_once('/')
                .unwrap_or(("driver", &result.name));
            let _ = write!(
                xml,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(suite),
                escape(case),
                result.elapsed.as_secs_f64()
            );
            match &result.outcome {
                Outcome::Pass => xml.push_str("/>\n"),
                Outcome::Fail(message) => {
                    let _ = writeln!(
                        xml,
                        ">\n    <failure message=\"{}\"/>\n  </testcase>",
                        escape(message)
                    );
                }
                Outcome::Skip(message) => {
                    let _ = writeln!(
                        xml,
                        ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                        escape(message)
                    );
                }
            }
        }
        xml.push_str("</testsuite>\n");
        xml
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_junit_count_each_outcome() {
        let report = Report {
            results: vec![
                CaseResult {
                    name: "compute/a".into(),
                    outcome: Outcome::Pass,
                    elapsed: Duration::ZERO,
                },
                CaseResult {
                    name: "compute/b".into(),
                    outcome: Outcome::Fail("want <x> & y".into()),
                    elapsed: Duration::ZERO,
                },
                CaseResult {
                    name: "credentials/c".into(),
                    outcome: Outcome::Skip("not advertised".into()),
                    elapsed: Duration::ZERO,
                },
            ],
        };
        assert_eq!(report.summary(), "1 passed, 1 failed, 1 skipped");
        assert!(!report.passed());
        let xml = report.junit();
        assert!(xml.contains("failures=\"1\" skipped=\"1\""));
        assert!(xml.contains("want &lt;x&gt; &amp; y"));
        assert_eq!(report.failures(), ["compute/b: want <x> & y"]);
    }
}
