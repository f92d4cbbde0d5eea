"""A target name carries scheme, host, port and path only: never a URL's userinfo, query string or fragment.

Target names reach ``str(error)`` (the attempts list), ``attempts[].target``, events, registry and signals names
and ``CircuitOpenError.target``, none of which is redacted, so the name itself must hold no credential.
"""

from __future__ import annotations

import pytest

from langchain_ailib_resilience.targets import normalise_api_base, split_target, target_key

SECRET = "sk-proj-0123456789abcdef"


@pytest.mark.parametrize(
    ("api_base", "expected"),
    [
        (f"http://user:{SECRET}@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        (f"http://{SECRET}@gateway.example/v1/", "http://gateway.example/v1"),
        (f"https://gateway.example/v1?api-key={SECRET}", "https://gateway.example/v1"),
        (f"https://gateway.example/v1/?key={SECRET}&x=1", "https://gateway.example/v1"),
        (
            f"https://gateway.example:8443/openai/deployments/x?token={SECRET}#frag",
            "https://gateway.example:8443/openai/deployments/x",
        ),
        ("https://Gateway.Example/v1", "https://Gateway.Example/v1"),
        ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1"),
        (f"https://user:{SECRET}@api.openai.com/v1", None),
    ],
)
def test_api_base_keeps_scheme_host_port_path(api_base: str, expected: str | None) -> None:
    assert normalise_api_base(api_base) == expected


def test_unparseable_base_still_loses_userinfo_and_query() -> None:
    name = normalise_api_base(f"http://u:{SECRET}@[::1/v1?key={SECRET}")  # an unclosed IPv6 bracket
    assert name is not None
    assert SECRET not in name


def test_a_key_in_the_path_is_redacted() -> None:
    name = normalise_api_base(f"https://gateway.example/key/{SECRET}/v1")
    assert name is not None
    assert SECRET not in name


def test_target_key_and_split_round_trip_without_the_secret() -> None:
    key = target_key("openai/gpt-4o", api_base=f"http://user:{SECRET}@127.0.0.1:8000/v1?api-key={SECRET}")
    assert key == "openai/gpt-4o@http://127.0.0.1:8000/v1"
    assert split_target(key) == ("openai/gpt-4o", "http://127.0.0.1:8000/v1", None)


def test_a_base_without_a_scheme_is_cut_by_hand() -> None:
    assert normalise_api_base(f"user:{SECRET}@localhost:8000/v1?key={SECRET}") == "localhost:8000/v1"
    assert normalise_api_base("localhost:8000/v1/") == "localhost:8000/v1"
