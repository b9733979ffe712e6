//! Running one client subcommand.

use std::collections::HashMap;
use std::io::Write as _;

use proto::pb::gateway::v1 as pb;
use serde_json::json;
use tokio_stream::StreamExt as _;

use super::cli::{
    ClientArgs, CredentialCommand, InferenceCommand, ProviderCommand, ProviderSpec, SandboxCommand,
    SandboxLogs, SandboxName,
};
use super::output::{self, emit, message};
use super::{ClientError, connect, request};
use crate::Command;

/// Runs a client subcommand; `None` when `command` is not one.
pub async fn run_client(command: &Command) -> Option<Result<(), ClientError>> {
    Some(match command {
        Command::Sandbox(sub) => sandbox(sub).await,
        Command::Provider(sub) => provider(sub).await,
        Command::Inference(sub) => inference(sub).await,
        Command::Credential(CredentialCommand::Resolve(sub)) => {
            resolve(&sub.name, &sub.client).await
        }
        Command::Apikey(sub) => super::api_keys::run(sub).await,
        Command::Gateway(sub) => super::account::gateway(sub).await,
        Command::Login(login) => super::account::login(login).await,
        Command::Logout(logout) => super::account::logout(logout).await,
        Command::Serve(_) | Command::Dev(_) => return None,
    })
}

pub(super) fn reference(sub: &SandboxName) -> pb::SandboxRef {
    if sub.id {
        pb::SandboxRef {
            id: sub.name.clone(),
            name: String::new(),
        }
    } else {
        pb::SandboxRef {
            id: String::new(),
            name: sub.name.clone(),
        }
    }
}

fn one_sandbox(args: &ClientArgs, sandbox: &pb::Sandbox) -> Result<(), ClientError> {
    emit(
        args.output,
        output::SANDBOX_HEADER,
        &[output::sandbox_row(sandbox)],
        &output::sandbox_json(sandbox),
    )?;
    Ok(())
}

