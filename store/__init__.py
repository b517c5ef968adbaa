"""What the API and the worker share: database engines and sessions, tables, codecs, the
chunk format, the job spec, the job lifecycle (its statuses and every transition), the queue
protocol and settings. Above the engine, below both processes; it imports neither."""
