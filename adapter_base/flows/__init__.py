"""The wrapper functions, one module each: the control flow around the user's hooks."""
