//! Compiles the wire contracts with protox (pure Rust), so no system `protoc` is needed,
//! and turns the gateway's per-method `auth` options into a Rust table.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

use prost_reflect::{DescriptorPool, Value};

const GATEWAY_SERVICE: &str = "openshell.gateway.v1.Gateway";
const AUTH_OPTION: &str = "openshell.gateway.v1.auth";

fn main() -> Result<(), Box<dyn Error>> {
    let protos = [
        "proto/compute_driver.proto",
        "proto/credentials_driver.proto",
        "proto/gateway.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true);
    compiler.open_files(protos)?;
    let table = method_auth_table(&compiler.descriptor_pool())?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("gateway_method_auth.rs"), table)?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    upstream(&out_dir)?;
    compute_encoded_server(&out_dir)?;
    Ok(())
}

/// The ComputeDriver server once more, into `$OUT_DIR/compute_encoded/`, with every
/// message the existing type except `ListSandboxesResponse` and `WatchSandboxesEvent`,
/// which are `pb::compute::encoded::ListSandboxesReply` and `WatchEvent` (sandboxes
/// already encoded; the same bytes on the wire), so a driver can answer List and the
/// Watch snapshot without cloning its cached views.
fn compute_encoded_server(out_dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.open_files(["proto/compute_driver.proto"])?;
    let dir = out_dir.join("compute_encoded");
    std::fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .build_client(false)
        .extern_path(".openshell.compute.v1", "crate::pb::compute::v1")
        .extern_path(
            ".openshell.compute.v1.ListSandboxesResponse",
            "crate::pb::compute::encoded::ListSandboxesReply",
        )
        .extern_path(
            ".openshell.compute.v1.WatchSandboxesEvent",
            "crate::pb::compute::encoded::WatchEvent",
        )
        .out_dir(dir)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// Upstream OpenShell's credential-store contract, compiled on its own into
/// `$OUT_DIR/upstream/`: its message names clash with ours in the same package.
fn upstream(out_dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let protos = [
        "proto/upstream/credential_driver.proto",
        "proto/upstream/datamodel.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true);
    compiler.open_files(["proto/upstream/credential_driver.proto"])?;
    let dir = out_dir.join("upstream");
    std::fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .out_dir(dir)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// One `MethodAuthEntry` per gateway method, in declaration order. A method without
/// the option gets mode and role 0 (unspecified), which the gateway refuses and a test
/// reports.
fn method_auth_table(pool: &DescriptorPool) -> Result<String, Box<dyn Error>> {
    let service = pool
        .get_service_by_name(GATEWAY_SERVICE)
        .ok_or("gateway.proto: service Gateway not found")?;
    let extension = pool
        .get_extension_by_name(AUTH_OPTION)
        .ok_or("gateway.proto: extension `auth` not found")?;
    let mut out = String::from(
        "/// Every Gateway method and what it requires (from its `auth` option).\npub const METHOD_AUTH: &[MethodAuthEntry] = &[\n",
    );
    for method in service.methods() {
        let options = method.options();
        let (mode, role, scope) = if options.has_extension(&extension) {
            let value = options.get_extension(&extension);
            let message = value.as_message().ok_or("auth option is not a message")?;
            let number = |field: &str| match message.get_field_by_name(field).as_deref() {
                Some(Value::EnumNumber(n)) => *n,
                _ => 0,
            };
            let scope = match message.get_field_by_name("scope").as_deref() {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            (number("mode"), number("role"), scope)
        } else {
            (0, 0, String::new())
        };
        writeln!(
            out,
            "    MethodAuthEntry {{ path: \"/{GATEWAY_SERVICE}/{}\", mode: {mode}, role: {role}, scope: {scope:?} }},",
            method.name()
        )?;
    }
    out.push_str("];\n");
    Ok(out)
}
