"""The internal UserStoreService RPCs, over the user repository."""

from __future__ import annotations

from typing import Any

import grpc

from genhub.common.errors import InvalidArgument
from genhub.store.v1 import user_store_pb2 as pb
from genhub.store.v1 import user_store_pb2_grpc
from genhub.taskstore.users import UserRepository

Context = grpc.aio.ServicerContext[Any, Any]


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument.one(field, "is required")


class UserStoreServicer(user_store_pb2_grpc.UserStoreServiceServicer):
    """Users in MongoDB; the gateway validates, the store keeps emails unique."""

    def __init__(self, repository: UserRepository) -> None:
        self._repo = repository

    async def CreateUser(
        self, request: pb.CreateUserRequest, context: Context
    ) -> pb.CreateUserResponse:
        """Store a new user; ALREADY_EXISTS when the email is taken."""
        if not request.HasField("user"):
            raise InvalidArgument.one("user", "is required")
        return pb.CreateUserResponse(user=await self._repo.create(request.user))

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        """A user by id."""
        _require("user_id", request.user_id)
        return pb.GetUserResponse(user=await self._repo.get(request.user_id))

    async def FindUserByEmail(
        self, request: pb.FindUserByEmailRequest, context: Context
    ) -> pb.FindUserByEmailResponse:
        """A user by email, case-insensitively."""
        _require("email", request.email.strip())
        return pb.FindUserByEmailResponse(user=await self._repo.find_by_email(request.email))

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
        """Change the fields the mask names."""
        _require("user.user_id", request.user.user_id)
        user = await self._repo.update(request.user, list(request.update_mask.paths))
        return pb.UpdateUserResponse(user=user)

    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Context
    ) -> pb.DeleteUserResponse:
        """Remove a user; their tasks are kept."""
        _require("user_id", request.user_id)
        await self._repo.delete(request.user_id)
        return pb.DeleteUserResponse()
