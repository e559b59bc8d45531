"""The desk fixtures (a real app on a real Redis, agents on the REST API) for the analytics tests."""

from tests.gateway.conftest import desk, desk_settings, make_agent, user  # noqa: F401
