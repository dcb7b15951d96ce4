"""How alembic runs the registry's migrations: on the connection
``manymodels.registry.migrations`` hands it (``config.attributes["connection"]``), inside that
connection's write transaction, which it neither begins nor commits. There is no alembic.ini:
manymodels runs these on open, and nothing else does."""

from alembic import context

from manymodels.registry import schema

context.configure(
    connection=context.config.attributes["connection"], target_metadata=schema.metadata
)
with context.begin_transaction():  # a no-op in the caller's transaction
    context.run_migrations()
