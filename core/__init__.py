"""The shared training core (torch): methods and heads, the device rule, the training recipe
and the one autograd loop. ``simulate`` and ``realdata`` build on it; ``analysis`` is below."""
