//! Authorization decisions as pure functions, in one place.
//!
//! - [`access`]: who may see, use and change which record, and the same decisions as
//!   store filters for listings.
//! - [`access_rules`]: the operator's attribute rules, letting callers besides the
//!   owner act on an object by the attributes they share with it.
//! - [`credential_policy`]: which credentials the owner of a provider may reference
//!   (the operator's policy), decided at create/update and again at every resolve.
//! - [`policy_file`]: the policy's file, re-read when it changes (a change revokes at
//!   once; a broken file denies users until fixed).

pub mod access;
pub mod access_rules;
pub mod credential_policy;
pub mod policy_file;

pub use access::Access;
pub use access_rules::{AccessRules, Action};
pub use credential_policy::{CredentialPolicy, Holder};
pub use policy_file::PolicyFile;
