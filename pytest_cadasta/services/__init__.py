"""What a run starts and holds: PostgreSQL (its template and watchdog), moto's
SQS server, the result database and the in-process worker."""
