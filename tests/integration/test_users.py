"""UserService on the real stack: the CRUD round trip, every validation rule (code and field),
unique emails (case-insensitive, on create and update, under concurrency), what deleting a user
leaves, and the same over REST."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from genhub.v1 import task_service_pb2, user_service_pb2_grpc
from genhub.v1 import user_service_pb2 as pb
from tests.support.rest import client, shared_rest_stack
from tests.support.stack import Stack
from tests.support.tasks import error_reason, text_request, violations

__all__ = ["shared_rest_stack"]  # a fixture this module uses

if TYPE_CHECKING:  # the async stub type exists only in the .pyi
    Users = user_service_pb2_grpc.UserServiceAsyncStub
MISSING_ID = "01m84kz4t4n3tre38bhs85n1fw"  # well-formed, never created


@pytest.fixture(scope="module")
async def users(shared_rest_stack: Stack) -> AsyncIterator[Users]:
    """A UserService stub on the module's stack."""
    async with grpc.aio.insecure_channel(shared_rest_stack.gateway_addr) as channel:
        yield user_service_pb2_grpc.UserServiceStub(channel)


@pytest.fixture(scope="module")
async def http(shared_rest_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the module's REST server."""
    async with client(shared_rest_stack) as opened:
        yield opened


def _email(name: str = "ada") -> str:
    """An address no other test uses (the stack is shared by the module)."""
    return f"{name}.{secrets.token_hex(4)}@example.com"


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def _create(users: Users, email: str, display_name: str = "") -> pb.User:
    request = pb.CreateUserRequest(user=pb.User(email=email, display_name=display_name))
    return (await users.CreateUser(request)).user


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def test_create_get_find_update_delete(users: Users) -> None:
    email = _email("Ada.Lovelace")
    created = await _create(users, f"  {email}  ", "Ada Lovelace")
    assert created.email == email  # trimmed, case kept
    assert created.display_name == "Ada Lovelace"
    assert len(created.user_id) == 26
    assert created.create_time == created.update_time
    assert created.create_time.seconds > 0

    got = (await users.GetUser(pb.GetUserRequest(user_id=created.user_id))).user
    assert got == created
    for spelling in (email.upper(), email.lower(), f" {email.swapcase()} "):
        found = await users.FindUserByEmail(pb.FindUserByEmailRequest(email=spelling))
        assert found.user == created, spelling

    rename = pb.UpdateUserRequest(
        user=pb.User(user_id=created.user_id, email="ignored@example.com", display_name="A"),
        update_mask=_mask("display_name"),
    )
    renamed = (await users.UpdateUser(rename)).user
    assert (renamed.email, renamed.display_name) == (email, "A")
    assert renamed.create_time == created.create_time
    assert renamed.update_time.ToDatetime() >= created.update_time.ToDatetime()
    # Repeating an update changes nothing, update_time included.
    assert (await users.UpdateUser(rename)).user == renamed

    new_email = _email("countess")
    moved = (
        await users.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(user_id=created.user_id, email=new_email, display_name="ignored"),
                update_mask=_mask("email"),
            )
        )
    ).user
    assert (moved.email, moved.display_name) == (new_email, "A")
    error = await _error(users.FindUserByEmail(pb.FindUserByEmailRequest(email=email)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    found = await users.FindUserByEmail(pb.FindUserByEmailRequest(email=new_email.upper()))
    assert found.user.user_id == created.user_id

    # No mask (or "*"): every writable field is replaced, so an empty display name clears it.
    for mask in (None, _mask("*")):
        replaced = (
            await users.UpdateUser(
                pb.UpdateUserRequest(
                    user=pb.User(user_id=created.user_id, email=email), update_mask=mask
                )
            )
        ).user
        assert (replaced.email, replaced.display_name) == (email, "")

    await users.DeleteUser(pb.DeleteUserRequest(user_id=created.user_id))
    for call in (
        users.GetUser(pb.GetUserRequest(user_id=created.user_id)),
        users.FindUserByEmail(pb.FindUserByEmailRequest(email=email)),
        users.DeleteUser(pb.DeleteUserRequest(user_id=created.user_id)),
        users.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(user_id=created.user_id, display_name="x"),
                update_mask=_mask("display_name"),
            )
        ),
    ):
        error = await _error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(error) == "USER_NOT_FOUND"


