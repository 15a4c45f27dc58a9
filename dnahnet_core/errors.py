"""The one exception type for problems a user can cause (bad input, bad option).

The CLI prints its message as a single line and exits non-zero, with no traceback.
Messages say what went wrong and where: file, record, line or position.
"""


class DnahnetError(Exception):
    """A user-facing error; its message is shown as-is on one line."""
