from celery import Celery

app = Celery("broken_task_module")
app.conf.imports = ("broken_task_module_tasks",)
