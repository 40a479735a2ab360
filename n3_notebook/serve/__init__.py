"""Serve chains and prompts as async streaming HTTP endpoints (FastAPI + uvicorn).

    python -m n3_notebook serve chains.n3 --port 8000 --workers 2

or, in Python (mount it, or run it with any ASGI server):

    from n3_notebook.serve import create_app, load_chains
    app = create_app(load_chains("chains.n3"))

Needs the `serve` extra (fastapi, prometheus-client; gunicorn for production). Nothing
else in n3_notebook imports this package."""

from .app import app_from_env, create_app
from .loader import ChainFileError, load_chains, parse_chain_file, parse_notebook
from .pacing import LoadPacer

__all__ = [
    "ChainFileError",
    "LoadPacer",
    "app_from_env",
    "create_app",
    "load_chains",
    "parse_chain_file",
    "parse_notebook",
]
