"""Built-in task models; each imports its framework lazily."""
