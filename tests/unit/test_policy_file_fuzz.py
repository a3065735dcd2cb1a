"""Fuzzing the policy file and the events path end to end: any file is loaded or refused with
a `SettingsError` naming GOVERNANCE_POLICY_FILE; any event body through the App (over the
in-memory gateway) ends in an outcome, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.bootstrap import build_app
from shared.errors import InvalidEvent, SettingsError
from shared.notify.sinks import Channel, MemoryCardSink
from shared.policy_file import load_policy_file
from shared.settings import POLICY_KEYS, build_policy
from shared.tracking.memory import InMemoryGateway
from tests.support import NOW
from tests.support import settings as make_settings
from tests.unit.test_event_fuzz import EVENT

DEFAULT = build_policy({})
FOLDER = Path(tempfile.mkdtemp(prefix="mlgov-fuzz-"))
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
)
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
KEY = st.sampled_from(sorted(POLICY_KEYS)) | st.sampled_from(["experiments", "workspaces"])
ENTRY = st.dictionaries(KEY | st.text(max_size=6), VALUE, max_size=5)
DOCUMENT = st.fixed_dictionaries({"overrides": st.lists(ENTRY, max_size=4) | VALUE}) | VALUE
FUZZ = settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))


def _load(text: str) -> None:
    path = FOLDER / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    refused: SettingsError | None = None
    try:
        overrides = load_policy_file(path, DEFAULT)
    except SettingsError as exc:
        refused = exc
    if refused is not None:
        assert refused.setting.startswith("GOVERNANCE_POLICY_FILE"), refused
        assert refused.problem
        return
    assert isinstance(overrides, tuple)


@FUZZ
@given(DOCUMENT)
def test_any_structured_policy_file_loads_or_is_refused_by_name(document: Any) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.text(alphabet="overrides:experiments-*[]{}&*<>!| \n'\"0.5auc_", max_size=160))
@example("0x_")  # PyYAML resolves it as hexadecimal, then cannot convert it (ValueError)
@example("overrides: [{experiments: '*', promotion_threshold: 0x_}]")
def test_any_text_loads_or_is_refused_by_name(text: str) -> None:
    _load(text)


def _app():
    gateway = InMemoryGateway(clock=lambda: NOW)
    gateway.create_experiment("exp")
    return build_app(
        make_settings(experiments="exp", required_tags="owner"),
        gateway=gateway,
        channel=Channel(MemoryCardSink(), "memory"),
        clock=lambda: NOW,
    )


APP = _app()


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(EVENT, max_size=3) | EVENT)
def test_any_event_body_through_the_app_ends_in_an_outcome(body: Any) -> None:
    import json

    refused: InvalidEvent | None = None
    try:
        outcome = APP.handle_events(json.dumps(body))
    except InvalidEvent as exc:
        refused = exc
    if refused is not None:
        assert refused.problem
        return
    assert outcome.exit_code in (0, 1, 2)
    assert outcome.report.to_json()