async fn sandbox(command: &SandboxCommand) -> Result<(), ClientError> {
    match command {
        SandboxCommand::Create(create) => {
            let args = &create.client;
            let mut client = connect(args).await?;
            let spec = pb::SandboxSpec {
                image: create.image.clone().unwrap_or_default(),
                command: create.command.clone(),
                environment: create.environment.iter().cloned().collect(),
                workspace: create.workspace.clone().unwrap_or_default(),
                cpu_limit: create.cpu_limit.clone().unwrap_or_default(),
                memory_limit: create.memory_limit.clone().unwrap_or_default(),
                gpu_count: create.gpus,
                ..Default::default()
            };
            let call = pb::CreateSandboxRequest {
                name: create.name.clone(),
                labels: create.labels.iter().cloned().collect::<HashMap<_, _>>(),
                spec: Some(spec),
                providers: create.providers.clone(),
            };
            let mut sandbox = client
                .create_sandbox(request(call, args))
                .await?
                .into_inner();
            if create.wait {
                sandbox = wait_until_settled(args, sandbox).await?;
            }
            one_sandbox(args, &sandbox)?;
            let status = sandbox.status.clone().unwrap_or_default();
            if create.wait && status.phase == "Error" {
                let why = status
                    .conditions
                    .iter()
                    .find(|c| c.r#type == "Ready")
                    .map(|c| format!("{}: {}", c.reason, c.message))
                    .unwrap_or_else(|| "no reason given".into());
                return Err(ClientError::SandboxFailed {
                    name: sandbox.name,
                    why,
                });
            }
            Ok(())
        }
        SandboxCommand::List(with) => {
            let args = &with.client;
            let mut client = connect(args).await?;
            let list = client
                .list_sandboxes(request(pb::ListSandboxesRequest {}, args))
                .await?
                .into_inner();
            let rows: Vec<_> = list.sandboxes.iter().map(output::sandbox_row).collect();
            let json = json!(
                list.sandboxes
                    .iter()
                    .map(output::sandbox_json)
                    .collect::<Vec<_>>()
            );
            Ok(emit(args.output, output::SANDBOX_HEADER, &rows, &json)?)
        }
        SandboxCommand::Get(sub) => {
            let mut client = connect(&sub.client).await?;
            let sandbox = client
                .get_sandbox(request(reference(sub), &sub.client))
                .await?
                .into_inner();
            one_sandbox(&sub.client, &sandbox)
        }
        SandboxCommand::Stop(sub) => {
            let mut client = connect(&sub.client).await?;
            let sandbox = client
                .stop_sandbox(request(reference(sub), &sub.client))
                .await?
                .into_inner();
            one_sandbox(&sub.client, &sandbox)
        }
        SandboxCommand::Start(sub) => {
            let mut client = connect(&sub.client).await?;
            let sandbox = client
                .start_sandbox(request(reference(sub), &sub.client))
                .await?
                .into_inner();
            one_sandbox(&sub.client, &sandbox)
        }
        SandboxCommand::Delete(sub) => {
            let mut client = connect(&sub.client).await?;
            let reply = client
                .delete_sandbox(request(reference(sub), &sub.client))
                .await?
                .into_inner();
            let text = format!("sandbox {} deleted", sub.name);
            Ok(message(
                sub.client.output,
                &text,
                &json!({"deleted": reply.deleted}),
            )?)
        }
        SandboxCommand::Watch(with) => watch(&with.client).await,
        SandboxCommand::Logs(command) => logs(command).await,
        SandboxCommand::Settings(command) => super::settings::run(command).await,
    }
}

/// Follows the new sandbox until it is Ready or has failed; progress on stderr.
async fn wait_until_settled(
    args: &ClientArgs,
    sandbox: pb::Sandbox,
) -> Result<pb::Sandbox, ClientError> {
    let mut client = connect(args).await?;
    let mut events = client
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await?
        .into_inner();
    let mut last_phase = String::new();
    while let Some(event) = tokio::time::timeout(args.timeout, events.next())
        .await
        .map_err(|_| {
            tonic::Status::deadline_exceeded(format!(
                "{} did not become Ready within {:?}",
                sandbox.name, args.timeout
            ))
        })?
    {
        let Some(pb::sandbox_event::Payload::Sandbox(update)) = event?.payload else {
            continue;
        };
        if update.id != sandbox.id {
            continue;
        }
        let phase = update.status.clone().unwrap_or_default().phase;
        if phase != last_phase {
            let _ = writeln!(std::io::stderr(), "{}: {phase}", update.name);
            last_phase.clone_from(&phase);
        }
        if matches!(phase.as_str(), "Ready" | "Error" | "Stopped" | "Completed") {
            return Ok(update);
        }
    }
    Err(tonic::Status::unavailable("the watch ended before the sandbox settled").into())
}

/// Copies a sandbox's output to ours until the gateway ends the stream.
async fn logs(command: &SandboxLogs) -> Result<(), ClientError> {
    let args = &command.sandbox.client;
    let mut client = connect(args).await?;
    let mut request = request(
        pb::ReadSandboxLogsRequest {
            sandbox: Some(reference(&command.sandbox)),
            follow: command.follow,
            tail_bytes: command.tail,
        },
        args,
    );
    if command.follow {
        // The --timeout bounds each call; a followed log runs until the sandbox ends.
        request.set_timeout(std::time::Duration::from_secs(365 * 24 * 3600));
    }
    let mut chunks = client.read_sandbox_logs(request).await?.into_inner();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if chunk.stream == "stderr" {
            let mut err = std::io::stderr().lock();
            err.write_all(&chunk.data)?;
            err.flush()?;
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(&chunk.data)?;
            out.flush()?;
        }
    }
    Ok(())
}

async fn watch(args: &ClientArgs) -> Result<(), ClientError> {
    let mut client = connect(args).await?;
    let mut events = client
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await?
        .into_inner();
    while let Some(event) = events.next().await {
        let mut out = std::io::stdout().lock();
        match event?.payload {
            Some(pb::sandbox_event::Payload::Sandbox(s)) => match args.output {
                super::cli::Output::Json => writeln!(out, "{}", output::sandbox_json(&s))?,
                super::cli::Output::Table => {
                    writeln!(out, "{}", output::sandbox_row(&s).join("  "))?
                }
            },
            Some(pb::sandbox_event::Payload::DeletedId(id)) => writeln!(out, "deleted {id}")?,
            Some(pb::sandbox_event::Payload::SnapshotDone(_)) | None => {}
        }
    }
    Ok(())
}

