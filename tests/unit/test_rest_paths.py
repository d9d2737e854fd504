"""Path templates: the google.api.http grammar, matching raw paths, precedence, expansion."""

from __future__ import annotations

import pytest

from genhub.gateway.rest.bindings import load_bindings
from genhub.gateway.rest.paths import MalformedEscapeError, PathTemplate, TemplateError


def test_simple_variable_matches_one_segment() -> None:
    template = PathTemplate.parse("/api/v1/ai/task/result/{task_id}")
    assert template.match("/api/v1/ai/task/result/01abc") == {"task_id": "01abc"}
    assert template.match("/api/v1/ai/task/result/a/b") is None
    assert template.match("/api/v1/ai/task/result/") is None
    assert template.match("/api/v1/ai/task/result") is None


def test_values_are_percent_decoded() -> None:
    template = PathTemplate.parse("/users/{user_id}")
    assert template.match("/users/a%2Fb%20c") == {"user_id": "a/b c"}
    assert template.match("/users/%E7%8C%AB") == {"user_id": "猫"}
    with pytest.raises(UnicodeDecodeError):
        template.match("/users/%ff")


@pytest.mark.parametrize("value", ["%zz", "%2", "%", "a%g1", "%%41", "a%2Fb%2"])
def test_malformed_percent_escapes_are_refused_not_kept(value: str) -> None:
    # unquote() keeps a malformed escape as text, which would look up a task named '%zz'.
    with pytest.raises(MalformedEscapeError, match="is not a percent-escape"):
        PathTemplate.parse("/users/{user_id}").match(f"/users/{value}")
    with pytest.raises(MalformedEscapeError):
        PathTemplate.parse("/files/{name=**}").match(f"/files/a/{value}")


def test_verb_suffix() -> None:
    template = PathTemplate.parse("/api/v1/ai/task/{task_id}:cancel")
    assert template.verb == "cancel"
    assert template.match("/api/v1/ai/task/t1:cancel") == {"task_id": "t1"}
    assert template.match("/api/v1/ai/task/t1:watch") is None
    assert template.match("/api/v1/ai/task/t1") is None
    literal = PathTemplate.parse("/api/v1/users:findByEmail")
    assert literal.match("/api/v1/users:findByEmail") == {}
    assert literal.match("/api/v1/users/x") is None


def test_nested_field_paths() -> None:
    template = PathTemplate.parse("/api/v1/providers/{provider}/models/{model.model}")
    assert [v.field_path for v in template.variables] == ["provider", "model.model"]
    assert template.match("/api/v1/providers/demo/models/m-1") == {
        "provider": "demo",
        "model.model": "m-1",
    }


def test_variable_with_segments_and_double_wildcard() -> None:
    template = PathTemplate.parse("/v1/{name=projects/*/files/**}:get")
    assert template.match("/v1/projects/p/files/a/b%2Fc:get") == {
        "name": "projects/p/files/a/b%2Fc"
    }
    assert template.match("/v1/other/p/files/a:get") is None
    assert template.variables[0].multi_segment


def test_expand_round_trips() -> None:
    template = PathTemplate.parse("/api/v1/ai/task/{task_id}:watch")
    path = template.expand({"task_id": "a b/c"})
    assert path == "/api/v1/ai/task/a%20b%2Fc:watch"
    assert template.match(path) == {"task_id": "a b/c"}


def test_openapi_path_and_shape() -> None:
    a = PathTemplate.parse("/api/v1/users/{user_id}")
    b = PathTemplate.parse("/api/v1/users/{user.user_id}")
    assert a.shape() == b.shape()
    assert b.openapi_path({"user.user_id": "user_id"}) == "/api/v1/users/{user_id}"
    assert PathTemplate.parse("/a/{x}:go").openapi_path() == "/a/{x}:go"


def test_specificity_prefers_verbs_and_literals() -> None:
    verb = PathTemplate.parse("/api/v1/users:findByEmail")
    plain = PathTemplate.parse("/api/v1/{x}")
    assert verb.specificity > plain.specificity
    assert PathTemplate.parse("/a/b").specificity > PathTemplate.parse("/a/{x}").specificity


@pytest.mark.parametrize(
    "template",
    [
        "api/v1",
        "/a/{x",
        "/a/x}",
        "/a/{1x}",
        "/a/{x}/{x}",
        "/a/**/b",
        "/a/:verb",
        "/a/b:",
        "/a//b",
        "/a/{x=}",
    ],
)
def test_malformed_templates_are_rejected(template: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(template)


def test_every_descriptor_template_parses_and_matches_its_own_expansion() -> None:
    for binding in load_bindings():
        values = {v.field_path: f"v-{i}" for i, v in enumerate(binding.template.variables)}
        assert binding.template.match(binding.template.expand(values)) == values, str(binding)
