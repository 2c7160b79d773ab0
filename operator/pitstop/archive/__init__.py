"""The archive: a record of every revision that stopped serving, kept after its
Deployment (and its ModelDeployment) are gone.

`records` decides what is kept (pure); `store` reads and writes it in the API.
"""