def _create_request(email: str = "", display_name: str = "") -> pb.CreateUserRequest:
    return pb.CreateUserRequest(user=pb.User(email=email or _email(), display_name=display_name))


def _update_request(
    *paths: str, email: str = "", display_name: str = "", user_id: str = MISSING_ID
) -> pb.UpdateUserRequest:
    return pb.UpdateUserRequest(
        user=pb.User(user_id=user_id, email=email, display_name=display_name),
        update_mask=_mask(*paths),
    )


LONG_EMAIL = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "com"  # 260 characters

CASES: list[tuple[str, str, Any, str, str]] = [
    # (case, RPC, request, field named, words the description contains)
    ("create without user", "CreateUser", pb.CreateUserRequest(), "user", "required"),
    ("empty email", "CreateUser", pb.CreateUserRequest(user=pb.User()), "user.email", "required"),
    ("blank email", "CreateUser", _create_request("   "), "user.email", "required"),
    ("no @", "CreateUser", _create_request("ada.example.com"), "user.email", "exactly one '@'"),
    ("two @", "CreateUser", _create_request("a@b@example.com"), "user.email", "exactly one"),
    ("nothing before @", "CreateUser", _create_request("@example.com"), "user.email", "before"),
    (
        "local part too long",
        "CreateUser",
        _create_request("a" * 65 + "@example.com"),
        "user.email",
        "more than 64",
    ),
    ("double dot", "CreateUser", _create_request("a..b@example.com"), "user.email", "single dots"),
    ("leading dot", "CreateUser", _create_request(".a@example.com"), "user.email", "single dots"),
    ("space inside", "CreateUser", _create_request("a b@example.com"), "user.email", "only"),
    ("quoted local", "CreateUser", _create_request('"a"@example.com'), "user.email", "only"),
    ("no domain dot", "CreateUser", _create_request("ada@localhost"), "user.email", "domain"),
    ("empty label", "CreateUser", _create_request("ada@example..com"), "user.email", "domain"),
    ("hyphen label", "CreateUser", _create_request("ada@-example.com"), "user.email", "domain"),
    ("numeric tld", "CreateUser", _create_request("ada@10.0.0.1"), "user.email", "domain"),
    ("ip literal", "CreateUser", _create_request("ada@[10.0.0.1]"), "user.email", "domain"),
    ("too long", "CreateUser", _create_request(LONG_EMAIL), "user.email", "at most 254"),
    ("not ascii", "CreateUser", _create_request("zoë@example.com"), "user.email", "ASCII"),
    (
        "display name too long",
        "CreateUser",
        _create_request(display_name="x" * 101),
        "user.display_name",
        "at most 100",
    ),
    (
        "display name line break",
        "CreateUser",
        _create_request(display_name="Ada\nLovelace"),
        "user.display_name",
        "control characters",
    ),
    (
        "display name NUL",
        "CreateUser",
        _create_request(display_name="Ada\x00"),
        "user.display_name",
        "control characters",
    ),
    ("get without id", "GetUser", pb.GetUserRequest(), "user_id", "required"),
    ("delete without id", "DeleteUser", pb.DeleteUserRequest(), "user_id", "required"),
    ("find without email", "FindUserByEmail", pb.FindUserByEmailRequest(), "email", "required"),
    (
        "find malformed email",
        "FindUserByEmail",
        pb.FindUserByEmailRequest(email="not-an-address"),
        "email",
        "exactly one '@'",
    ),
    ("update without user", "UpdateUser", pb.UpdateUserRequest(), "user", "required"),
    (
        "update without id",
        "UpdateUser",
        _update_request("display_name", user_id=""),
        "user.user_id",
        "required",
    ),
    ("unknown mask path", "UpdateUser", _update_request("nickname"), "update_mask", "nickname"),
    (
        "JSON name in mask",
        "UpdateUser",
        _update_request("displayName"),
        "update_mask",
        "unknown path",
    ),
    ("output-only path", "UpdateUser", _update_request("create_time"), "update_mask", "output"),
    ("user_id in mask", "UpdateUser", _update_request("user_id"), "update_mask", "output only"),
    (
        "masked email bad",
        "UpdateUser",
        _update_request("email", email="nope"),
        "user.email",
        "exactly one '@'",
    ),
    ("no mask, no email", "UpdateUser", _update_request(), "user.email", "required"),
    (
        "masked display name too long",
        "UpdateUser",
        _update_request("display_name", display_name="y" * 101),
        "user.display_name",
        "at most 100",
    ),
]


