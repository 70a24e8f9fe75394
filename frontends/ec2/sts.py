"""STS ``GetCallerIdentity`` on the EC2 endpoint: what Terraform and Ansible ask first.

Clients sign it with the SigV4 service ``sts``; the answer names the caller's tenant account. STS
speaks the plain Query protocol (a ``...Result`` wrapper, ``ErrorResponse`` errors), not EC2's, and
has a single action here, so its two documents are written out rather than driven by a model.
"""

from __future__ import annotations

from frontends.ec2.render import escape_text

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def caller_identity(account_id: str, user: str, user_id: str, request_id: str) -> bytes:
    """The GetCallerIdentity response for a gateway user (named ``user``, keyed ``user_id``) of an account."""
    arn = escape_text(f"arn:aws:iam::{account_id}:user/{user}")
    return (
        f'{_DECL}<GetCallerIdentityResponse xmlns="{NAMESPACE}"><GetCallerIdentityResult>'
        f"<Arn>{arn}</Arn><UserId>{escape_text(user_id)}</UserId><Account>{escape_text(account_id)}</Account>"
        f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{escape_text(request_id)}</RequestId>"
        f"</ResponseMetadata></GetCallerIdentityResponse>"
    ).encode()


def error(code: str, message: str, request_id: str, status: int) -> bytes:
    """STS's error document; ``Type`` is Sender for 4xx, Receiver for 5xx."""
    kind = "Sender" if status < 500 else "Receiver"
    return (
        f'{_DECL}<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{escape_text(code)}</Code>'
        f"<Message>{escape_text(message)}</Message></Error><RequestId>{escape_text(request_id)}</RequestId>"
        f"</ErrorResponse>"
    ).encode()
