"""alignkit: LLM alignment techniques on Hugging Face models."""
__version__ = "0.1.0"
