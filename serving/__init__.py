"""The manymodels router: a FastAPI service that scores rows with one model per partition.

``serving.app.create_app(settings)`` builds the app; ``serving.command.serve`` is the
``manymodels serve`` command; ``serving.local.running_server`` runs it in a background thread.
Nothing is imported here, so importing ``serving.command`` stays cheap.
"""
