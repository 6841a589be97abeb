"""The online colorization API: a Ray Serve application (FastAPI ingress + batched model deployment).

Entry points: :func:`services.build.build_app` (named by ``deploy/serve.yaml``) and ``colorize serve``.
Importing this package imports nothing heavy.
"""
