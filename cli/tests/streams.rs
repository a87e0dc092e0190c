//! `mprpc call` on streaming methods, end to end over real sockets: the
//! examples' `FriendWatchRpc` served by our server (schema from its
//! reflection); a server stream printed as JSON lines, a client stream and
//! a chat fed JSON lines on stdin, and the errors of a bad line.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use mprpc::server::{Server, ServerHandle};
use mprpc_examples::fixbug::FriendWatchRpcServer;
use mprpc_examples::FriendWatch;
use serde_json::{json, Value};

fn provider() -> ServerHandle {
    let mut server = Server::with_options(Default::default());
    server.add_service(FriendWatchRpcServer::new(FriendWatch));
    server.start().expect("server starts")
}

/// Runs `mprpc --addr ADDR call --bytes text ARGS...` with `stdin` piped in.
fn call(server: &ServerHandle, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args([
            "--addr",
            &server.local_addr().to_string(),
            "call",
            "--bytes",
            "text",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mprpc runs");
    let mut input = child.stdin.take().expect("stdin piped");
    input.write_all(stdin.as_bytes()).expect("stdin written");
    drop(input);
    child.wait_with_output().expect("mprpc output")
}

/// Each stdout line as JSON, after checking the command succeeded.
fn json_lines(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mprpc failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "mprpc succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_server_stream_prints_one_json_line_per_message() {
    let server = provider();
    let out = call(
        &server,
        &["FriendWatchRpc.WatchFriends", r#"{"userid":1000}"#],
        "",
    );
    assert_eq!(
        json_lines(&out),
        ["gao yang", "liu hong", "wang shuo"].map(|name| json!({"name": name, "added": true}))
    );
}

#[test]
fn a_client_stream_sends_each_stdin_line_and_prints_the_reply() {
    let server = provider();
    let changes = concat!(
        r#"{"name":"ann","added":true}"#,
        "\n\n",
        r#"{"name":"bob","added":true}"#,
        "\n",
        r#"{"name":"ann","added":false}"#,
        "\n"
    );
    let out = call(&server, &["FriendWatchRpc.UploadChanges"], changes);
    assert_eq!(
        json_lines(&out),
        [json!({"result": {"errcode": 0, "errmsg": ""}, "friends": ["bob"]})]
    );
}

#[test]
fn a_chat_echoes_each_stdin_line_in_order() {
    let server = provider();
    let lines = "{\"from\":\"me\",\"text\":\"hi\"}\n{\"from\":\"me\",\"text\":\"bye\"}\n";
    let out = call(&server, &["FriendWatchRpc.Chat"], lines);
    assert_eq!(
        json_lines(&out),
        [
            json!({"from": "server", "text": "heard: hi"}),
            json!({"from": "server", "text": "heard: bye"})
        ]
    );
}

#[test]
fn a_bad_stdin_line_fails_the_call_and_names_the_line() {
    let server = provider();
    let lines = "{\"from\":\"me\",\"text\":\"hi\"}\n{\"nope\":1}\n";
    let err = failed(&call(&server, &["FriendWatchRpc.Chat"], lines));
    assert!(err.contains("stdin line 2"), "{err}");
}

#[test]
fn a_client_stream_refuses_a_request_argument() {
    let server = provider();
    let err = failed(&call(&server, &["FriendWatchRpc.UploadChanges", "{}"], ""));
    assert!(err.contains("takes a stream of requests"), "{err}");
}