fn provider_message(spec: &ProviderSpec) -> pb::Provider {
    pb::Provider {
        name: spec.name.clone(),
        r#type: spec.kind.clone(),
        credential: spec.credential.clone(),
        endpoint: spec.endpoint.clone(),
        config: spec.config.iter().cloned().collect(),
        access: access_message(&spec.access),
        ..Default::default()
    }
}

/// `--access CATEGORY=V1,V2` flags as the API's access attributes.
fn access_message(flags: &[(String, String)]) -> Vec<pb::AccessAttribute> {
    let mut by_category: std::collections::BTreeMap<&str, Vec<String>> =
        std::collections::BTreeMap::new();
    for (category, values) in flags {
        by_category.entry(category).or_default().extend(
            values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        );
    }
    by_category
        .into_iter()
        .map(|(category, values)| pb::AccessAttribute {
            category: category.to_owned(),
            values,
        })
        .collect()
}

async fn provider(command: &ProviderCommand) -> Result<(), ClientError> {
    let one = |args: &ClientArgs, p: &pb::Provider| -> Result<(), ClientError> {
        Ok(emit(
            args.output,
            output::PROVIDER_HEADER,
            &[output::provider_row(p)],
            &output::provider_json(p),
        )?)
    };
    match command {
        ProviderCommand::Create(spec) => {
            let mut client = connect(&spec.client).await?;
            let p = client
                .create_provider(request(provider_message(spec), &spec.client))
                .await?
                .into_inner();
            one(&spec.client, &p)
        }
        ProviderCommand::Update(update) => {
            let mut client = connect(&update.client).await?;
            let mut p = client
                .get_provider(request(
                    pb::ProviderRef {
                        name: update.name.clone(),
                    },
                    &update.client,
                ))
                .await?
                .into_inner();
            if let Some(kind) = &update.kind {
                p.r#type.clone_from(kind);
            }
            if let Some(credential) = &update.credential {
                p.credential.clone_from(credential);
            }
            if let Some(endpoint) = &update.endpoint {
                p.endpoint.clone_from(endpoint);
            }
            for key in &update.unset_config {
                p.config.remove(key);
            }
            p.config.extend(update.config.iter().cloned());
            if update.unshare {
                p.access.clear();
            } else if !update.access.is_empty() {
                p.access = access_message(&update.access);
            }
            if let Some(version) = update.version {
                p.resource_version = version;
            }
            let p = client
                .update_provider(request(p, &update.client))
                .await?
                .into_inner();
            one(&update.client, &p)
        }
        ProviderCommand::List(with) => {
            let args = &with.client;
            let mut client = connect(args).await?;
            let list = client
                .list_providers(request(pb::ListProvidersRequest {}, args))
                .await?
                .into_inner();
            let rows: Vec<_> = list.providers.iter().map(output::provider_row).collect();
            let json = json!(
                list.providers
                    .iter()
                    .map(output::provider_json)
                    .collect::<Vec<_>>()
            );
            Ok(emit(args.output, output::PROVIDER_HEADER, &rows, &json)?)
        }
        ProviderCommand::Get(sub) => {
            let mut client = connect(&sub.client).await?;
            let p = client
                .get_provider(request(
                    pb::ProviderRef {
                        name: sub.name.clone(),
                    },
                    &sub.client,
                ))
                .await?
                .into_inner();
            one(&sub.client, &p)
        }
        ProviderCommand::Delete(sub) => {
            let mut client = connect(&sub.client).await?;
            client
                .delete_provider(request(
                    pb::ProviderRef {
                        name: sub.name.clone(),
                    },
                    &sub.client,
                ))
                .await?;
            let text = format!("provider {} deleted", sub.name);
            Ok(message(
                sub.client.output,
                &text,
                &json!({"deleted": sub.name}),
            )?)
        }
        ProviderCommand::Attach(sub) | ProviderCommand::Detach(sub) => {
            let mut client = connect(&sub.client).await?;
            let call = pb::AttachmentRequest {
                sandbox: Some(pb::SandboxRef {
                    id: String::new(),
                    name: sub.sandbox.clone(),
                }),
                provider: sub.provider.clone(),
            };
            let sandbox = if matches!(command, ProviderCommand::Attach(_)) {
                client.attach_provider(request(call, &sub.client)).await?
            } else {
                client.detach_provider(request(call, &sub.client)).await?
            };
            one_sandbox(&sub.client, &sandbox.into_inner())
        }
    }
}

