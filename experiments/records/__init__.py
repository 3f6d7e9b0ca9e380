"""Result records: the builder, the store, the environment manifest and the field readers."""
