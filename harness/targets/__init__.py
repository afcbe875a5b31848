"""Targets: the implementations under test, their declarations and the runners that reach them.

``spec`` (target.yaml schema) and ``adhoc`` (command-line declarations) say what a target is;
``availability`` whether it can run here; ``selection`` and ``session`` which targets a run opens and
how each is started, restarted and given up on; ``runners`` and ``docker`` do the starting, stopping
and logging; ``policies`` says what a case needs from the declaration. docs/architecture.md,
"Targets", has the why.
"""
