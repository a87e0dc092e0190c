//! The gateway example's handler: `GatewayServiceRpc.GetUserPage` asks
//! `UserServiceRpc.Login` and `FriendServiceRpc.GetFriendsList` at once and
//! merges their answers into one reply.
//!
//! The service is generated with handlers that answer later
//! (`async_service` in `build.rs`): both downstream calls are started
//! before either is awaited, and [`try_join`] awaits the two futures on the
//! reactor that read the request, so no thread waits for the backends.
//! Calls made while serving inherit the caller's remaining deadline. A
//! backend that fails (no provider, timeout, ...) fails the call with its
//! status code and a message naming the backend; the other downstream call
//! is then dropped, which cancels it. An application error inside a
//! backend's reply (`ResultCode.errcode != 0`) is passed on in the merged
//! reply's `result`.
//!
//! The `gateway` binary can also run this same handler on the worker pool
//! (see [`crate::OnWorkerPool`]), for comparison.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::{CallContext, CallOptions, Status};

use crate::fixbug::{
    FriendServiceRpcStub, GatewayServiceRpc, GetFriendsListRequest, GetFriendsListResponse,
    GetUserPageRequest, GetUserPageResponse, LoginRequest, LoginResponse, ResultCode,
    UserServiceRpcStub,
};

/// Where the gateway's two backends are named in its errors.
const LOGIN: &str = "UserServiceRpc.Login";
const FRIENDS: &str = "FriendServiceRpc.GetFriendsList";

/// `GatewayServiceRpc`: a middle tier over the seed's two services.
#[derive(Clone)]
pub struct Gateway {
    users: UserServiceRpcStub,
    friends: FriendServiceRpcStub,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("channel", self.users.channel())
            .finish()
    }
}

impl Gateway {
    /// A gateway calling both backends through `channel` (which finds their
    /// providers, e.g. in ZooKeeper).
    pub fn new(channel: Channel) -> Gateway {
        Gateway {
            users: UserServiceRpcStub::new(channel.clone()),
            friends: FriendServiceRpcStub::new(channel),
        }
    }
}

impl GatewayServiceRpc for Gateway {
    async fn get_user_page(
        self: Arc<Self>,
        _ctx: CallContext,
        request: GetUserPageRequest,
    ) -> Result<GetUserPageResponse, Status> {
        let options = CallOptions::default();
        // Both calls leave now; awaiting them together takes the longer one.
        let login = self.users.login_async(
            &LoginRequest {
                name: request.name,
                pwd: request.pwd,
            },
            &options,
        );
        let friends = self.friends.get_friends_list_async(
            &GetFriendsListRequest {
                userid: request.userid,
            },
            &options,
        );
        let (login, friends) = try_join(named(LOGIN, login), named(FRIENDS, friends)).await?;
        Ok(merge(login, friends))
    }
}

/// A backend call whose failure names the backend.
async fn named<T>(
    backend: &'static str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    call.await
        .map_err(|s| Status::new(s.code(), format!("gateway: {backend} failed: {s}")))
}

/// Both answers, or the first error as soon as it comes (dropping the other
/// future, which cancels its call): a two-future join with no runtime.
pub async fn try_join<A, B, E>(
    a: impl Future<Output = Result<A, E>>,
    b: impl Future<Output = Result<B, E>>,
) -> Result<(A, B), E> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    poll_fn(move |cx| {
        if done_a.is_none() {
            if let Poll::Ready(result) = a.as_mut().poll(cx) {
                done_a = Some(result?);
            }
        }
        if done_b.is_none() {
            if let Poll::Ready(result) = b.as_mut().poll(cx) {
                done_b = Some(result?);
            }
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => Poll::Ready(Ok((a, b))),
            (a, b) => {
                (done_a, done_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// One page from the two answers: the first backend's application error,
/// if any, in `result`; both answers' data either way.
pub fn merge(login: LoginResponse, friends: GetFriendsListResponse) -> GetUserPageResponse {
    let failed = |backend: &str, result: &Option<ResultCode>| {
        result
            .as_ref()
            .filter(|r| r.errcode != 0)
            .map(|r| ResultCode {
                errcode: r.errcode,
                errmsg: Bytes::from(format!("{backend}: {}", String::from_utf8_lossy(&r.errmsg))),
            })
    };
    let result = failed(LOGIN, &login.result)
        .or_else(|| failed(FRIENDS, &friends.result))
        .unwrap_or(ResultCode {
            errcode: 0,
            errmsg: Bytes::new(),
        });
    GetUserPageResponse {
        result: Some(result),
        login_sucess: login.sucess,
        friends: friends.friends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::ready;

    fn block_on<F: Future>(f: F) -> F::Output {
        crate::worker_pool::block_on(f)
    }

    #[test]
    fn try_join_gives_both_answers_or_the_first_error() {
        let both = block_on(try_join(ready(Ok::<_, ()>(1)), ready(Ok(2))));
        assert_eq!(both, Ok((1, 2)));
        let second = block_on(try_join(ready(Ok::<u8, _>(1)), ready(Err::<u8, _>("b"))));
        assert_eq!(second, Err("b"));
        let first = block_on(try_join(
            ready(Err::<u8, _>("a")),
            std::future::pending::<Result<u8, _>>(),
        ));
        assert_eq!(first, Err("a"), "an error does not wait for the other");
    }

    #[test]
    fn merge_keeps_both_answers_and_names_a_backend_error() {
        let ok = || {
            Some(ResultCode {
                errcode: 0,
                errmsg: Bytes::new(),
            })
        };
        let friends = GetFriendsListResponse {
            result: ok(),
            friends: vec![Bytes::from("gao yang")],
        };
        let page = merge(
            LoginResponse {
                result: ok(),
                sucess: true,
            },
            friends.clone(),
        );
        assert_eq!(page.result.unwrap().errcode, 0);
        assert!(page.login_sucess);
        assert_eq!(page.friends, friends.friends);

        let refused = LoginResponse {
            result: Some(ResultCode {
                errcode: 7,
                errmsg: Bytes::from("no such user"),
            }),
            sucess: false,
        };
        let page = merge(refused, friends);
        let result = page.result.unwrap();
        assert_eq!(result.errcode, 7);
        assert_eq!(result.errmsg, "UserServiceRpc.Login: no such user");
        assert_eq!(page.friends.len(), 1, "the friends still come");
    }
}
