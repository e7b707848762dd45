"""The one line of an error a user is shown."""


def first_line(err):
    """An error's message cut to its first line (TensorFlow's and Ray's run to pages), or
    its type's name where it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
