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
    use crate::auth::{Identity, Principal, SandboxIdentity, User};
    use std::collections::BTreeSet;
    use tonic::Code;

    fn entry(mode: AuthMode, role: Role, scope: &'static str) -> MethodAuthEntry {
        MethodAuthEntry {
            path: "/openshell.gateway.v1.Gateway/Test",
            mode: mode as i32,
            role: role as i32,
            scope,
        }
    }

    fn user(admin: bool, user_role: bool, scopes: Option<&[&str]>) -> Principal {
        Principal::new(Identity::User(User {
            subject: "s".into(),
            owner: "o".into(),
            admin,
            platform_admin: false,
            user_role,
            scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect::<BTreeSet<_>>()),
            bearer: None,
        }))
    }

    fn sandbox() -> Principal {
        Principal::new(Identity::Sandbox(SandboxIdentity {
            id: "sb-1".into(),
            owner: "o".into(),
        }))
    }

    #[test]
    fn decision_table() {
        use AuthMode::{Either, Sandbox, Unauthenticated, Unspecified, User as UserMode};
        let plain = user(false, true, None);
        let admin = user(true, true, None);
        let no_role = user(false, false, None);
        let scoped = user(false, true, Some(&["sandbox:read"]));
        let all = user(false, true, Some(&[ALL_SCOPES]));
        let sb = sandbox();
        let ok = None;
        let denied = Some(Code::PermissionDenied);
        let anonymous = Some(Code::Unauthenticated);
        let rows: &[(MethodAuthEntry, Option<&Principal>, Option<Code>)] = &[
            (entry(Unauthenticated, Role::Unspecified, ""), None, ok),
            (entry(Unspecified, Role::User, "x"), Some(&admin), denied),
            (entry(UserMode, Role::User, "sandbox:read"), None, anonymous),
            (
                entry(UserMode, Role::User, "sandbox:read"),
                Some(&plain),
                ok,
            ),
            (
                entry(UserMode, Role::User, "sandbox:read"),
                Some(&sb),
                denied,
            ),
            (
                entry(UserMode, Role::User, "sandbox:read"),
                Some(&no_role),
                denied,
            ),
            (
                entry(UserMode, Role::User, "sandbox:read"),
                Some(&admin),
                ok,
            ),
            (
                entry(UserMode, Role::Admin, "sandbox:read"),
                Some(&plain),
                denied,
            ),
            (
                entry(UserMode, Role::Admin, "sandbox:read"),
                Some(&admin),
                ok,
            ),
            (
                entry(UserMode, Role::User, "sandbox:read"),
                Some(&scoped),
                ok,
            ),
            (
                entry(UserMode, Role::User, "sandbox:write"),
                Some(&scoped),
                denied,
            ),
            (entry(UserMode, Role::User, "sandbox:write"), Some(&all), ok),
            (entry(Sandbox, Role::Unspecified, ""), Some(&sb), ok),
            (entry(Sandbox, Role::Unspecified, ""), Some(&admin), denied),
            (entry(Sandbox, Role::Unspecified, ""), None, anonymous),
            (entry(Either, Role::User, "provider:read"), Some(&sb), ok),
            (entry(Either, Role::User, "provider:read"), Some(&plain), ok),
            (
                entry(Either, Role::User, "provider:read"),
                Some(&no_role),
                denied,
            ),
        ];
        for (i, (entry, principal, want)) in rows.iter().enumerate() {
            let got = authorize(entry, *principal).err().map(|s| s.code());
            assert_eq!(got, *want, "row {i}: {entry:?}");
        }
    }

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
