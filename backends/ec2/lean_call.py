"""The EC2 backend's frequent calls made with botocore's parts, without its client's per-call machinery.

PERF: a call through a botocore client emits a dozen events, resolves its endpoint through the ruleset and
creates a parser, whatever the operation; for EC2's Query protocol none of it changes the request, and it
costs about 0.5 ms of CPU a call on the 2-core development machine, a fifth of what the call costs the worker
(a read by id against moto: 2.4 ms of CPU through the client, 1.9 this way; a TerminateInstances alike;
``python bench/bench_ec2_lean_call.py``).

A lean call is what the client does for the operations of ``LEAN``, with the client's own parts and in its
order: parameters validated and serialised (``botocore.serialize``), idempotency tokens filled in when
absent (``generate_idempotent_uuid``), the request made (``prepare_request_dict``, ``create_request_object``)
with the client's User-Agent, signed with SigV4 by the client's credentials (frozen per call, so refreshed ones
are current), sent through the client's HTTP session (its pool, proxies, TLS, timeouts, and the network
exceptions botocore raises), read by the reader the client reads with (``ResponseParserFactory``), an error
answer raised as the client raises it (``client.exceptions.from_code``). What it leaves out does nothing for
these operations: no handler of their own is registered in botocore (a test checks), EC2 has no endpoint
host prefix, checksum or compression, and the client makes one attempt (the translator retries).

Anything else, and every call of a client whose parts are not where this expects them (botocore moved its
internals), goes through the client as before.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.model import OperationModel
from botocore.serialize import create_serializer

from backends.ec2.response_parser import ResponseParserFactory

#: The operations called lean (botocore's Python names): the reads of listings and polls, and what acts on
#: machines and tags. Their botocore events have only generic handlers (tests/backends/test_ec2_lean_call.py).
LEAN: frozenset[str] = frozenset(
    {
        "describe_account_attributes",
        "describe_addresses",
        "describe_availability_zones",
        "describe_images",
        "describe_instance_attribute",
        "describe_instance_types",
        "describe_instances",
        "describe_key_pairs",
        "describe_network_interfaces",
        "describe_security_groups",
        "describe_snapshots",
        "describe_subnets",
        "describe_volumes",
        "describe_vpcs",
        "run_instances",
        "terminate_instances",
        "start_instances",
        "stop_instances",
        "reboot_instances",
        "create_tags",
        "delete_tags",
    }
)


class LeanCaller:
    """The lean calls of one botocore EC2 client (thread-safe: it keeps nothing per call)."""

    def __init__(self, client: BaseClient, credentials: Credentials, user_agent: str, http_session: Any) -> None:
        self.client = client
        self.credentials = credentials
        self.user_agent = user_agent
        self.http_session = http_session
        self.endpoint_url: str = client.meta.endpoint_url
        self.region: str = client.meta.region_name
        self.signing_name: str = client.meta.service_model.signing_name
        self.serializer = create_serializer("ec2", include_validation=client.meta.config.parameter_validation)
        self.parser = ResponseParserFactory().create_parser("ec2")
        self.operations: dict[str, OperationModel] = {
            name: client.meta.service_model.operation_model(client.meta.method_to_api_mapping[name]) for name in LEAN
        }
        self._config = client.meta.config

    @classmethod
    def of(cls, client: BaseClient, credentials: Credentials | None) -> LeanCaller | None:
        """The lean caller of ``client``; None when a part is missing (no credentials: the client says so)."""
        endpoint = getattr(client, "_endpoint", None)
        session = getattr(endpoint, "http_session", None)
        creator = getattr(client, "_user_agent_creator", None)
        if credentials is None or session is None or creator is None:
            return None
        if (
            client.meta.service_model.protocol != "ec2"
            or (client.meta.config.retries or {}).get("total_max_attempts") != 1
        ):
            return None  # (the answers of a client that retries say otherwise; retrying is the translator's job)
        return cls(client, credentials, creator.to_string(), session)

    def call(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """What ``getattr(client, name)(**params)`` answers or raises, for ``name`` in ``LEAN``."""
        model = self.operations[name]
        for token in model.idempotent_members:
            if token not in params:
                params = {**params, token: str(uuid.uuid4())}
        request_dict = self.serializer.serialize_to_request(params, model)
        context = {
            "client_region": self.region,
            "client_config": self._config,
            "has_streaming_input": False,
            "auth_type": None,
        }
        prepare_request_dict(request_dict, endpoint_url=self.endpoint_url, context=context, user_agent=self.user_agent)
        request = create_request_object(request_dict)
        SigV4Auth(self.credentials.get_frozen_credentials(), self.signing_name, self.region).add_auth(request)
        http = self.http_session.send(request.prepare())
        answer = {"headers": http.headers, "status_code": http.status_code, "body": http.content}
        parsed: dict[str, Any] = self.parser.parse(answer, model.output_shape)
        # what the client's retry handler and endpoint add to every answer when it makes one attempt only
        parsed.setdefault("ResponseMetadata", {}).update(MaxAttemptsReached=True, RetryAttempts=0)
        if http.status_code >= 300:
            code = parsed.get("Error", {}).get("Code")
            raise self.client.exceptions.from_code(code)(parsed, model.name)
        return parsed
