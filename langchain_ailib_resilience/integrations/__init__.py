"""Adapters to LangChain and LiteLLM; thin layers over the executor."""
