//! A conformance case: a named async check against a suite's context.

use std::future::Future;
use std::pin::Pin;

use crate::report::Outcome;

/// Why a case did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseError {
    /// The driver broke the contract: what is required, and what happened.
    Fail(String),
    /// The case does not apply to this driver, and why.
    Skip(String),
}

/// A case's result before it becomes an [`Outcome`].
pub type CaseResult = Result<(), CaseError>;

/// The future a case returns.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// A named case over a context `C`.
pub struct Case<C> {
    /// Name within its suite.
    pub name: &'static str,
    /// The check.
    pub run: for<'a> fn(&'a C) -> CaseFuture<'a>,
}

impl<C> std::fmt::Debug for Case<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> CaseResult {
    if condition {
        Ok(())
    } else {
        Err(CaseError::Fail(message()))
    }
}

/// A failure for a call that should have succeeded.
pub fn call_failed(rpc: &str, status: &tonic::Status) -> CaseError {
    CaseError::Fail(format!(
        "{rpc} must succeed here, got {:?}: {}",
        status.code(),
        status.message()
    ))
}

/// Checks that a call failed with `want`.
pub fn expect_code<T: std::fmt::Debug>(
    rpc: &str,
    result: Result<T, tonic::Status>,
    want: tonic::Code,
    why: &str,
) -> CaseResult {
    match result {
        Err(status) if status.code() == want => Ok(()),
        Err(status) => Err(CaseError::Fail(format!(
            "{rpc} {why}: the contract requires {want:?}, got {:?} ({})",
            status.code(),
            status.message()
        ))),
        Ok(reply) => Err(CaseError::Fail(format!(
            "{rpc} {why}: the contract requires {want:?}, got OK ({reply:?})"
        ))),
    }
}

impl From<CaseResult> for Outcome {
    fn from(result: CaseResult) -> Self {
        match result {
            Ok(()) => Outcome::Pass,
            Err(CaseError::Fail(message)) => Outcome::Fail(message),
            Err(CaseError::Skip(message)) => Outcome::Skip(message),
        }
    }
}

/// Builds a list of cases from async fns taking `&Context`.
#[macro_export]
macro_rules! cases {
    ($ctx:ty: $($name:ident),* $(,)?) => {
        vec![$($crate::case::Case::<$ctx> { name: stringify!($name), run: |ctx| Box::pin($name(ctx)) }),*]
    };
}
