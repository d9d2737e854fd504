"""The public UserService: validate, then create, read, find, update and delete users in the
users store that task-store keeps.

Rules (every violation names its field, and one answer lists them all):

* ``email`` is required; surrounding whitespace is dropped; at most 254 characters; one ``@``;
  before it (at most 64 characters) letters, digits and ``!#$%&'*+/=?^_`{|}~-``, with dots
  between them; after it a domain name of two or more labels (letters, digits, inner hyphens,
  at most 63 characters each), not an all-digit top label. ASCII only: international domains
  are written in punycode (``xn--``); quoted local parts and IP literals are refused.
  Emails are unique and matched trimmed and case-insensitively; they are stored as given.
* ``display_name`` is optional; surrounding whitespace is dropped; at most 100 characters; no
  control characters or line breaks.
* ``update_mask`` paths are ``email`` and ``display_name`` (``*`` or none: both); any other path
  is INVALID_ARGUMENT naming ``update_mask``.
* An id that is empty is INVALID_ARGUMENT; one that names no user is NOT_FOUND.
"""

# ruff: noqa: N802  (gRPC servicer methods carry the RPC names)

from __future__ import annotations

import re
import unicodedata
from typing import Any

import grpc

from genhub.common.errors import InvalidArgument, NotFound
from genhub.common.user_store_client import UserStoreClient
from genhub.gateway.validation import Violations
from genhub.v1 import user_service_pb2 as pb
from genhub.v1 import user_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_EMAIL_CHARS = 254  # RFC 5321: a forward path holds at most 256 octets, "<" and ">" included
MAX_LOCAL_PART_CHARS = 64  # RFC 5321 section 4.5.3.1.1
MAX_DISPLAY_NAME_CHARS = 100
WRITABLE_FIELDS = ("email", "display_name")
OUTPUT_ONLY_FIELDS = ("user_id", "create_time", "update_time")

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
# ids.new_id(): 26 characters of lowercase Crockford base32. Anything else names no user.
_USER_ID = re.compile(r"[0-9a-z]{26}", re.ASCII)


def check_email(v: Violations, path: str, raw: str) -> str:
    """The email trimmed; adds a violation at ``path`` when it is missing or malformed."""
    email = raw.strip()
    problem = _email_problem(email)
    if problem:
        v.add(path, problem)
    return email


def _email_problem(email: str) -> str:
    if not email:
        return "is required"
    if len(email) > MAX_EMAIL_CHARS:
        return f"is {len(email)} characters; at most {MAX_EMAIL_CHARS} are allowed"
    if not email.isascii():
        return "must be ASCII (write an international domain in punycode, xn--...)"
    if email.count("@") != 1:
        return "must be an address like name@example.com, with exactly one '@'"
    local, domain = email.split("@")
    if not local:
        return "needs a name before the '@'"
    if len(local) > MAX_LOCAL_PART_CHARS:
        return f"has more than {MAX_LOCAL_PART_CHARS} characters before the '@'"
    if not _LOCAL_PART.fullmatch(local):
        return (
            "before the '@' may hold only letters, digits, !#$%&'*+/=?^_`{|}~- and single dots "
            "between them"
        )
    labels = domain.split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return "must end in a domain name such as example.com after the '@'"
    return ""


def check_display_name(v: Violations, path: str, raw: str) -> str:
    """The display name trimmed; adds a violation at ``path`` when it breaks a rule."""
    name = raw.strip()
    if len(name) > MAX_DISPLAY_NAME_CHARS:
        v.add(path, f"is {len(name)} characters; at most {MAX_DISPLAY_NAME_CHARS} are allowed")
    elif any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        v.add(path, "must not contain control characters or line breaks")
    return name


def mask_fields(v: Violations, paths: list[str]) -> list[str]:
    """The writable fields an update mask names (both when empty or ``*``)."""
    if not paths or paths == ["*"]:
        return list(WRITABLE_FIELDS)
    for p in paths:
        if p in OUTPUT_ONLY_FIELDS:
            v.add("update_mask", f"{p!r} is output only and cannot be updated")
        elif p not in WRITABLE_FIELDS:
            v.add(
                "update_mask",
                f"unknown path {p!r}; paths are {', '.join(WRITABLE_FIELDS)} (or '*' for both)",
            )
    return [f for f in WRITABLE_FIELDS if f in paths]


def require_user_id(field: str, user_id: str) -> None:
    """INVALID_ARGUMENT when ``user_id`` is empty; NOT_FOUND when it cannot be an id at all
    (so junk never reaches the store)."""
    if not user_id:
        raise InvalidArgument.one(field, "is required")
    if not _USER_ID.fullmatch(user_id):
        raise NotFound(f"user {user_id[:64]} not found", reason="USER_NOT_FOUND")


class UserServicer(user_service_pb2_grpc.UserServiceServicer):
    """Implements genhub.v1.UserService over the users store."""

    def __init__(self, store: UserStoreClient) -> None:
        self._store = store

    async def CreateUser(
        self, request: pb.CreateUserRequest, context: Context
    ) -> pb.CreateUserResponse:
        """Validate and store a new user; ALREADY_EXISTS when the email is taken."""
        if not request.HasField("user"):
            raise InvalidArgument.one("user", "is required")
        v = Violations()
        email = check_email(v, "user.email", request.user.email)
        name = check_display_name(v, "user.display_name", request.user.display_name)
        v.raise_if_any()
        user = await self._store.create(pb.User(email=email, display_name=name))
        return pb.CreateUserResponse(user=user)

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        """A user by id."""
        require_user_id("user_id", request.user_id)
        return pb.GetUserResponse(user=await self._store.get(request.user_id))

    async def FindUserByEmail(
        self, request: pb.FindUserByEmailRequest, context: Context
    ) -> pb.FindUserByEmailResponse:
        """The user with an email address, matched case-insensitively."""
        v = Violations()
        email = check_email(v, "email", request.email)
        v.raise_if_any()
        return pb.FindUserByEmailResponse(user=await self._store.find_by_email(email))

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
        """Change the fields update_mask names; ALREADY_EXISTS when the new email is taken."""
        if not request.HasField("user"):
            raise InvalidArgument.one("user", "is required")
        v = Violations()
        if not request.user.user_id:
            v.add("user.user_id", "is required")
        fields = mask_fields(v, list(request.update_mask.paths))
        changes = pb.User(user_id=request.user.user_id)
        if "email" in fields:
            changes.email = check_email(v, "user.email", request.user.email)
        if "display_name" in fields:
            changes.display_name = check_display_name(
                v, "user.display_name", request.user.display_name
            )
        v.raise_if_any()
        require_user_id("user.user_id", changes.user_id)
        return pb.UpdateUserResponse(user=await self._store.update(changes, fields))

    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Context
    ) -> pb.DeleteUserResponse:
        """Remove a user; their tasks are kept and stay listable by user_id."""
        require_user_id("user_id", request.user_id)
        await self._store.delete(request.user_id)
        return pb.DeleteUserResponse()
