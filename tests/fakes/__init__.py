"""Fake provider servers speaking the providers' real wire APIs, for tests and ``make run``.

Every fake has the same shape so the test harness and the devstack can treat them alike: a class
with ``async start(host="127.0.0.1", port=0) -> base URL``, ``async stop()``, a record of the
calls it answered (``calls``, ``count(...)``), prompt directives that make it misbehave on
purpose (``directives.py``), and a CLI (``python -m tests.fakes.<name> --port N``). Media it
returns by URL (real PNGs and MP4s) is served by the fake itself under ``/media/``.
"""
