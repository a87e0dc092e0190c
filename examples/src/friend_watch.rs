//! `FriendWatchRpc` (proto/friend_watch.proto): one streaming call of each
//! kind. `WatchFriends` streams a user's friends as additions (from
//! [`FriendService`](crate::FriendService)) and ends; `UploadChanges`
//! applies a client stream of changes and replies with the list;
//! `Chat` echoes each line, signed by the server.

use bytes::Bytes;
use mprpc::service::stream::{StreamSender, Streaming};
use mprpc::{CallContext, Status};

use crate::fixbug::{
    ChatLine, FriendChange, FriendWatchRpc, GetFriendsListRequest, GetFriendsListResponse,
    ResultCode,
};
use crate::FriendService;

/// The streaming friend service.
#[derive(Debug, Default, Clone, Copy)]
pub struct FriendWatch;

impl FriendWatchRpc for FriendWatch {
    async fn watch_friends(
        self: std::sync::Arc<Self>,
        _ctx: CallContext,
        request: GetFriendsListRequest,
        sink: StreamSender<FriendChange>,
    ) -> Result<(), Status> {
        for name in FriendService.get_friends_list_local(request.userid) {
            let change = FriendChange {
                name: Bytes::from(name),
                added: true,
            };
            // Waits while the watcher has no credit (it reads slowly).
            sink.send(change).await?;
        }
        Ok(())
    }

    async fn upload_changes(
        self: std::sync::Arc<Self>,
        _ctx: CallContext,
        mut requests: Streaming<FriendChange>,
    ) -> Result<GetFriendsListResponse, Status> {
        let mut friends: Vec<Bytes> = Vec::new();
        while let Some(change) = requests.message().await? {
            friends.retain(|name| *name != change.name);
            if change.added {
                friends.push(change.name);
            }
        }
        Ok(GetFriendsListResponse {
            result: Some(ResultCode {
                errcode: 0,
                errmsg: Bytes::new(),
            }),
            friends,
        })
    }

    async fn chat(
        self: std::sync::Arc<Self>,
        _ctx: CallContext,
        mut requests: Streaming<ChatLine>,
        sink: StreamSender<ChatLine>,
    ) -> Result<(), Status> {
        while let Some(line) = requests.message().await? {
            let text = [&b"heard: "[..], &line.text].concat();
            sink.send(ChatLine {
                from: Bytes::from_static(b"server"),
                text: text.into(),
            })
            .await?;
        }
        Ok(())
    }
}
