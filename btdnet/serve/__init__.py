"""``btdnet-serve``: the HTTP API (FastAPI), the web page and the shared inference queue.

Needs the ``serve`` extra (``pip install btdnet[serve]``). ``create_app(service)`` builds the
application; :class:`~btdnet.serve.service.InferenceService` owns the one shared model.
"""
