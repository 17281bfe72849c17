-- The platform's Result table as its tasks migration makes it (Django, the id
-- sequence renamed for Celery), with the children column a platform on
-- current Celery has added; and Celery's group table, for chords.
CREATE SEQUENCE task_id_sequence;
CREATE TABLE celery_taskmeta (
    id integer NOT NULL DEFAULT nextval('task_id_sequence') PRIMARY KEY,
    status varchar(50) NOT NULL,
    result bytea NULL,
    date_done timestamp with time zone NULL,
    traceback text NULL,
    task_id varchar(155) NULL UNIQUE
);
ALTER SEQUENCE task_id_sequence OWNED BY celery_taskmeta.id;
CREATE INDEX celery_taskmeta_task_id_9558b198_like
    ON celery_taskmeta (task_id varchar_pattern_ops);
ALTER TABLE celery_taskmeta ADD COLUMN children bytea NULL;

CREATE SEQUENCE taskset_id_sequence;
CREATE TABLE celery_tasksetmeta (
    id integer NOT NULL DEFAULT nextval('taskset_id_sequence') PRIMARY KEY,
    taskset_id varchar(155) UNIQUE,
    result bytea,
    date_done timestamp without time zone
);
