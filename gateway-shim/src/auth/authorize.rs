//! The authorization decision, as a pure function of the method's declaration and the
//! principal.

use proto::pb::gateway::v1::{AuthMode, METHOD_AUTH, MethodAuthEntry, Role};
use tonic::Status;

use super::Principal;

/// The scope that grants every other.
pub const ALL_SCOPES: &str = "openshell:all";

/// The declaration of the gateway method at `path`, if it is one.
pub fn entry_for(path: &str) -> Option<&'static MethodAuthEntry> {
    METHOD_AUTH.iter().find(|entry| entry.path == path)
}

/// Whether `principal` (or nobody) may call the method `entry` declares.
///
/// # Errors
/// UNAUTHENTICATED without credentials; PERMISSION_DENIED for the wrong kind of
/// caller, a missing role or a missing scope.
pub fn authorize(entry: &MethodAuthEntry, principal: Option<&Principal>) -> Result<(), Status> {
    let mode = AuthMode::try_from(entry.mode).unwrap_or(AuthMode::Unspecified);
    if mode == AuthMode::Unauthenticated {
        return Ok(());
    }
    if mode == AuthMode::Unspecified {
        return Err(Status::permission_denied(format!(
            "{} declares no auth option; refusing it",
            entry.path
        )));
    }
    let Some(principal) = principal else {
        return Err(Status::unauthenticated(
            "this call needs `authorization: Bearer <token>`",
        ));
    };
    match (mode, principal.user()) {
        (AuthMode::Sandbox, Some(_)) => {
            return Err(Status::permission_denied(
                "this call is for sandboxes: present the sandbox's token",
            ));
        }
        (AuthMode::User, None) => {
            return Err(Status::permission_denied(
                "this call is for users: a sandbox token cannot make it",
            ));
        }
        _ => {}
    }
    let Some(user) = principal.user() else {
        return Ok(());
    };
    match Role::try_from(entry.role) {
        Ok(Role::Admin) if !user.admin => {
            return Err(Status::permission_denied("this call needs the admin role"));
        }
        Ok(Role::User) if !user.user_role && !user.admin => {
            return Err(Status::permission_denied("this call needs the user role"));
        }
        _ => {}
    }
    if let Some(scopes) = &user.scopes
        && !entry.scope.is_empty()
        && !scopes.contains(entry.scope)
        && !scopes.contains(ALL_SCOPES)
    {
        return Err(Status::permission_denied(format!(
            "this call needs the `{}` scope",
            entry.scope
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_method_declares_its_auth() {
        let undeclared: Vec<_> = METHOD_AUTH
            .iter()
            .filter(|e| e.mode == AuthMode::Unspecified as i32)
            .map(|e| e.path)
            .collect();
        assert!(
            undeclared.is_empty(),
            "methods without an auth option: {undeclared:?}"
        );
        assert!(METHOD_AUTH.len() >= 19, "the table lists every method");
        for entry in METHOD_AUTH {
            if entry.mode == AuthMode::User as i32 {
                assert!(!entry.scope.is_empty(), "{} has no scope", entry.path);
                assert_ne!(entry.role, 0, "{} has no role", entry.path);
            }
        }
    }
}
