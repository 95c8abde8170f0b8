"""Domain logic: validation, tenant rules and the version lifecycle, on top of the store.

Functions here are synchronous (peewee) and run on the API layer's database threads. They raise
`errors.DomainError`; the API layer maps those to gRPC status in one place.
"""
