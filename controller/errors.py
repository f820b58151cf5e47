"""The one error a user can cause and fix (bad config, bad argument, missing
port): the CLI prints its message on one line and exits with status 2, never a
traceback. ConfigError (file:line:key) is one of them."""


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""
