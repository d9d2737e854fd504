"""Whose tasks a caller may touch. With authentication on:

* a task belongs to the user of the key that created it (``Task.user_id``); a create's
  ``user_id`` must be empty or that user's own id — another id is PERMISSION_DENIED naming
  ``user_id`` (AIP-211: asking to act as someone else is an authorisation failure; the id is
  never silently replaced). An admin key may create for any user (empty: the admin's own id);
* a user's Get/Watch/Cancel/Retry/Delete of another user's task answers NOT_FOUND, word for word as
  for a task that does not exist, so task ids of other tenants cannot be probed;
* a user's list and search are restricted to their own tasks (an empty ``user_id`` filter means
  "mine"; another user's id is PERMISSION_DENIED); an admin's empty filter means everyone's.

With authentication off (:func:`genhub.gateway.auth.current` is None) nothing is restricted.
"""

from __future__ import annotations

from genhub.common.errors import NotFound, PermissionDenied
from genhub.gateway import auth
from genhub.v1 import task_pb2


def _mismatch(field: str) -> PermissionDenied:
    return PermissionDenied(
        f"{field} must be empty or the caller's own user id (it comes from the API key)",
        reason="USER_MISMATCH",
        metadata={"field": field},
    )


def owner_for_create(user_id: str) -> str:
    """The user_id a new task gets."""
    principal = auth.current()
    if principal is None or (principal.admin and user_id):
        return user_id
    if user_id and user_id != principal.user_id:
        raise _mismatch("user_id")
    return principal.user_id


def list_filter(user_id: str) -> str:
    """The user_id a list or search is restricted to (empty: every user's)."""
    principal = auth.current()
    if principal is None or principal.admin:
        return user_id
    if user_id and user_id != principal.user_id:
        raise _mismatch("user_id")
    return principal.user_id


def check_owner(task: task_pb2.Task) -> task_pb2.Task:
    """``task`` if the caller may see it; otherwise the NOT_FOUND a missing task gets."""
    principal = auth.current()
    if principal is None or principal.admin or task.user_id == principal.user_id:
        return task
    raise NotFound(f"task {task.task_id} not found", metadata={"task_id": task.task_id})