async fn inference(command: &InferenceCommand) -> Result<(), ClientError> {
    match command {
        InferenceCommand::Set(set) => {
            let mut client = connect(&set.client).await?;
            let headers = crate::cli::pairs("--header", &set.headers)
                .map_err(ClientError::Usage)?
                .into_iter()
                .collect();
            let call = pb::SetInferenceRouteRequest {
                provider: set.provider.clone(),
                model: set.model.clone(),
                resource_version: set.version.unwrap_or_default(),
                platform: set.platform,
                headers,
            };
            let route = client
                .set_inference_route(request(call, &set.client))
                .await?
                .into_inner();
            Ok(emit(
                set.client.output,
                output::ROUTE_HEADER,
                &[output::route_row(&route)],
                &output::route_json(&route),
            )?)
        }
        InferenceCommand::Get(with) => {
            let args = &with.client;
            let mut client = connect(args).await?;
            let route = client
                .get_inference_route(request(
                    pb::GetInferenceRouteRequest {
                        platform: with.platform,
                    },
                    args,
                ))
                .await?
                .into_inner();
            Ok(emit(
                args.output,
                output::ROUTE_HEADER,
                &[output::route_row(&route)],
                &output::route_json(&route),
            )?)
        }
        InferenceCommand::Delete(with) => {
            let args = &with.client;
            let mut client = connect(args).await?;
            client
                .delete_inference_route(request(
                    pb::DeleteInferenceRouteRequest {
                        platform: with.platform,
                    },
                    args,
                ))
                .await?;
            Ok(message(
                args.output,
                "inference route deleted",
                &json!({"deleted": true}),
            )?)
        }
        InferenceCommand::Bundle(with) => {
            let args = &with.client;
            let mut client = connect(args).await?;
            let bundle = client
                .get_inference_bundle(request(pb::GetInferenceBundleRequest {}, args))
                .await?
                .into_inner();
            let rows: Vec<_> = bundle
                .routes
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.endpoint.clone(),
                        r.model.clone(),
                        r.provider_type.clone(),
                        output::headers_cell(&r.headers),
                    ]
                })
                .collect();
            let json = json!({"routes": bundle.routes.iter().map(|r| json!({
                "name": r.name, "endpoint": r.endpoint, "model": r.model,
                "provider_type": r.provider_type, "api_key": r.api_key, "expires_at_ms": r.expires_at_ms,
                "headers": r.headers,
            })).collect::<Vec<_>>()});
            Ok(emit(
                args.output,
                &["NAME", "ENDPOINT", "MODEL", "TYPE", "HEADERS"],
                &rows,
                &json,
            )?)
        }
    }
}

async fn resolve(provider: &str, args: &ClientArgs) -> Result<(), ClientError> {
    let mut client = connect(args).await?;
    let call = pb::ResolveProviderCredentialRequest {
        provider: provider.to_owned(),
    };
    let reply = client
        .resolve_provider_credential(request(call, args))
        .await?
        .into_inner();
    let json = json!({
        "token": reply.token, "token_type": reply.token_type, "expires_at_ms": reply.expires_at_ms,
        "endpoint": reply.endpoint, "provider_type": reply.provider_type,
    });
    Ok(message(args.output, &reply.token, &json)?)
}
