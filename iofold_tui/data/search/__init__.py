"""Full-text search over traces: a sidecar FTS5 index, a query language, an equivalent scan, facets.

Headless (never imports textual or rich). The index lives in the user cache dir, keyed by the source
(``paths.path_key``); nothing is ever written to the user's database.

- ``extract``: the searchable text of one trace, per field (the index and the scan share it).
- ``query``: the query language parsed and validated here, compiled to an FTS5 MATCH string (never raw
  user text) and to a LIKE prefilter for the scan.
- ``index``: the sidecar, searching it, falling back to the scan; ``index_sync``: building and
  incrementally updating it.
- ``scan``: the same result set without the index (chunked, cancellable, with progress), and regex mode.
- ``facets``: frequency views; ``sort_orders``: sort orders with their cost, the precomputed "most
  contradicted" order; ``order``: the trace list paged in those orders.
"""
