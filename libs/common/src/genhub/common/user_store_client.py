"""Client of the internal UserStoreService (served by task-store), with gRPC failures mapped back
into GenHub errors."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import field_mask_pb2

from genhub.common.store_client import call
from genhub.store.v1 import user_store_pb2 as pb
from genhub.store.v1 import user_store_pb2_grpc
from genhub.v1 import user_service_pb2

User = user_service_pb2.User


class UserStoreClient:
    """Typed calls to the users store. Every call has a deadline; failures raise GenHub errors
    (NotFound, AlreadyExists, InvalidArgument, StoreError)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = user_store_pb2_grpc.UserStoreServiceStub(channel)

    async def create(self, user: User) -> User:
        """Store a new user; the store assigns its id and times."""
        return (await call(self._stub.CreateUser, pb.CreateUserRequest(user=user))).user

    async def get(self, user_id: str) -> User:
        """A user by id."""
        return (await call(self._stub.GetUser, pb.GetUserRequest(user_id=user_id))).user

    async def find_by_email(self, email: str) -> User:
        """A user by email, matched case-insensitively."""
        request = pb.FindUserByEmailRequest(email=email)
        return (await call(self._stub.FindUserByEmail, request)).user

    async def update(self, user: User, paths: Sequence[str]) -> User:
        """Set the fields ``paths`` names (every writable field when empty) from ``user``."""
        request = pb.UpdateUserRequest(
            user=user, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
        return (await call(self._stub.UpdateUser, request)).user

    async def delete(self, user_id: str) -> None:
        """Remove a user (their tasks are kept)."""
        await call(self._stub.DeleteUser, pb.DeleteUserRequest(user_id=user_id))
