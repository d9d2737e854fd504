"""Client of the internal UserStoreService (served by task-store), with gRPC failures mapped back
into GenHub errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2

from genhub.common.store_client import CALL_TIMEOUT, from_rpc_error
from genhub.store.v1 import user_store_pb2 as pb
from genhub.store.v1 import user_store_pb2_grpc
from genhub.v1 import user_service_pb2

T = TypeVar("T")
User = user_service_pb2.User


class UserStoreClient:
    """Typed calls to the users store. Every call has a deadline; failures raise GenHub errors
    (NotFound, AlreadyExists, InvalidArgument, StoreError)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = user_store_pb2_grpc.UserStoreServiceStub(channel)

    async def _call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def create(self, user: User) -> User:
        """Store a new user; the store assigns its id and times."""
        return (await self._call(self._stub.CreateUser, pb.CreateUserRequest(user=user))).user

    async def get(self, user_id: str) -> User:
        """A user by id."""
        return (await self._call(self._stub.GetUser, pb.GetUserRequest(user_id=user_id))).user

    async def find_by_email(self, email: str) -> User:
        """A user by email, matched case-insensitively."""
        request = pb.FindUserByEmailRequest(email=email)
        return (await self._call(self._stub.FindUserByEmail, request)).user

    async def update(self, user: User, paths: Sequence[str]) -> User:
        """Set the fields ``paths`` names (every writable field when empty) from ``user``."""
        request = pb.UpdateUserRequest(
            user=user, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
        return (await self._call(self._stub.UpdateUser, request)).user

    async def delete(self, user_id: str) -> None:
        """Remove a user (their tasks are kept)."""
        await self._call(self._stub.DeleteUser, pb.DeleteUserRequest(user_id=user_id))


@contextlib.asynccontextmanager
async def connect(address: str) -> AsyncIterator[UserStoreClient]:
    """A client over a channel to ``address``, closed on exit."""
    channel = grpc.aio.insecure_channel(address)
    try:
        yield UserStoreClient(channel)
    finally:
        await channel.close()
