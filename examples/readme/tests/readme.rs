//! Keeps README.md and docs/guide.md honest.
//!
//! * Every ```rust and ```proto block of those pages is one of this crate's
//!   files, or an excerpt of a repository test (EXCERPTS), verbatim
//!   (indentation of a list item removed), so a snippet that stops
//!   compiling breaks a build, and a file changed without its snippet
//!   breaks this test.
//! * The provider and consumer built from those snippets talk over
//!   127.0.0.1 (port 0, `registry=none`: no ZooKeeper needed).
//! * The API the generated docs, the README and the guide name exists.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mprpc::prelude::*;

/// The pages whose code blocks are this crate's files, by path in the
/// repository.
const PAGES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../README.md")),
    ("docs/guide.md", include_str!("../../../docs/guide.md")),
];
const README: &str = PAGES[0].1;
const GUIDE: &str = PAGES[1].1;

/// The files the pages' blocks come from, by path in this crate.
const FILES: &[(&str, &str)] = &[
    ("proto/user.proto", include_str!("../proto/user.proto")),
    ("build.rs", include_str!("../build.rs")),
    ("src/lib.rs", include_str!("../src/lib.rs")),
    (
        "src/bin/provider.rs",
        include_str!("../src/bin/provider.rs"),
    ),
    (
        "src/bin/consumer.rs",
        include_str!("../src/bin/consumer.rs"),
    ),
    (
        "src/bin/metadata.rs",
        include_str!("../src/bin/metadata.rs"),
    ),
];

/// Files of the repository a page may quote in part (FILES are shown
/// whole): the guide's stream handler comes from a test that runs it.
const EXCERPTS: &[(&str, &str)] = &[(
    "tests/stream_handler.rs",
    include_str!("../../../tests/stream_handler.rs"),
)];

/// The code generated for `proto/user.proto`.
const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/fixbug.rs"));

const WAIT: Duration = Duration::from_secs(30);

/// A fenced block: its language and its text, without the fence's indent.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(lang) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let mut text = String::new();
        for (_, body) in lines.by_ref() {
            if body.trim() == "```" {
                break;
            }
            text.push_str(body.get(indent..).unwrap_or(body.trim_start()));
            text.push('\n');
        }
        found.push(Block {
            lang: lang.trim().to_owned(),
            line: index + 1,
            text,
        });
    }
    found
}

/// The ```rust and ```proto blocks of a page.
fn code_blocks(page: &str) -> Vec<Block> {
    blocks(page)
        .into_iter()
        .filter(|b| b.lang == "rust" || b.lang == "proto")
        .collect()
}

#[test]
fn every_rust_and_proto_block_of_the_docs_is_a_compiled_file() {
    assert!(
        code_blocks(README).len() >= 5,
        "README lost its code blocks"
    );
    assert!(
        !code_blocks(GUIDE).is_empty(),
        "the guide lost its code blocks"
    );
    let mut checked = Vec::new();
    for (page, text) in PAGES {
        for block in code_blocks(text) {
            assert!(
                FILES
                    .iter()
                    .chain(EXCERPTS)
                    .any(|(_, file)| file.contains(&block.text)),
                "{page}:{}: this ```{} block is not verbatim in any of {:?} \
                 (examples/readme); change both together:\n{}",
                block.line,
                block.lang,
                FILES
                    .iter()
                    .chain(EXCERPTS)
                    .map(|(path, _)| *path)
                    .collect::<Vec<_>>(),
                block.text
            );
            checked.push(block);
        }
    }
    // And every file is shown whole, apart from its top doc comment.
    for (path, file) in FILES {
        let body: String = file
            .lines()
            .skip_while(|l| l.starts_with("//!"))
            .skip_while(|l| l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            checked.iter().any(|b| b.text == body),
            "examples/readme/{path} is not shown whole in README.md or docs/guide.md"
        );
    }
}

/// Provider methods the generated docs may name. Each is called below, so
/// renaming one breaks this crate's build.
const PROVIDER_API: &[&str] = &["notify_service", "notify_blocking_service"];
#[allow(dead_code)]
fn provider_api<S: Service + Clone>(provider: &mut RpcProvider, service: S) {
    provider.notify_service(service.clone());
    provider.notify_blocking_service(service);
}

/// `CallContext` methods the docs name, checked the same way.
const CONTEXT_API: &[&str] = &[
    "expired",
    "remaining",
    "metadata",
    "trace_id",
    "set_reply_metadata",
];
#[allow(dead_code)]
fn context_api(ctx: &CallContext) {
    let _ = (ctx.expired(), ctx.remaining(), &ctx.metadata, ctx.trace_id);
    let _ = ctx.set_reply_metadata("k", "v");
}

