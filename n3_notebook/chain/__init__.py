"""Prompt chains: the chain model, the %%chain parser and the async DAG engine (no IPython)."""
