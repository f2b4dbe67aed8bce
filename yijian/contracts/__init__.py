"""The event envelope and every versioned payload: the only thing services share."""

from yijian.contracts.envelope import Envelope, Payload

__all__ = ["Envelope", "Payload"]
