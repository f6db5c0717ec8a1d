"""``wrangler d1 export`` .sql files: the streaming statement splitter, loading into a cached working
copy (never modifying the export), and the load report."""
