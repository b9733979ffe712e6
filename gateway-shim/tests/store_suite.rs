//! The store's one test suite, run on every backend: SQLite in memory, SQLite in a
//! file, and a real PostgreSQL server started for the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use conformance::postgres::PostgresPeer;
use gateway_shim::store::{Filter, Kind, Record, Store, StoreError};

fn record(key: &str, name: &str, owner: &str, body: &[u8]) -> Record {
    let mut r = Record::new(Kind::Provider, key, name, owner);
    r.body = body.to_vec();
    r
}

async fn create_get_list(store: &Store) {
    let mut r = record("alice/openai", "openai", "alice", b"one");
    r.labels = BTreeMap::from([("team".to_owned(), "ü-ml".to_owned())]);
    assert_eq!(store.create(&r).await.unwrap(), 1);
    let got = store
        .get(Kind::Provider, "alice/openai")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.version, got.body.as_slice()), (1, &b"one"[..]));
    assert_eq!(got.labels, r.labels);
    let by_name = store
        .get_by_name(Kind::Provider, "alice", "openai")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.key, "alice/openai");
    assert!(
        store
            .get(Kind::Sandbox, "alice/openai")
            .await
            .unwrap()
            .is_none(),
        "kinds are separate"
    );
    assert!(store.get(Kind::Provider, "nope").await.unwrap().is_none());
    assert_eq!(
        store
            .list(Kind::Provider, &Filter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn create_is_must_create(store: &Store) {
    store
        .create(&record("k1", "n", "alice", b"a"))
        .await
        .unwrap();
    let again = store.create(&record("k1", "other", "bob", b"b")).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    let same_name = store.create(&record("k2", "n", "alice", b"b")).await;
    assert!(
        matches!(same_name, Err(StoreError::AlreadyExists { .. })),
        "{same_name:?}"
    );
    store.create(&record("k3", "n", "bob", b"c")).await.unwrap();
    let kept = store.get(Kind::Provider, "k1").await.unwrap().unwrap();
    assert_eq!(kept.body, b"a", "a refused create changes nothing");
}

async fn update_matches_the_version(store: &Store) {
    store
        .create(&record("k", "n", "alice", b"v1"))
        .await
        .unwrap();
    let mut read = store.get(Kind::Provider, "k").await.unwrap().unwrap();
    read.body = b"v2".to_vec();
    assert_eq!(store.update(&read).await.unwrap(), 2);
    read.body = b"stale".to_vec();
    let stale = store.update(&read).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { expected: 1, .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.get(Kind::Provider, "k").await.unwrap().unwrap().body,
        b"v2"
    );
    let mut missing = record("gone", "g", "alice", b"");
    missing.version = 1;
    assert!(matches!(
        store.update(&missing).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn two_writers_of_one_version_one_is_aborted(store: &Store) {
    store
        .create(&record("k", "n", "alice", b"0"))
        .await
        .unwrap();
    let mut first = store.get(Kind::Provider, "k").await.unwrap().unwrap();
    let mut second = first.clone();
    first.body = b"first".to_vec();
    second.body = b"second".to_vec();
    store.update(&first).await.unwrap();
    let lost = store.update(&second).await.unwrap_err();
    assert_eq!(
        gateway_shim::api::error::ApiError::from(lost).code(),
        tonic::Code::Aborted
    );
    assert_eq!(
        store.get(Kind::Provider, "k").await.unwrap().unwrap().body,
        b"first"
    );
}

async fn delete_is_conditional(store: &Store) {
    store.create(&record("k", "n", "alice", b"")).await.unwrap();
    let stale = store.delete(Kind::Provider, "k", Some(7)).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert!(store.delete(Kind::Provider, "k", Some(1)).await.unwrap());
    assert!(!store.delete(Kind::Provider, "k", Some(1)).await.unwrap());
    assert!(!store.delete(Kind::Provider, "k", None).await.unwrap());
    store.create(&record("k", "n", "alice", b"")).await.unwrap();
    assert!(
        store.delete(Kind::Provider, "k", None).await.unwrap(),
        "the key is free again"
    );
}

async fn counts_stop_at_their_limit_and_are_per_owner(store: &Store) {
    for n in 0..5 {
        let key = format!("alice/p{n}");
        store
            .create(&record(&key, &key, "alice", b""))
            .await
            .unwrap();
    }
    store
        .create(&record("bob/p", "p", "bob", b""))
        .await
        .unwrap();
    let alice = |limit| store.count_up_to(Kind::Provider, "alice", limit);
    assert_eq!(alice(3).await.unwrap(), 3);
    assert_eq!(alice(5).await.unwrap(), 5);
    assert_eq!(alice(10).await.unwrap(), 5);
    assert_eq!(alice(0).await.unwrap(), 0);
    assert_eq!(store.count(Kind::Provider, "alice").await.unwrap(), 5);
    assert_eq!(store.count(Kind::Provider, "bob").await.unwrap(), 1);
    assert_eq!(store.count(Kind::Sandbox, "alice").await.unwrap(), 0);
}

async fn list_filters_by_owner(store: &Store) {
    for (key, owner) in [
        ("alice/a1", "alice"),
        ("bob/b1", "bob"),
        ("alice/a2", "alice"),
        ("s", "root"),
        ("bob's-own-100%_", "bob"),
    ] {
        store.create(&record(key, key, owner, b"")).await.unwrap();
    }
    let keys = |records: Vec<Record>| records.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let alice = Filter {
        owners: Some(vec!["alice".into(), String::new()]),
        shared: false,
        ..Default::default()
    };
    assert_eq!(
        keys(store.list(Kind::Provider, &alice).await.unwrap()),
        ["alice/a1", "alice/a2"]
    );
    // Shared: also keys without `/` (the filter runs in SQL; `%` and `_` in keys are
    // not wildcards of the query's own pattern).
    let with_shared = Filter {
        owners: Some(vec!["alice".into()]),
        shared: true,
        ..Default::default()
    };
    assert_eq!(
        keys(store.list(Kind::Provider, &with_shared).await.unwrap()),
        ["alice/a1", "alice/a2", "bob's-own-100%_", "s"]
    );
    let nobody = Filter {
        owners: Some(Vec::new()),
        shared: false,
        ..Default::default()
    };
    assert!(
        store
            .list(Kind::Provider, &nobody)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys(
            store
                .list(Kind::Provider, &Filter::default())
                .await
                .unwrap()
        ),
        ["alice/a1", "alice/a2", "bob's-own-100%_", "bob/b1", "s"]
    );
    for record in store.list(Kind::Provider, &with_shared).await.unwrap() {
        assert!(
            with_shared.admits(&record.key, &record.owner, &record.labels),
            "{}",
            record.key
        );
    }
}

/// Eight writers increment one counter 25 times each with read-modify-write; every
/// conflict is retried. No increment may be lost.
async fn concurrent_increments_lose_nothing(store: &Store) {
    store
        .create(&record("counter", "counter", "alice", b"0"))
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..25 {
                loop {
                    let mut r = store.get(Kind::Provider, "counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&r.body).unwrap().parse().unwrap();
                    r.body = (n + 1).to_string().into_bytes();
                    match store.update(&r).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(other) => panic!("{other}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let r = store.get(Kind::Provider, "counter").await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        "200",
        "({conflicts} conflicts retried)"
    );
    assert_eq!(r.version, 201);
}

/// A write with deferred durability is a whole commit like any other: visible at once,
/// still checked (a taken name, a missing reference), serialized with synced writes
/// racing it, and confirmed by the synced write that follows it.
async fn a_deferred_write_commits_like_any_other(store: &Store) {
    use gateway_shim::store::{Durability, Write};
    store
        .create(&record("openai", "openai", "alice", b"p"))
        .await
        .unwrap();
    let deferred = |record: Record, requires: &'static [(Kind, &'static str, &'static str)]| {
        let store = store.clone();
        async move {
            store
                .write_if_present_with(Write::Create(&record), requires, Durability::Deferred)
                .await
        }
    };
    const REQUIRED: &[(Kind, &str, &str)] = &[(Kind::Provider, "default", "openai")];
    const MISSING: &[(Kind, &str, &str)] = &[(Kind::Provider, "default", "gone")];
    let mut sandbox = Record::new(Kind::Sandbox, "sb-1", "one", "alice");
    sandbox.body = b"pending".to_vec();
    assert_eq!(deferred(sandbox.clone(), REQUIRED).await.unwrap(), 1);
    let read = store.get(Kind::Sandbox, "sb-1").await.unwrap().unwrap();
    assert_eq!((read.body.as_slice(), read.version), (&b"pending"[..], 1));
    let mut same_name = Record::new(Kind::Sandbox, "sb-2", "one", "alice");
    same_name.body = b"x".to_vec();
    assert!(matches!(
        deferred(same_name.clone(), REQUIRED).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    same_name.name = "two".into();
    assert!(matches!(
        deferred(same_name, MISSING).await,
        Err(StoreError::MissingReference { .. })
    ));
    assert!(store.get(Kind::Sandbox, "sb-2").await.unwrap().is_none());
    let mut confirmed = read;
    confirmed.body = b"created".to_vec();
    assert_eq!(store.update(&confirmed).await.unwrap(), 2);
    // Deferred creates, each confirmed by a synced update, racing synced updates of
    // one record: nothing lost, every write applied once.
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        let create = deferred(
            {
                let mut r = Record::new(
                    Kind::Sandbox,
                    format!("race-{n}"),
                    format!("race-{n}"),
                    "bob",
                );
                r.body = b"pending".to_vec();
                r
            },
            REQUIRED,
        );
        tasks.push(tokio::spawn(async move {
            let version = create.await.unwrap();
            let mut r = store
                .get(Kind::Sandbox, &format!("race-{n}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.version, version);
            r.body = b"created".to_vec();
            store.update(&r).await.unwrap();
            loop {
                let mut p = store.get(Kind::Provider, "openai").await.unwrap().unwrap();
                p.body.push(b'+');
                match store.update(&p).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(other) => panic!("{other}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let raced = store
        .list(
            Kind::Sandbox,
            &Filter {
                owners: Some(vec!["bob".into()]),
                ..Filter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(raced.len(), 16);
    assert!(raced.iter().all(|r| r.body == b"created" && r.version == 2));
    let provider = store.get(Kind::Provider, "openai").await.unwrap().unwrap();
    assert_eq!(provider.body, b"p++++++++++++++++");
}

/// Every read and write of a handle is confined to its tenant: one key, one owner's
/// name, in two tenants are two records; a handle never sees, changes or deletes
/// another tenant's.
async fn tenants_are_a_hard_partition(store: &Store) {
    let (acme, globex) = (store.in_tenant("acme"), store.in_tenant("globex"));
    acme.create(&record("openai", "openai", "alice", b"acme"))
        .await
        .unwrap();
    globex
        .create(&record("openai", "openai", "alice", b"globex"))
        .await
        .unwrap();
    for (handle, body) in [(&acme, &b"acme"[..]), (&globex, &b"globex"[..])] {
        let got = handle.get(Kind::Provider, "openai").await.unwrap().unwrap();
        assert_eq!(
            (got.body.as_slice(), got.tenant.as_str()),
            (body, handle.tenant())
        );
        let by_name = handle
            .get_by_name(Kind::Provider, "alice", "openai")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_name.body, body);
        let listed = handle
            .list(Kind::Provider, &Filter::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{}", handle.tenant());
        assert_eq!(handle.count(Kind::Provider, "alice").await.unwrap(), 1);
    }
    assert!(store.get(Kind::Provider, "openai").await.unwrap().is_none());
    // globex's handle, holding acme's record at its version, changes nothing of acme's.
    let mut theirs = acme.get(Kind::Provider, "openai").await.unwrap().unwrap();
    theirs.version = acme.update(&theirs).await.unwrap();
    theirs.body = b"hijacked".to_vec();
    assert!(matches!(
        globex.update(&theirs).await,
        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. })
    ));
    let globex_version = globex
        .get(Kind::Provider, "openai")
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(globex_version, 1);
    assert!(globex.delete(Kind::Provider, "openai", None).await.unwrap());
    let kept = acme.get(Kind::Provider, "openai").await.unwrap().unwrap();
    assert_eq!((kept.body.as_slice(), kept.version), (&b"acme"[..], 2));
    // A guarded write checks the required record in the tenant it names.
    let mut sandbox = Record::new(Kind::Sandbox, "sb-1", "one", "alice");
    sandbox.body = b"s".to_vec();
    let missing = globex
        .write_if_present(
            gateway_shim::store::Write::Create(&sandbox),
            &[(Kind::Provider, "globex", "openai")],
        )
        .await;
    assert!(matches!(missing, Err(StoreError::MissingReference { .. })));
    globex
        .write_if_present(
            gateway_shim::store::Write::Create(&sandbox),
            &[(Kind::Provider, "acme", "openai")],
        )
        .await
        .unwrap();
    let every: Vec<(String, String)> = store
        .list_every_tenant(Kind::Sandbox)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.tenant, r.key))
        .collect();
    assert_eq!(every, [("globex".to_owned(), "sb-1".to_owned())]);
    // A referrer in another tenant is seen (with its tenant) by a guarded delete.
    let found = acme
        .delete_unless_referenced(
            Kind::Provider,
            "openai",
            kept.version,
            &[Kind::Sandbox],
            &|r| r.tenant == "globex",
        )
        .await;
    assert!(matches!(found, Err(StoreError::Referenced { .. })));
}

/// Listings admit what the attribute rules admit, in SQL, exactly as
/// [`Filter::admits`] says: first matching term decides, and neither a label value nor
/// a label key spelled to look like an access label counts.
async fn list_follows_the_attribute_rules(store: &Store) {
    use gateway_shim::store::{AccessTerm, access_label};
    let ml = access_label("teams", "ml");
    let ops = access_label("teams", "ops");
    let gold = access_label("ns", "gold");
    let labelled: &[(&str, &[(&str, &str)])] = &[
        ("bob/ml", &[(&ml, "")]),
        ("bob/ml-gold", &[(&ml, ""), (&gold, "")]),
        ("bob/ops", &[(&ops, "")]),
        ("bob/none", &[]),
        (
            "bob/fake-value",
            &[("note", "{\"openshell.io/access/teams/ml\":\"\"}")],
        ),
        (
            "bob/fake-key",
            &[("x\",\"openshell.io/access/teams/ml", "")],
        ),
        ("bob/case", &[(&access_label("teams", "ML"), "")]),
        ("alice/own", &[]),
    ];
    for (key, labels) in labelled {
        let mut r = record(key, key, key.split('/').next().unwrap(), b"");
        r.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        store.create(&r).await.unwrap();
    }
    let term = |permit: bool, labels: Option<Vec<&String>>| AccessTerm {
        permit,
        labels: labels.map(|l| l.into_iter().cloned().collect()),
    };
    let cases: Vec<(&str, Vec<AccessTerm>, &[&str])> = vec![
        ("no rules", vec![], &["alice/own"]),
        (
            "teammates of ml",
            vec![term(true, Some(vec![&ml]))],
            &["alice/own", "bob/ml", "bob/ml-gold"],
        ),
        (
            "forbid gold first",
            vec![
                term(false, Some(vec![&gold])),
                term(true, Some(vec![&ml, &ops])),
            ],
            &["alice/own", "bob/ml", "bob/ops"],
        ),
        (
            "permit first wins over a later forbid",
            vec![term(true, Some(vec![&ml])), term(false, Some(vec![&ml]))],
            &["alice/own", "bob/ml", "bob/ml-gold"],
        ),
        (
            "a caller with no values",
            vec![term(true, Some(vec![]))],
            &["alice/own"],
        ),
        (
            "everything but ops",
            vec![term(false, Some(vec![&ops])), term(true, None)],
            &[
                "alice/own",
                "bob/case",
                "bob/fake-key",
                "bob/fake-value",
                "bob/ml",
                "bob/ml-gold",
                "bob/none",
            ],
        ),
    ];
    for (what, rules, expected) in cases {
        let filter = Filter {
            owners: Some(vec!["alice".into()]),
            shared: false,
            rules,
        };
        let listed = store.list(Kind::Provider, &filter).await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, expected, "{what}");
        for record in store
            .list(Kind::Provider, &Filter::default())
            .await
            .unwrap()
        {
            assert_eq!(
                filter.admits(&record.key, &record.owner, &record.labels),
                expected.contains(&record.key.as_str()),
                "{what}: {} (in memory as in SQL)",
                record.key
            );
        }
    }
}

/// Usage rows of any tenant: counted by method, outcome and source, in total or per
/// UTC day, from a time on; the latest first; concurrent appends all land; a caller
/// sees only its own.
async fn usage_counts_add_up_by_day_and_in_total(store: &Store) {
    use gateway_shim::store::{UsageEvent, UsageQuery};
    const DAY: i64 = 86_400_000;
    let event =
        |at_ms: i64, caller: &str, method: &str, outcome: &str, credential: &str| UsageEvent {
            at_ms,
            tenant: if caller == "key.bot" {
                "acme"
            } else {
                "globex"
            }
            .into(),
            caller: caller.into(),
            method: method.into(),
            outcome: outcome.into(),
            credential: credential.into(),
            sandbox: String::new(),
        };
    // Day 20_000 (2024-10-04): two resolves (one fresh, one cached), one create; the
    // next day: three cached resolves, of which one at the day's last millisecond.
    let day = 20_000 * DAY;
    let mut events = vec![
        event(
            day + 5,
            "key.bot",
            "ResolveProviderCredential",
            "OK",
            "fresh",
        ),
        event(
            day + 9,
            "key.bot",
            "ResolveProviderCredential",
            "OK",
            "cached",
        ),
        event(day + 10, "key.bot", "CreateSandbox", "OK", ""),
        event(
            day + DAY,
            "key.bot",
            "ResolveProviderCredential",
            "OK",
            "cached",
        ),
        event(
            day + DAY + 1,
            "key.bot",
            "ResolveProviderCredential",
            "OK",
            "cached",
        ),
        event(
            day + 2 * DAY - 1,
            "key.bot",
            "ResolveProviderCredential",
            "OK",
            "cached",
        ),
        event(day + DAY, "key.other", "CreateSandbox", "NOT_FOUND", ""),
    ];
    store.append_usage(&events).await.unwrap();
    // 8 writers of 250 rows each at once (two statements each): every row lands.
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        let batch: Vec<_> = (0..250)
            .map(|i| {
                event(
                    day + 3 * DAY + i,
                    "key.many",
                    "GetInferenceBundle",
                    "OK",
                    "",
                )
            })
            .collect();
        writers.spawn(async move { store.append_usage(&batch).await.unwrap() });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.at_ms));

    let query = |since_ms| UsageQuery {
        caller: "key.bot".into(),
        since_ms,
    };
    let totals: Vec<_> = store
        .usage_counts(&query(0), false)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.day, c.method, c.outcome, c.credential, c.count))
        .collect();
    let row = |day: Option<i64>, method: &str, credential: &str, count: u64| {
        (
            day,
            method.to_owned(),
            "OK".to_owned(),
            credential.to_owned(),
            count,
        )
    };
    assert_eq!(
        totals,
        [
            row(None, "CreateSandbox", "", 1),
            row(None, "ResolveProviderCredential", "cached", 4),
            row(None, "ResolveProviderCredential", "fresh", 1),
        ]
    );
    let days: Vec<_> = store
        .usage_counts(&query(0), true)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.day, c.method, c.outcome, c.credential, c.count))
        .collect();
    assert_eq!(
        days,
        [
            row(Some(20_000), "CreateSandbox", "", 1),
            row(Some(20_000), "ResolveProviderCredential", "cached", 1),
            row(Some(20_000), "ResolveProviderCredential", "fresh", 1),
            row(Some(20_001), "ResolveProviderCredential", "cached", 3),
        ]
    );
    let since: u64 = store
        .usage_counts(&query(day + 9), false)
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(since, 5, "from a time on, that time included");
    let many: u64 = store
        .usage_counts(
            &UsageQuery {
                caller: "key.many".into(),
                since_ms: 0,
            },
            false,
        )
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(many, 2_000);

    let recent = store.recent_usage("key.bot", 2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].at_ms, day + 2 * DAY - 1, "the latest first");
    assert_eq!(recent[1].at_ms, day + DAY + 1);
    assert_eq!(recent[0].tenant, "acme");
    let all = store.recent_usage("key.bot", 100).await.unwrap();
    let expected: Vec<_> = events
        .into_iter()
        .filter(|e| e.caller == "key.bot")
        .collect();
    assert_eq!(all, expected);
}

type Case = for<'a> fn(&'a Store) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

const CASES: &[(&str, Case)] = &[
    ("create_get_list", |s| Box::pin(create_get_list(s))),
    ("create_is_must_create", |s| {
        Box::pin(create_is_must_create(s))
    }),
    ("update_matches_the_version", |s| {
        Box::pin(update_matches_the_version(s))
    }),
    ("two_writers_of_one_version_one_is_aborted", |s| {
        Box::pin(two_writers_of_one_version_one_is_aborted(s))
    }),
    ("delete_is_conditional", |s| {
        Box::pin(delete_is_conditional(s))
    }),
    ("list_filters_by_owner", |s| {
        Box::pin(list_filters_by_owner(s))
    }),
    ("concurrent_increments_lose_nothing", |s| {
        Box::pin(concurrent_increments_lose_nothing(s))
    }),
    ("tenants_are_a_hard_partition", |s| {
        Box::pin(tenants_are_a_hard_partition(s))
    }),
    ("list_follows_the_attribute_rules", |s| {
        Box::pin(list_follows_the_attribute_rules(s))
    }),
    ("usage_counts_add_up_by_day_and_in_total", |s| {
        Box::pin(usage_counts_add_up_by_day_and_in_total(s))
    }),
    ("a_deferred_write_commits_like_any_other", |s| {
        Box::pin(a_deferred_write_commits_like_any_other(s))
    }),
    ("counts_stop_at_their_limit_and_are_per_owner", |s| {
        Box::pin(counts_stop_at_their_limit_and_are_per_owner(s))
    }),
];

/// Runs every case on a fresh database from `open`, naming the case that fails.
async fn run_suite<F, Fut>(mut open: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    for (name, case) in CASES {
        eprintln!("store case: {name}");
        let store = open(name).await;
        case(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_passes_on_sqlite_in_memory() {
    run_suite(|_| async { Store::open("sqlite::memory:").await.unwrap() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_passes_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run_suite(|name| {
        let url = format!("sqlite:{}", path.join(format!("{name}.db")).display());
        async move { Store::open(&url).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_passes_on_postgresql() {
    let peer = PostgresPeer::start().unwrap();
    run_suite(|name| {
        let url = peer.fresh_database(name).unwrap();
        async move { Store::open(&url).await.unwrap() }
    })
    .await;
}

/// Records survive a restart, and migrations run once however often the store opens.
#[tokio::test]
async fn records_survive_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("gw.db").display());
    Store::open(&url)
        .await
        .unwrap()
        .create(&record("k", "n", "o", b"kept"))
        .await
        .unwrap();
    let reopened = Store::open(&url).await.unwrap();
    assert_eq!(
        reopened
            .get(Kind::Provider, "k")
            .await
            .unwrap()
            .unwrap()
            .body,
        b"kept"
    );

    let peer = PostgresPeer::start().unwrap();
    let pg = peer.fresh_database("reopen").unwrap();
    Store::open(&pg)
        .await
        .unwrap()
        .create(&record("k", "n", "o", b"pg"))
        .await
        .unwrap();
    let again = Store::open(&pg).await.unwrap();
    assert_eq!(
        again.get(Kind::Provider, "k").await.unwrap().unwrap().body,
        b"pg"
    );
}

/// How many openers race on each fresh database, and how many fresh databases.
const OPENERS: usize = 8;
const ROUNDS: usize = 50;

/// Opens `url` from [`OPENERS`] tasks at once; every open must succeed.
async fn open_all_at_once(url: &str) {
    let start = Arc::new(tokio::sync::Barrier::new(OPENERS));
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..OPENERS {
        let (url, start) = (url.to_owned(), Arc::clone(&start));
        opens.spawn(async move {
            start.wait().await;
            Store::open(&url).await
        });
    }
    while let Some(opened) = opens.join_next().await {
        if let Err(error) = opened.unwrap() {
            panic!("one of {OPENERS} concurrent opens of {url} failed: {error}");
        }
    }
}

/// Replicas starting together on one fresh PostgreSQL database: eight openers at once,
/// fifty fresh databases in a row; all open, and each database ends with exactly the
/// migrations a lone opener records.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_fresh_postgresql_database_all_succeed() {
    let peer = PostgresPeer::start().unwrap();
    let reference = peer.fresh_database("reference").unwrap();
    drop(Store::open(&reference).await.unwrap());
    let expected = peer
        .psql_in(
            "reference",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
        )
        .unwrap();
    assert!(!expected.is_empty(), "a lone opener records its migrations");
    for round in 0..ROUNDS {
        let name = format!("race{round}");
        let url = peer.fresh_database(&name).unwrap();
        open_all_at_once(&url).await;
        let applied = peer
            .psql_in(
                &name,
                "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
            )
            .unwrap();
        assert_eq!(
            applied, expected,
            "round {round}: migrations recorded once each"
        );
    }
}

/// The same for SQLite: eight pools (as eight processes would) opening one fresh file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_fresh_sqlite_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let url = format!(
            "sqlite:{}",
            dir.path().join(format!("race{round}.db")).display()
        );
        open_all_at_once(&url).await;
        let store = Store::open(&url).await.unwrap();
        store.create(&record("k", "n", "o", b"x")).await.unwrap();
        assert_eq!(
            store.get(Kind::Provider, "k").await.unwrap().unwrap().body,
            b"x"
        );
    }
}

#[tokio::test]
async fn a_bad_url_names_the_flag_and_hides_the_password() {
    let error = Store::open("mysql://u:hunter2@h/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("--db-url"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

/// A database as the gateway left it before tenants (schema steps 1 and 2), with a
/// user's provider and the signing-key setting.
const BEFORE_TENANTS: &[&str] = &[
    "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY)",
    "INSERT INTO schema_migrations (version) VALUES (1), (2)",
    "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL,
        owner TEXT NOT NULL, labels TEXT NOT NULL, body BLOBTYPE NOT NULL,
        version BIGINT NOT NULL, PRIMARY KEY (kind, key), UNIQUE (kind, owner, name))",
    "CREATE INDEX objects_by_owner ON objects (kind, owner, key)",
    "INSERT INTO objects VALUES ('provider', 'alice/openai', 'alice/openai', 'alice', '{}', BODY, 3)",
    "INSERT INTO objects VALUES ('setting', 'sandbox-token-key', 'sandbox-token-key', '', '{}', BODY, 1)",
];

async fn records_before_tenants_are_the_default_tenant_s(url: &str) {
    let store = Store::open(url).await.unwrap();
    let provider = store
        .get(Kind::Provider, "alice/openai")
        .await
        .unwrap()
        .expect("the provider is in the default tenant");
    assert_eq!((provider.version, provider.tenant.as_str()), (3, "default"));
    assert!(
        store
            .in_tenant("acme")
            .get(Kind::Provider, "alice/openai")
            .await
            .unwrap()
            .is_none()
    );
    let platform = store.in_tenant(gateway_shim::store::PLATFORM_TENANT);
    assert!(
        platform
            .get(Kind::Setting, "sandbox-token-key")
            .await
            .unwrap()
            .is_some(),
        "gateway settings move to the platform's partition"
    );
    // The migrated table takes new tenants' records under the same key.
    store
        .in_tenant("acme")
        .create(&record("alice/openai", "alice/openai", "alice", b"x"))
        .await
        .unwrap();
}

/// Stores from before tenants open with every record in the default tenant, on SQLite
/// and on PostgreSQL.
#[tokio::test]
async fn a_store_from_before_tenants_keeps_its_records_in_the_default_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.db");
    {
        use sqlx::ConnectOptions as _;
        use std::str::FromStr as _;
        let mut conn =
            sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite:{}", file.display()))
                .unwrap()
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
        for statement in BEFORE_TENANTS {
            let sql = statement
                .replace("BLOBTYPE", "BLOB")
                .replace("BODY", "x'00'");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    records_before_tenants_are_the_default_tenant_s(&format!("sqlite:{}", file.display())).await;

    let peer = PostgresPeer::start().unwrap();
    let url = peer.fresh_database("before_tenants").unwrap();
    for statement in BEFORE_TENANTS {
        let sql = statement
            .replace("BLOBTYPE", "BYTEA")
            .replace("BODY", "'\\x00'::bytea");
        peer.psql_in("before_tenants", &sql).unwrap();
    }
    records_before_tenants_are_the_default_tenant_s(&url).await;
}

/// Callers giving up mid-query (writes and reads, at every step) never lose the
/// in-memory database (its only pooled connection may be closed and reopened), nor
/// leave a half-done write on any backend kind a test uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_store_survives_callers_giving_up_mid_query() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store
        .create(&record("kept", "kept", "alice", b"k"))
        .await
        .unwrap();
    for step in 0..200u64 {
        let key = format!("r{step}");
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(step * 5),
            store.create(&record(&key, &key, "alice", b"x")),
        )
        .await;
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(step * 5),
            store.list(Kind::Provider, &Default::default()),
        )
        .await;
    }
    let kept = store.get(Kind::Provider, "kept").await.unwrap();
    assert!(kept.is_some(), "the database outlived the abandoned calls");
    // Each abandoned create either happened whole or not at all.
    for record in store
        .list(Kind::Provider, &Default::default())
        .await
        .unwrap()
    {
        assert_eq!(record.name, record.key);
        assert_eq!(record.version, 1);
    }
}
