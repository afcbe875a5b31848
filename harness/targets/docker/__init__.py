"""Targets in containers: build the target's image, run it on the host network, never leave it behind.

Why containers: a target in Go, Node or C needs a toolchain the harness machine need not have; its
Dockerfile brings it. The contract (docs/architecture.md, "Container targets") is short: the build
context is the target folder plus ``wsconform-ca.pem`` (the host's CA bundle, for package managers
behind a TLS-intercepting proxy), ``BASE_IMAGE`` is plain Debian bookworm, and ``argv`` in
``target.yaml`` is the full container command with the usual placeholders.

* ``daemon``: the Docker client per thread, whether the daemon (and a base image) is usable here.
* ``images``: content-addressed tags; an unchanged target is never rebuilt; one build per tag
  across xdist workers (a file lock).
* ``containers``: every container labelled with the harness's pid; removed at exit and on
  SIGTERM/SIGHUP; containers of dead harnesses swept at the next run.
* ``runners``: the server runner and the client launcher (one container per case).

The Docker SDK is imported lazily: a run that uses no container pays nothing for it.
"""
