"""What every layer stands on: errors, ids, the check protocol, task messages
and the queue topology, processes, threads, imports and signals."""
