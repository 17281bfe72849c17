"""A package whose celery.py fails to import: the short --cadasta-app form names it."""
