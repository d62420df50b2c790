"""Orders: the common order model and the one pipeline every order source goes through."""
