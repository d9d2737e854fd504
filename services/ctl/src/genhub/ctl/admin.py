"""``genhubctl keys`` and ``genhubctl users``: API keys and users, through the public gRPC API
(admin-only when authentication is on: set ``GENHUB_API_KEY`` to an admin key)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.panel import Panel

from genhub.ctl.context import as_json, console, ctl, emit_json, run, table
from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
users_app = typer.Typer(help="Users: create, get, find, delete.", no_args_is_help=True)


class Role(StrEnum):
    """Key roles as the CLI spells them."""

    user = "user"
    admin = "admin"


def _key_row(key: api_key_service_pb2.ApiKey) -> list[str]:
    return [
        key.key_id,
        key.prefix + "_…",
        key.user_id,
        api_key_service_pb2.Role.Name(key.role).removeprefix("ROLE_").lower(),
        key.display_name,
        key.create_time.ToDatetime().isoformat(timespec="seconds"),
        key.revoke_time.ToDatetime().isoformat(timespec="seconds")
        if key.HasField("revoke_time")
        else "",
    ]


KEY_COLUMNS = ["key_id", "prefix", "user", "role", "name", "created", "revoked"]


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option(help="The user id the key acts as.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")] = Role.user,
    name: Annotated[str, typer.Option(help="A note for people.")] = "",
) -> None:
    """Issue a key. Its secret is printed once: store it now, it cannot be shown again."""
    c = ctl(ctx)
    request = api_key_service_pb2.CreateApiKeyRequest(
        api_key=api_key_service_pb2.ApiKey(
            user_id=user,
            role=api_key_service_pb2.Role.Value(f"ROLE_{role.value.upper()}"),
            display_name=name,
        )
    )

    async def go() -> api_key_service_pb2.CreateApiKeyResponse:
        async with c.channel() as channel:
            stub = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
            return await stub.CreateApiKey(request, metadata=c.metadata)

    created = run(go())
    if c.json:
        emit_json(as_json(created))
        return
    table("API key", KEY_COLUMNS, [_key_row(created.api_key)])
    console.print(Panel(created.key, title="the key (shown once)"), highlight=False)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    user: Annotated[str, typer.Option(help="Only this user's keys.")] = "",
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
) -> None:
    """List keys (never their secrets), every page."""
    c = ctl(ctx)

    async def go() -> list[api_key_service_pb2.ApiKey]:
        found: list[api_key_service_pb2.ApiKey] = []
        async with c.channel() as channel:
            stub = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
            token = ""
            while True:
                page = await stub.ListApiKeys(
                    api_key_service_pb2.ListApiKeysRequest(
                        user_id=user, show_revoked=revoked, page_size=500, page_token=token
                    ),
                    metadata=c.metadata,
                )
                found += page.api_keys
                token = page.next_page_token
                if not token:
                    return found

    keys = run(go())
    if c.json:
        emit_json([as_json(k) for k in keys])
        return
    table("API keys", KEY_COLUMNS, [_key_row(k) for k in keys])


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key: refused at once by the gateway that revoked it, by the others within their
    key cache's lifetime (GENHUB_API_KEY_CACHE_SECONDS)."""
    c = ctl(ctx)

    async def go() -> api_key_service_pb2.ApiKey:
        async with c.channel() as channel:
            stub = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
            request = api_key_service_pb2.DeleteApiKeyRequest(key_id=key_id)
            return (await stub.DeleteApiKey(request, metadata=c.metadata)).api_key

    key = run(go())
    if c.json:
        emit_json(as_json(key))
    else:
        console.print(f"revoked {key.key_id} ({key.prefix})", highlight=False)


def _user_row(user: user_service_pb2.User) -> list[str]:
    return [
        user.user_id,
        user.email,
        user.display_name,
        user.create_time.ToDatetime().isoformat(timespec="seconds"),
    ]


def _show_user(json_out: bool, user: user_service_pb2.User) -> None:
    if json_out:
        emit_json(as_json(user))
    else:
        table("user", ["user_id", "email", "name", "created"], [_user_row(user)])


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Register a user."""
    c = ctl(ctx)

    async def go() -> user_service_pb2.User:
        async with c.channel() as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            request = user_service_pb2.CreateUserRequest(
                user=user_service_pb2.User(email=email, display_name=name)
            )
            return (await stub.CreateUser(request, metadata=c.metadata)).user

    _show_user(c.json, run(go()))


@users_app.command("get")
def users_get(ctx: typer.Context, user_id: str) -> None:
    """Show a user by id."""
    c = ctl(ctx)

    async def go() -> user_service_pb2.User:
        async with c.channel() as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            request = user_service_pb2.GetUserRequest(user_id=user_id)
            return (await stub.GetUser(request, metadata=c.metadata)).user

    _show_user(c.json, run(go()))


@users_app.command("find")
def users_find(ctx: typer.Context, email: str) -> None:
    """Show the user with an email address (case-insensitive)."""
    c = ctl(ctx)

    async def go() -> user_service_pb2.User:
        async with c.channel() as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            request = user_service_pb2.FindUserByEmailRequest(email=email)
            return (await stub.FindUserByEmail(request, metadata=c.metadata)).user

    _show_user(c.json, run(go()))


@users_app.command("delete")
def users_delete(
    ctx: typer.Context,
    user_id: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user (their tasks are kept); asks first unless --yes."""
    c = ctl(ctx)
    if not yes:
        typer.confirm(f"delete user {user_id}?", abort=True)

    async def go() -> None:
        async with c.channel() as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            request = user_service_pb2.DeleteUserRequest(user_id=user_id)
            await stub.DeleteUser(request, metadata=c.metadata)

    run(go())
    if c.json:
        emit_json({"deleted": user_id})
    else:
        console.print(f"deleted user {user_id}", highlight=False)
