"""The EC2 backend: Amazon EC2 or any EC2-compatible cloud (cloudgate's own EC2 frontend too), via botocore."""

from backends.ec2.backend import EC2Backend
from backends.ec2.mapping import ERRORS, STATE_MAP

__all__ = ["ERRORS", "STATE_MAP", "EC2Backend"]
