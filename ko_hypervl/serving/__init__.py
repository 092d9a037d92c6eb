"""Serving the model to people: the Gradio demo and the OpenAI-compatible HTTP API, over one shared service."""

from .gate import ConcurrencyGate, ServerBusy
from .service import ModelService, ServerSettings

__all__ = ["ConcurrencyGate", "ModelService", "ServerBusy", "ServerSettings"]
