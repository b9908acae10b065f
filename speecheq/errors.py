"""The one exception type for errors a user can cause (bad paths, malformed lines, bad labels)."""


class SpeechEQError(Exception):
    """A user-facing error: its message is one sentence naming the file and line or utterance.

    The command-line front prints the message and exits with status 1, without a traceback.
    """
