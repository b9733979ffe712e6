//! The validation table: each malformed field is rejected and named.

use proto::pb::compute::v1 as pb;

use super::{Limits, reference, sandbox, workspace};

/// A change that makes a valid sandbox invalid.
type Mutation = Box<dyn FnOnce(&mut pb::DriverSandbox)>;

fn valid() -> pb::DriverSandbox {
    pb::DriverSandbox {
        id: "sb-1".into(),
        name: "demo".into(),
        workspace: "team-a".into(),
        spec: Some(pb::DriverSandboxSpec {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            environment: [("GREETING".to_owned(), "hello\nworld".to_owned())].into(),
            template: Some(pb::DriverSandboxTemplate {
                labels: [("example.com/team".to_owned(), "a".to_owned())].into(),
                resources: Some(pb::DriverResourceRequirements {
                    cpu_request: "250m".into(),
                    cpu_limit: "1".into(),
                    memory_request: "64Mi".into(),
                    memory_limit: "128Mi".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rejected_field(mutate: impl FnOnce(&mut pb::DriverSandbox)) -> String {
    let mut s = valid();
    mutate(&mut s);
    sandbox(&s).unwrap_err().field
}

fn spec(s: &mut pb::DriverSandbox) -> &mut pb::DriverSandboxSpec {
    s.spec.as_mut().unwrap()
}

fn resources(s: &mut pb::DriverSandbox) -> &mut pb::DriverResourceRequirements {
    spec(s)
        .template
        .as_mut()
        .unwrap()
        .resources
        .as_mut()
        .unwrap()
}

#[test]
fn a_valid_sandbox_passes_with_its_limits() {
    let limits = sandbox(&valid()).unwrap();
    assert_eq!(
        limits,
        Limits {
            cpu_millis: Some(1000),
            memory_bytes: Some(128 << 20)
        }
    );
}

#[test]
fn each_malformed_field_is_named() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("sandbox.id", Box::new(|s| s.id.clear())),
        ("sandbox.id", Box::new(|s| s.id = "../etc".into())),
        ("sandbox.id", Box::new(|s| s.id = "a\u{7}b".into())),
        ("sandbox.name", Box::new(|s| s.name.clear())),
        ("sandbox.name", Box::new(|s| s.name = "bad\nname".into())),
        ("sandbox.name", Box::new(|s| s.name = "Upper".into())),
        ("sandbox.name", Box::new(|s| s.name = "-dash".into())),
        ("sandbox.name", Box::new(|s| s.name = "x".repeat(64))),
        (
            "sandbox.workspace",
            Box::new(|s| s.workspace = "a/b".into()),
        ),
        (
            "sandbox.namespace",
            Box::new(|s| s.namespace = "ns\r".into()),
        ),
        ("sandbox.spec", Box::new(|s| s.spec = None)),
        (
            "sandbox.spec.log_level",
            Box::new(|s| spec(s).log_level = "loud".into()),
        ),
        (
            "sandbox.spec.command[0]",
            Box::new(|s| spec(s).command[0].clear()),
        ),
        (
            "sandbox.spec.command[2]",
            Box::new(|s| spec(s).command[2] = "a\0b".into()),
        ),
        (
            "sandbox.spec.environment[\"1X\"]",
            Box::new(|s| {
                spec(s).environment.insert("1X".into(), "v".into());
            }),
        ),
        (
            "sandbox.spec.environment[\"A-B\"]",
            Box::new(|s| {
                spec(s).environment.insert("A-B".into(), "v".into());
            }),
        ),
        (
            "sandbox.spec.sandbox_token",
            Box::new(|s| spec(s).sandbox_token = "tok\n".into()),
        ),
        (
            "sandbox.spec.template.resources.cpu_limit",
            Box::new(|s| resources(s).cpu_limit = "lots".into()),
        ),
        (
            "sandbox.spec.template.resources.memory_limit",
            Box::new(|s| resources(s).memory_limit = "5 Gi".into()),
        ),
        (
            "sandbox.spec.template.resources.cpu_request",
            Box::new(|s| resources(s).cpu_request = "2".into()),
        ),
        (
            "sandbox.spec.template.resources.memory_request",
            Box::new(|s| resources(s).memory_request = "1Gi".into()),
        ),
        (
            "sandbox.spec.template.labels[\"bad key!\"]",
            Box::new(|s| {
                spec(s)
                    .template
                    .as_mut()
                    .unwrap()
                    .labels
                    .insert("bad key!".into(), "v".into());
            }),
        ),
        (
            "sandbox.spec.template.image",
            Box::new(|s| spec(s).template.as_mut().unwrap().image = "img\n".into()),
        ),
    ];
    for (field, mutate) in cases {
        assert_eq!(rejected_field(mutate), field);
    }
}

#[test]
fn the_token_is_never_echoed_in_the_error() {
    let mut s = valid();
    spec(&mut s).sandbox_token = "s3cr3t\n".into();
    let error = sandbox(&s).unwrap_err();
    assert!(!error.to_string().contains("s3cr3t"));
}

#[test]
fn references_need_an_id_or_a_name() {
    assert_eq!(reference("", "").unwrap_err().field, "sandbox_id");
    assert!(reference("sb-1", "").is_ok());
    assert!(reference("", "demo").is_ok());
    assert_eq!(reference("", "Bad").unwrap_err().field, "sandbox_name");
    assert_eq!(workspace("").unwrap_err().field, "workspace");
    assert!(workspace("team-a").is_ok());
}

#[test]
fn argv_and_environment_beyond_the_kernel_limits_are_named_not_echoed() {
    let huge = "z".repeat(200_000);
    let field = rejected_field(|s| spec(s).command = vec!["sh".into(), huge.clone()]);
    assert_eq!(field, "sandbox.spec.command[1]");
    let field = rejected_field(|s| {
        spec(s).environment.insert("BIG".into(), huge.clone());
    });
    assert_eq!(field, "sandbox.spec.environment[\"BIG\"]");
    // Each piece fits, together they do not.
    let piece = "z".repeat(100_000);
    let field = rejected_field(|s| spec(s).command = vec![piece.clone(); 11]);
    assert_eq!(field, "sandbox.spec.command and sandbox.spec.environment");
    // A long bad name is shown by its size only.
    let mut sandbox = valid();
    spec(&mut sandbox)
        .environment
        .insert(format!("1{huge}"), "v".into());
    let error = crate::validate::sandbox(&sandbox).unwrap_err();
    assert!(!error.to_string().contains("zzzz"), "{error}");
}