/// Every `` `prefix NAME` `` in `text`, e.g. `RpcProvider::` gives the names
/// after it up to the closing backtick or `(`.
fn named<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.split(prefix)
        .skip(1)
        .map(|rest| {
            let end = rest.find(['`', '(']).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn generated_docs_and_pages_name_only_the_real_api() {
    let docs: String = GENERATED
        .lines()
        .filter(|l| l.trim_start().starts_with("///"))
        .map(|l| format!("{l}\n"))
        .collect();
    let provider = named(&docs, "`RpcProvider::");
    assert!(provider.contains(&"notify_blocking_service"), "{docs}");
    let pages: Vec<&str> = PAGES.iter().map(|(_, text)| *text).collect();
    let in_pages = |prefix| pages.iter().flat_map(move |page| named(page, prefix));
    for name in provider.iter().copied().chain(in_pages("`RpcProvider::")) {
        assert!(
            PROVIDER_API.contains(&name),
            "docs name RpcProvider::{name}"
        );
    }
    let context = named(&docs, "`ctx.");
    assert!(!context.is_empty(), "{docs}");
    for name in context.iter().copied().chain(in_pages("`ctx.")) {
        assert!(CONTEXT_API.contains(&name), "docs name ctx.{name}()");
    }
    for text in pages.iter().copied().chain([docs.as_str()]) {
        assert!(!text.contains("add_blocking_service"));
    }
    assert!(named(GUIDE, "`RpcProvider::").contains(&"notify_blocking_service"));
    // Every callback call states the rule against blocking in it.
    let with_calls = GENERATED
        .lines()
        .filter(|l| l.trim_start().starts_with("pub fn ") && l.contains("_with("))
        .count();
    assert_eq!(with_calls, 2, "{GENERATED}");
    assert_eq!(docs.matches("never block in it").count(), with_calls);
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path, name: &str, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "rpcserverip=127.0.0.1\nrpcserverport={port}\nregistry=none\nlog_dir={}\n{extra}",
        dir.join("logs").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the README's provider on port 0; returns it, the port it printed
/// and the lines it printed before.
fn start_provider(dir: &Path) -> (Running, u16, Vec<String>) {
    let conf = write_config(dir, "provider.conf", 0, "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_readme-provider"))
        .arg("-i")
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("readme-provider starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("provider printed no start line; printed {seen:?}"));
        let port = line
            .strip_prefix("RpcProvider start service at ip:127.0.0.1 port:")
            .and_then(|p| p.parse().ok());
        if let Some(port) = port {
            return (running, port, seen);
        }
        seen.push(line);
    }
}

/// Runs the README's consumer to completion, bounded.
fn run_consumer(conf: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_readme-consumer"))
        .arg("-i")
        .arg(conf)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("readme-consumer starts");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY-free: kill(2) on the pid of a child we started.
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("readme-consumer hung");
        }
    }
}

#[test]
fn the_guides_metadata_example_runs_as_shown() {
    let child = Command::new(env!("CARGO_BIN_EXE_readme-metadata"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("readme-metadata starts");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx
        .recv_timeout(WAIT)
        .expect("readme-metadata hung")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{output:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("login from readme, trace id "),
        "{stdout}"
    );
    assert_eq!(
        lines[1..],
        [
            "UserServiceRpc.Login -> Ok",
            "served by readme-metadata",
            "UserServiceRpc.Login -> Unauthenticated",
            "without a token: unauthenticated: no valid token",
        ],
        "{stdout}"
    );
    // The guide shows this output.
    assert!(GUIDE.contains(&stdout.replace(&lines[0][28..], "f5545846a38ac4c5")));
}

#[test]
fn the_readme_provider_and_consumer_talk() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, port, announced) = start_provider(dir.path());
    assert_eq!(
        announced,
        [
            "service_name:UserServiceRpc",
            "method_name:Login",
            "method_name:Register"
        ]
    );

    // A typo'd key: warned about on stderr, in plain text (not a terminal).
    let conf = write_config(dir.path(), "consumer.conf", port, "log_levl=warn\n");
    let out = run_consumer(&conf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "login success:true\nasync login success:true\nregister success:true\n"
    );
    assert!(
        stderr.contains("unknown key 'log_levl' (did you mean 'log_level'?)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a redirected stderr: {stderr:?}"
    );

    // The program's own flag, next to the framework's -i.
    let out = run_consumer(&conf, &["--name", "li si"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("login success:false\nasync login success:false\n"),
        "{stdout}"
    );
}
