//! Parsed flags (`cli::RunArgs`) → the engine's validated `Task` and `Policy`, built
//! once, where every usage error is found before anything runs (ripgrep's low → high
//! args). This and `cli` are the only modules that know clap's types.

use std::ffi::OsString;

use anyhow::Result;

use crate::cli::{self, RunArgs};
use crate::deps::files::FileSpecs;
use crate::deps::url::{self, UrlOptions, UrlSpec};
use crate::engine::{
    CacheControl, ChildEnv, ExecKey, Failures, KeyReuse, Policy, Task, TraceMode, Tracing,
    UrlOffline, Wait,
};
use crate::exit::usage;
use crate::outputs::OutputSpecs;
use crate::spec::{TaskSpec, TraceKey, Workspace};
use crate::store::remote::RemoteConfig;
use crate::ui::progress;

/// The task `args` describe; usage errors (exit 2) for anything malformed.
pub fn task(args: &RunArgs) -> Result<Task> {
    if args.command.is_empty() {
        return Err(usage(
            "missing command: put it after `--`, as in `-f src/ -- make`",
        ));
    }
    if args.command[0].is_empty() {
        return Err(usage("empty command name after `--`"));
    }
    let ws = Workspace::resolve(args.root.as_deref()).map_err(|e| usage(format!("{e:#}")))?;
    for name in args.envs.iter().chain(&args.pass_envs) {
        crate::deps::env::validate(name).map_err(|e| usage(e.to_string()))?;
    }
    let files = FileSpecs::parse(&args.files, &ws).map_err(|e| usage(format!("{e:#}")))?;
    let mut outputs =
        OutputSpecs::parse(&args.outputs, &ws).map_err(|e| usage(format!("{e:#}")))?;
    outputs
        .check_not_inputs(files.includes())
        .map_err(|e| usage(e.to_string()))?;
    let urls = url_specs(args)?;
    if !urls.is_empty() && args.url_timeout.is_zero() {
        return Err(usage(
            "--url-timeout must be longer than 0 (for example 5s)",
        ));
    }
    if args.key.is_none() && args.max_runs != 1 {
        return Err(usage("--max-runs only makes sense with --key"));
    }
    if args.key.as_deref() == Some("") {
        return Err(usage("--key needs a non-empty value"));
    }
    let trace = tracing(args)?;
    if trace.as_ref().is_some_and(|t| t.mode == TraceMode::Record) {
        let cache_dir = crate::store::cache_dir(args.cache.cache_dir.as_deref())
            .ok()
            .map(|d| ws.absolute(&d));
        outputs.allow_traced(&ws, cache_dir);
    }
    let headers = url_headers(args, !urls.is_empty())?;
    let spec = TaskSpec {
        argv: args.command.clone(),
        cwd_key: ws.key_of(&ws.cwd),
        files: crate::spec::portable(&args.files, &ws),
        envs: crate::spec::sorted(&args.envs),
        urls: crate::spec::sorted(&args.urls),
        url_contents: crate::spec::sorted(&args.url_contents),
        outputs: crate::spec::portable(&args.outputs, &ws),
        scope: args.scope.clone(),
        exec_key: args.key.clone(),
        no_ignore: args.no_ignore,
        stdin: args.stdin,
        strict_env: args.strict_env,
        pass_envs: crate::spec::sorted(&args.pass_envs),
        trace: trace
            .as_ref()
            .filter(|t| t.mode == TraceMode::Record)
            .map(|t| TraceKey {
                ignores: crate::spec::sorted(&args.trace_ignores),
                net_allow: t.net_allow,
            }),
    };
    Ok(Task {
        key: spec.task_key(),
        ws,
        spec,
        files,
        no_ignore: args.no_ignore,
        envs: args.envs.clone(),
        outputs,
        urls,
        url_opts: UrlOptions {
            headers,
            timeout: args.url_timeout,
            progress: progress::enabled(args.progress.into()),
        },
        stdin: args.stdin,
        child_env: child_env(args),
        exec_key: args.key.clone().map(|key| ExecKey {
            key,
            max_runs: args.max_runs,
            reuse: match args.key_reuse {
                cli::KeyReuse::Deny => KeyReuse::Deny,
                cli::KeyReuse::Allow => KeyReuse::Allow,
            },
        }),
        name: args.task.clone(),
        trace,
    })
}

