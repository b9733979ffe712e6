//! The rules as a decision table, and the listing terms agreeing with it on every row.

use super::*;

fn attrs(pairs: &[(&str, &[&str])]) -> Attributes {
    pairs
        .iter()
        .map(|(category, values)| {
            (
                (*category).to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )
        })
        .collect()
}

const RULES: &str = r"
rules:
  - effect: forbid
    actions: [use]
    caller: {teams: [contractors]}
  - effect: permit
    actions: [read, use]
    shared_in: teams
  - effect: permit
    actions: [update]
    caller: {roles: [maintainer]}
    shared_in: teams
  - effect: forbid
    actions: [read]
    shared_in: namespaces
  - effect: permit
    actions: [read]
    caller: {roles: [auditor]}
";

#[test]
fn decision_table() {
    let rules = AccessRules::parse(RULES).unwrap();
    let ml = attrs(&[("teams", &["ml"])]);
    let ml_infra = attrs(&[("teams", &["ml", "infra"])]);
    let ops = attrs(&[("teams", &["ops"])]);
    let contractor_ml = attrs(&[("teams", &["ml", "contractors"])]);
    let maintainer_ml = attrs(&[("teams", &["ml"]), ("roles", &["maintainer"])]);
    let auditor = attrs(&[("roles", &["auditor"])]);
    let auditor_gold = attrs(&[("roles", &["auditor"]), ("namespaces", &["gold"])]);
    let nobody = Attributes::new();
    let shared_ml = attrs(&[("teams", &["ml"])]);
    let shared_infra_gold = attrs(&[("teams", &["infra"]), ("namespaces", &["gold"])]);
    let unshared = Attributes::new();
    use Action::{Delete, Read, Update, Use};
    let rows: &[(&str, &Attributes, &Attributes, Action, bool)] = &[
        ("teammate reads", &ml, &shared_ml, Read, true),
        ("teammate uses", &ml, &shared_ml, Use, true),
        (
            "one shared team of several",
            &ml_infra,
            &shared_infra_gold,
            Use,
            true,
        ),
        ("other team", &ops, &shared_ml, Read, false),
        ("no attributes", &nobody, &shared_ml, Read, false),
        ("object shared with nobody", &ml, &unshared, Read, false),
        ("teammate may not update", &ml, &shared_ml, Update, false),
        (
            "nobody deletes by rule",
            &maintainer_ml,
            &shared_ml,
            Delete,
            false,
        ),
        (
            "maintainer teammate updates",
            &maintainer_ml,
            &shared_ml,
            Update,
            true,
        ),
        (
            "forbid first: contractor cannot use",
            &contractor_ml,
            &shared_ml,
            Use,
            false,
        ),
        (
            "forbid covers only its action: contractor reads",
            &contractor_ml,
            &shared_ml,
            Read,
            true,
        ),
        (
            "auditor reads anything not forbidden",
            &auditor,
            &unshared,
            Read,
            true,
        ),
        ("auditor does not use", &auditor, &unshared, Use, false),
        (
            "forbid before the auditor's permit",
            &auditor_gold,
            &shared_infra_gold,
            Read,
            false,
        ),
        (
            "auditor outside the forbidden namespace",
            &auditor_gold,
            &shared_ml,
            Read,
            true,
        ),
    ];
    for (what, caller, object, action, allowed) in rows {
        assert_eq!(rules.permits(caller, object, *action), *allowed, "{what}");
        let terms = rules.list_terms(caller, *action);
        assert_eq!(
            terms_admit(&terms, object),
            *allowed,
            "{what}: the listing's terms say the same"
        );
    }
    assert!(
        !AccessRules::default().permits(&ml, &shared_ml, Read),
        "no rules: owner or admin only"
    );
}

#[test]
fn bad_rules_name_what_is_wrong() {
    let unknown = AccessRules::parse("rules: [{effect: allow, actions: [read]}]").unwrap_err();
    assert!(unknown.contains("allow"), "{unknown}");
    let no_actions = AccessRules::parse("rules: [{effect: permit, actions: []}]").unwrap_err();
    assert!(no_actions.contains("rules[0]"), "{no_actions}");
    let bad_category =
        AccessRules::parse("rules: [{effect: permit, actions: [read], shared_in: \"a/b\"}]")
            .unwrap_err();
    assert!(bad_category.contains("a/b"), "{bad_category}");
    let typo =
        AccessRules::parse("rules: [{effect: permit, actions: [read], sharedin: t}]").unwrap_err();
    assert!(typo.contains("sharedin"), "{typo}");
    assert!(check_name("ml_team-1.x@corp:eu").is_ok());
    for bad in ["", "a b", "a\"b", "a/b", "%", &"x".repeat(64)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}
