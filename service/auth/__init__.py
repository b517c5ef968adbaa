"""Accounts over HTTP: who a token is (``/v1/me``), managing accounts (``/v1/users``), and
the middleware that authenticates every request (GRADLAB_AUTH)."""