/// Whether this build can trace at all (a syscall table exists for the target).
pub const CAN_TRACE: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// `--trace[=MODE]`, `--trace-ignore`, `--trace-net`, `--strict`, checked together.
fn tracing(args: &RunArgs) -> Result<Option<Tracing>> {
    let Some(mode) = args.trace else {
        if !args.trace_ignores.is_empty() {
            return Err(usage("--trace-ignore only makes sense with --trace"));
        }
        if args.trace_net == cli::TraceNet::Allow {
            return Err(usage("--trace-net only makes sense with --trace"));
        }
        if args.strict {
            return Err(usage("--strict only makes sense with --trace=check"));
        }
        return Ok(None);
    };
    if !CAN_TRACE {
        return Err(usage(
            "--trace needs Linux on x86_64 or aarch64 (ptrace); this idem was built for another platform",
        ));
    }
    let mode = match mode {
        cli::TraceMode::Record => TraceMode::Record,
        cli::TraceMode::Check => TraceMode::Check,
    };
    if args.strict && mode != TraceMode::Check {
        return Err(usage("--strict only makes sense with --trace=check"));
    }
    let mut set = globset::GlobSetBuilder::new();
    for g in &args.trace_ignores {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| usage(format!("--trace-ignore '{g}': {e}")))?;
        set.add(glob);
    }
    let ignore = set
        .build()
        .map_err(|e| usage(format!("--trace-ignore: {e}")))?;
    Ok(Some(Tracing {
        mode,
        ignore,
        net_allow: args.trace_net == cli::TraceNet::Allow,
        strict: args.strict,
    }))
}

/// The command's environment: only the declared variables, PATH, HOME and
/// `--pass-env` under `--strict-env`, else idem's own.
pub fn child_env(args: &RunArgs) -> ChildEnv {
    if !args.strict_env {
        return ChildEnv::Inherit;
    }
    let mut names: Vec<String> = vec!["PATH".into(), "HOME".into()];
    names.extend(args.envs.iter().cloned());
    names.extend(args.pass_envs.iter().cloned());
    names.sort();
    names.dedup();
    ChildEnv::Only(names)
}

/// How `args` want the cache treated.
pub fn policy(args: &RunArgs) -> Result<Policy> {
    if let (Some(stale), Some(ttl)) = (args.stale, args.ttl) {
        if stale >= ttl {
            return Err(usage("--stale must be shorter than --ttl"));
        }
    }
    let control = if args.background_refresh {
        CacheControl::Refresh
    } else if args.force {
        CacheControl::Force
    } else if args.cache_only {
        CacheControl::CacheOnly
    } else {
        CacheControl::Default
    };
    let wait = match (args.no_wait, args.wait_timeout) {
        (true, None) => Wait::NoWait,
        (no_wait, Some(limit)) => Wait::Upto {
            limit,
            then_run: !no_wait,
        },
        (false, None) => Wait::Forever,
    };
    let remote = args
        .remote
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| RemoteConfig {
            url: u.to_string(),
            read_only: args.remote_read_only.unwrap_or(false),
            timeout: args.remote_timeout,
            record_ttl: args.ttl,
            verbose: args.verbose,
        });
    Ok(Policy {
        control,
        failures: if args.cache_failures {
            Failures::Replay
        } else {
            Failures::Rerun
        },
        ttl: args.ttl,
        stale: args.stale,
        wait,
        url_offline: match args.url_offline {
            cli::UrlOffline::Run => UrlOffline::Run,
            cli::UrlOffline::Hit => UrlOffline::Hit,
        },
        clean_outputs: args.clean_outputs,
        verbose: args.verbose,
        progress: args.progress.into(),
        remote,
        cache_dir: crate::store::cache_dir(args.cache.cache_dir.as_deref())
            .map_err(|e| format!("{e:#}")),
    })
}

/// One state per URL: listed twice, the body hash (`--url-content`) wins.
fn url_specs(args: &RunArgs) -> Result<Vec<UrlSpec>> {
    let mut urls: Vec<UrlSpec> = Vec::new();
    for (list, content) in [(&args.urls, false), (&args.url_contents, true)] {
        for u in list {
            url::validate(u)
                .map_err(|e| usage(format!("invalid URL '{}': {e:#}", crate::ui::redact(u))))?;
            match urls.iter_mut().find(|s| s.url == *u) {
                Some(s) => s.content |= content,
                None => urls.push(UrlSpec {
                    url: u.clone(),
                    content,
                }),
            }
        }
    }
    Ok(urls)
}

/// `--url-header`, then `IDEM_URL_HEADER_*` in name order. The environment is only
/// read when there are URLs to send them to: copying it costs a hit 3 % of its time.
fn url_headers(args: &RunArgs, any_url: bool) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for h in &args.url_headers {
        headers.push(url::parse_header(h).map_err(|e| usage(format!("--url-header: {e:#}")))?);
    }
    if !any_url {
        return Ok(headers);
    }
    let mut env_headers: Vec<(String, OsString)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("IDEM_URL_HEADER_").then_some((k, v))
        })
        .collect();
    env_headers.sort();
    for (k, v) in env_headers {
        let v = v.to_string_lossy();
        headers.push(url::parse_header(&v).map_err(|e| usage(format!("{k}: {e:#}")))?);
    }
    Ok(headers)
}
