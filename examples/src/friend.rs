//! The seed's `FriendService` callee: GetFriendsList.

use bytes::Bytes;
use mprpc::{CallContext, Status};

use crate::fixbug::{FriendServiceRpc, GetFriendsListRequest, GetFriendsListResponse, ResultCode};

/// A local friend service published as `FriendServiceRpc`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FriendService;

impl FriendService {
    /// The local business logic: every user has the same three friends.
    pub fn get_friends_list_local(&self, userid: u32) -> Vec<&'static str> {
        println!("doing GetFriendsList service! userid:{userid}");
        vec!["gao yang", "liu hong", "wang shuo"]
    }
}

impl FriendServiceRpc for FriendService {
    fn get_friends_list(
        &self,
        _ctx: &CallContext,
        request: GetFriendsListRequest,
    ) -> Result<GetFriendsListResponse, Status> {
        let friends = self
            .get_friends_list_local(request.userid)
            .into_iter()
            .map(Bytes::from)
            .collect();
        Ok(GetFriendsListResponse {
            result: Some(ResultCode {
                errcode: 0,
                errmsg: Bytes::new(),
            }),
            friends,
        })
    }
}
