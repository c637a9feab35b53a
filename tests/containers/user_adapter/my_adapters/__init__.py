"""A user's adapters, as a package of their own."""
