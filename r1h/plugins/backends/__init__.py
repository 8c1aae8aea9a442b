"""Built-in inference backends."""
