//! A provider that speaks only the seed's (C++ mprpc's) wire format,
//! written here byte for byte from the seed's description (4-byte
//! host-order header size, `mprpc.RpcHeader`, args; the reply is the bare
//! message, then the provider closes). It answers the example services the
//! way the seed's callee would, but with its own values, so a test can tell
//! it answered. Shared by `interop_seed.rs` and the CLI's tests (`#[path]`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mprpc_examples::fixbug::{
    GetFriendsListRequest, GetFriendsListResponse, LoginRequest, LoginResponse, RegisterResponse,
    ResultCode,
};
use prost::Message;

/// The seed's `mprpc.RpcHeader`, declared here independently of the library.
#[derive(Clone, PartialEq, Message)]
pub struct SeedHeader {
    #[prost(bytes = "vec", tag = "1")]
    pub service_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub method_name: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub args_size: u32,
}

/// A provider that speaks only the seed's format: reads one request,
/// answers the bare response, closes. Counts the calls it served.
pub struct SeedProvider {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Calls answered so far.
    pub served: Arc<AtomicUsize>,
}

impl SeedProvider {
    /// Listens on a free loopback port, serving each connection on a thread.
    pub fn start() -> SeedProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let count = count.clone();
                std::thread::spawn(move || serve_seed_connection(stream, &count));
            }
        });
        SeedProvider { addr, served }
    }
}

/// Serves one call; counts it in `served` before the reply goes out (the
/// caller may check the count as soon as it has the reply).
fn serve_seed_connection(mut stream: TcpStream, served: &AtomicUsize) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).is_err() {
        return false;
    }
    let mut header = vec![0u8; u32::from_le_bytes(size) as usize];
    stream.read_exact(&mut header).unwrap();
    let header = SeedHeader::decode(&header[..]).unwrap();
    let mut args = vec![0u8; header.args_size as usize];
    stream.read_exact(&mut args).unwrap();
    let ok = ResultCode {
        errcode: 0,
        errmsg: Bytes::new(),
    };
    let reply = match (&header.service_name[..], &header.method_name[..]) {
        (b"UserServiceRpc", b"Login") => {
            let req = LoginRequest::decode(&args[..]).unwrap();
            LoginResponse {
                result: Some(ok),
                sucess: req.name == "zhang san",
            }
            .encode_to_vec()
        }
        (b"UserServiceRpc", b"Register") => RegisterResponse {
            result: Some(ok),
            sucess: true,
        }
        .encode_to_vec(),
        (b"FriendServiceRpc", b"GetFriendsList") => {
            let req = GetFriendsListRequest::decode(&args[..]).unwrap();
            let friends = vec![Bytes::from(format!("seed friend of {}", req.userid))];
            GetFriendsListResponse {
                result: Some(ok),
                friends,
            }
            .encode_to_vec()
        }
        _ => return false, // the seed closes without a reply
    };
    served.fetch_add(1, Ordering::SeqCst);
    // Large replies arrive in pieces: no 1024-byte limit on our side.
    for piece in reply.chunks(700) {
        stream.write_all(piece).unwrap();
    }
    true
}
