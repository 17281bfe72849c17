"""The read-only audit of a real deployment (``--cadasta-audit``): what it will
contact (``target``), the guard that refuses every call that would change it
(``guard``), its SQS queues (``queues``), each worker's role on its result
database (``database``), and what the checks of ``checks/deployment.py``
stand on (``state``)."""