@pytest.mark.parametrize(
    ("case", "rpc", "request_", "field", "words"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_names_the_field(
    users: Users, case: str, rpc: str, request_: Any, field: str, words: str
) -> None:
    error = await _error(getattr(users, rpc)(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    found = violations(error)
    assert field in found, f"{case}: {found}"
    assert words in found[field], f"{case}: {found[field]!r}"


async def test_every_bad_field_is_reported_at_once(users: Users) -> None:
    error = await _error(users.CreateUser(_create_request("a@b", "z" * 200)))
    assert set(violations(error)) == {"user.email", "user.display_name"}
    error = await _error(users.UpdateUser(_update_request("email", "bogus", email="x", user_id="")))
    assert set(violations(error)) == {"user.user_id", "update_mask", "user.email"}


@pytest.mark.parametrize(
    ("email", "display_name"),
    [
        ("o'brien+tag@mail.example.co.uk", "Conan O'Brien"),
        ("UPPER_case-1{x}@Sub-Domain.Example.ORG", ""),
        ("x@xn--bcher-kva.example", "Bücher 📚 👩‍💻"),  # punycode domain; emoji with a ZWJ
        ("a" * 64 + "@" + ("b" * 63 + ".") * 2 + "c" * 58 + ".io", "n" * 100),  # 254, 100
    ],
    ids=["apostrophe and plus", "upper case", "punycode and emoji", "longest"],
)
async def test_edge_values_are_accepted(users: Users, email: str, display_name: str) -> None:
    user = await _create(users, email, f"  {display_name}  ")
    assert (user.email, user.display_name) == (email, display_name)
    found = await users.FindUserByEmail(pb.FindUserByEmailRequest(email=email.lower()))
    assert found.user.user_id == user.user_id
    await users.DeleteUser(pb.DeleteUserRequest(user_id=user.user_id))


async def test_unknown_or_malformed_ids_are_not_found(users: Users) -> None:
    for user_id in (MISSING_ID, "nope", "x" * 500, "../../etc", "01M84KZ4T4N3TRE38BHS85N1FW"):
        for call in (
            users.GetUser(pb.GetUserRequest(user_id=user_id)),
            users.DeleteUser(pb.DeleteUserRequest(user_id=user_id)),
            users.UpdateUser(_update_request("display_name", display_name="x", user_id=user_id)),
        ):
            assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND, user_id
    error = await _error(users.FindUserByEmail(pb.FindUserByEmailRequest(email=_email())))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_taken_email_is_already_exists_on_create_and_update(users: Users) -> None:
    email = _email("grace")
    first = await _create(users, email)
    for spelling in (email, email.upper(), f"\t{email.title()} "):
        error = await _error(users.CreateUser(_create_request(spelling)))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, spelling
        assert error_reason(error) == "EMAIL_TAKEN"

    second = await _create(users, _email("hopper"))
    error = await _error(
        users.UpdateUser(_update_request("email", email=email.upper(), user_id=second.user_id))
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(error) == "EMAIL_TAKEN"
    unchanged = (await users.GetUser(pb.GetUserRequest(user_id=second.user_id))).user
    assert unchanged == second

    # A user may change the case of their own address, and a freed address can be taken.
    recased = await users.UpdateUser(
        _update_request("email", email=email.upper(), user_id=first.user_id)
    )
    assert recased.user.email == email.upper()
    await users.DeleteUser(pb.DeleteUserRequest(user_id=first.user_id))
    again = await users.UpdateUser(_update_request("email", email=email, user_id=second.user_id))
    assert again.user.email == email


async def test_concurrent_creates_with_one_email_let_exactly_one_win(users: Users) -> None:
    email = _email("race")
    spellings = [email if i % 2 else email.upper() for i in range(12)]
    outcomes = await asyncio.gather(
        *(users.CreateUser(_create_request(s)) for s in spellings), return_exceptions=True
    )
    winners = [o.user for o in outcomes if isinstance(o, pb.CreateUserResponse)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == len(spellings) - 1
    assert {e.code() for e in losers} == {grpc.StatusCode.ALREADY_EXISTS}
    found = await users.FindUserByEmail(pb.FindUserByEmailRequest(email=email))
    assert found.user == winners[0]


async def test_concurrent_updates_to_one_email_let_exactly_one_win(users: Users) -> None:
    email = _email("target")
    people = [await _create(users, _email("p")) for _ in range(6)]
    outcomes = await asyncio.gather(
        *(
            users.UpdateUser(_update_request("email", email=email, user_id=p.user_id))
            for p in people
        ),
        return_exceptions=True,
    )
    winners = [o.user for o in outcomes if isinstance(o, pb.UpdateUserResponse)]
    assert len(winners) == 1, outcomes
    assert {o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)} == {
        grpc.StatusCode.ALREADY_EXISTS
    }
    found = await users.FindUserByEmail(pb.FindUserByEmailRequest(email=email))
    assert found.user == winners[0]


async def test_deleting_a_user_keeps_their_tasks_and_never_reuses_the_id(
    shared_rest_stack: Stack, users: Users
) -> None:
    email = _email("leaver")
    user = await _create(users, email)
    task = (await shared_rest_stack.tasks.CreateTextTask(text_request(user_id=user.user_id))).task

    await users.DeleteUser(pb.DeleteUserRequest(user_id=user.user_id))

    listed = await shared_rest_stack.tasks.ListTasks(
        task_service_pb2.ListTasksRequest(user_id=user.user_id)
    )
    assert [t.task_id for t in listed.tasks] == [task.task_id]
    returning = await _create(users, email)
    assert returning.user_id != user.user_id
    listed = await shared_rest_stack.tasks.ListTasks(
        task_service_pb2.ListTasksRequest(user_id=returning.user_id)
    )
    assert list(listed.tasks) == []


def _rest_violations(body: dict[str, Any]) -> dict[str, str]:
    return {
        v["field"]: v["description"]
        for detail in body["details"]
        if detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        for v in detail["fieldViolations"]
    }


async def test_rest_round_trip(http: httpx.AsyncClient, users: Users) -> None:
    email = _email("Rest")
    created = await http.post("/api/v1/users", json={"email": email, "displayName": "Rest"})
    assert created.status_code == 200, created.text
    user = created.json()
    assert set(user) == {"userId", "email", "displayName", "createTime", "updateTime"}
    assert (user["email"], user["displayName"]) == (email, "Rest")
    user_id = user["userId"]
    over_grpc = (await users.GetUser(pb.GetUserRequest(user_id=user_id))).user
    assert over_grpc.email == email

    got = await http.get(f"/api/v1/users/{user_id}")
    assert got.status_code == 200 and got.json() == user
    found = await http.get("/api/v1/users:findByEmail", params={"email": email.upper()})
    assert found.status_code == 200 and found.json() == user

    patched = await http.patch(
        f"/api/v1/users/{user_id}",
        params={"updateMask": "displayName"},
        json={"displayName": "Renamed", "email": "ignored@example.com"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["displayName"], patched.json()["email"]) == ("Renamed", email)

    # Without updateMask every writable field is replaced, so the email is required.
    no_mask = await http.patch(f"/api/v1/users/{user_id}", json={"displayName": "X"})
    assert no_mask.status_code == 400
    assert "user.email" in _rest_violations(no_mask.json())
    bad_mask = await http.patch(
        f"/api/v1/users/{user_id}", params={"updateMask": "nickname"}, json={}
    )
    assert bad_mask.status_code == 400
    assert "update_mask" in _rest_violations(bad_mask.json())

    duplicate = await http.post("/api/v1/users", json={"email": email.upper()})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]
    invalid = await http.post("/api/v1/users", json={"email": "nope"})
    assert invalid.status_code == 400
    assert "user.email" in _rest_violations(invalid.json())

    deleted = await http.delete(f"/api/v1/users/{user_id}")
    assert deleted.status_code == 200 and deleted.json() == {}
    gone = await http.get(f"/api/v1/users/{user_id}")
    assert gone.status_code == 404
    assert gone.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    missing = await http.get("/api/v1/users:findByEmail", params={"email": email})
    assert missing.status_code == 404
