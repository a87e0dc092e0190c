//! Generated streaming code end to end over 127.0.0.1: `FriendWatchRpc`'s
//! server stream (read blocking and as a `futures_core::Stream`), client
//! stream and bidirectional stream, through `FriendWatchRpcStub`.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::server::Server;
use mprpc::{CallOptions, Code};
use mprpc_examples::fixbug::{
    ChatLine, FriendChange, FriendWatchRpcServer, FriendWatchRpcStub, GetFriendsListRequest,
};
use mprpc_examples::FriendWatch;

fn serve() -> (mprpc::server::ServerHandle, FriendWatchRpcStub) {
    let mut server = Server::with_options(mprpc::server::ServerOptions::default());
    server.add_service(FriendWatchRpcServer::new(FriendWatch));
    let server = server.start().expect("server starts");
    let stub = FriendWatchRpcStub::new(Channel::direct(server.local_addr()).unwrap());
    (server, stub)
}

fn names(changes: &[FriendChange]) -> Vec<&[u8]> {
    changes.iter().map(|c| &c.name[..]).collect()
}

const FRIENDS: [&[u8]; 3] = [b"gao yang", b"liu hong", b"wang shuo"];

#[test]
fn watch_friends_blocking_and_async() {
    let (server, stub) = serve();
    let request = GetFriendsListRequest { userid: 7 };
    let changes: Vec<FriendChange> = stub
        .watch_friends(&request, &CallOptions::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names(&changes), FRIENDS);
    assert!(changes.iter().all(|c| c.added));

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut stream = stub.watch_friends(&request, &CallOptions::default());
    let mut got = Vec::new();
    loop {
        match futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), &mut cx) {
            Poll::Ready(Some(change)) => got.push(change.unwrap()),
            Poll::Ready(None) => break,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(100)),
        }
    }
    assert_eq!(names(&got), FRIENDS);
    server.shutdown();
    server.wait();
}

#[test]
fn upload_changes_and_chat() {
    let (server, stub) = serve();
    let upload = stub.upload_changes(&CallOptions::default());
    for (name, added) in [("a", true), ("b", true), ("a", false), ("c", true)] {
        let change = FriendChange {
            name: Bytes::from(name),
            added,
        };
        upload.send(&change).unwrap();
    }
    let reply = upload.finish().unwrap();
    assert_eq!(reply.friends, [Bytes::from("b"), Bytes::from("c")]);

    let (lines, mut heard) = stub.chat(&CallOptions::default());
    for text in ["hi", "bye"] {
        let line = ChatLine {
            from: Bytes::from("me"),
            text: Bytes::from(text),
        };
        lines.send(&line).unwrap();
        let echo = heard.recv().unwrap().unwrap();
        assert_eq!(echo.text, Bytes::from(format!("heard: {text}")));
    }
    lines.finish();
    assert!(heard.recv().unwrap().is_none());

    // A streaming rpc called as a unary call is refused, not run.
    let channel = stub.channel();
    let refused = channel
        .call(
            "FriendWatchRpc",
            "WatchFriends",
            Bytes::new(),
            &CallOptions::default(),
            None,
        )
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    server.shutdown();
    server.wait();
}
