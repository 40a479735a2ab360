"""Serve chains and prompts as async streaming HTTP endpoints (FastAPI + uvicorn).

    python -m n3_notebook serve chains.n3 --port 8000 --workers 2

or, in Python (mount it, or run it with any ASGI server):

    from n3_notebook.serve import Limits, create_app, load_chains
    app = create_app(load_chains("chains.n3"), token_file="tokens",
                     limits=Limits(max_body_bytes=256 << 10),
                     gateway_config="gateway.toml")   # OpenAI-compatible: /v1/chat/completions

Needs the `serve` extra (fastapi, prometheus-client; gunicorn for production). Nothing
else in n3_notebook imports this package."""

from .app import app_from_env, create_app
from .exposure import InsecureBindError
from .gateway_config import (
    GatewayConfig,
    GatewayConfigError,
    load_gateway_config,
    parse_gateway_config,
)
from .loader import ChainFileError, load_chains, parse_chain_file, parse_notebook
from .pacing import LoadPacer
from .settings import Limits
from .tokens import ApiToken, TokenFileError, load_token_file

__all__ = [
    "ApiToken",
    "ChainFileError",
    "GatewayConfig",
    "GatewayConfigError",
    "InsecureBindError",
    "Limits",
    "LoadPacer",
    "TokenFileError",
    "app_from_env",
    "create_app",
    "load_chains",
    "load_gateway_config",
    "load_token_file",
    "parse_chain_file",
    "parse_gateway_config",
    "parse_notebook",
]
