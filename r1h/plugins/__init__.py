"""Built-in plugins: rewards and backends, registered through the same hooks as third-party plugins."""
