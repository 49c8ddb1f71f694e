"""Every setting Celery 5.x knows, with its default and its old UPPERCASE name, and ours.

The table behind ``app.conf`` (``config.Settings``): ``DEFAULTS`` answers a setting nobody
set, ``NEW_TO_OLD``/``OLD_TO_NEW`` map Celery's two naming styles. Adding a setting is one
line here (``docket_*`` ones in ``DOCKET_DEFAULTS``); ``config.py`` documents ours.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

__all__ = ["DEFAULTS", "DOCKET_DEFAULTS", "NEW_TO_OLD", "OLD_TO_NEW"]

_LOG_FMT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
_TASK_LOG_FMT = (
    "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
)
_C, _CD, _CB = "CELERY_", "CELERYD_", "CELERYBEAT_"

# name -> (Celery's default, the old name Celery 5 still reads for it).
_CELERY_SETTINGS: dict[str, tuple[Any, str]] = {
    # top level
    "accept_content": (("json",), _C + "ACCEPT_CONTENT"),
    "result_accept_content": (None, "RESULT_ACCEPT_CONTENT"),
    "enable_utc": (True, "ENABLE_UTC"),
    "imports": ((), _C + "IMPORTS"),
    "include": ((), _C + "INCLUDE"),
    "timezone": (None, _C + "TIMEZONE"),
    # beat
    "beat_max_loop_interval": (0, _CB + "MAX_LOOP_INTERVAL"),
    "beat_schedule": ({}, _CB + "SCHEDULE"),
    "beat_scheduler": ("celery.beat:PersistentScheduler", _CB + "SCHEDULER"),
    "beat_schedule_filename": ("celerybeat-schedule", _CB + "SCHEDULE_FILENAME"),
    "beat_sync_every": (0, _CB + "SYNC_EVERY"),
    "beat_cron_starting_deadline": (None, _CB + "CRON_STARTING_DEADLINE"),
    "beat_enable_remote_control": (False, _CB + "ENABLE_REMOTE_CONTROL"),
    "beat_remote_control_max_tick_age": (None, _CB + "REMOTE_CONTROL_MAX_TICK_AGE"),
    # broker
    "broker_url": (None, "BROKER_URL"),
    "broker_read_url": (None, "BROKER_READ_URL"),
    "broker_write_url": (None, "BROKER_WRITE_URL"),
    "broker_transport": (None, "BROKER_TRANSPORT"),
    "broker_transport_options": ({}, "BROKER_TRANSPORT_OPTIONS"),
    "broker_connection_timeout": (4, "BROKER_CONNECTION_TIMEOUT"),
    "broker_connection_retry": (True, "BROKER_CONNECTION_RETRY"),
    "broker_connection_retry_on_startup": (None, "BROKER_CONNECTION_RETRY_ON_STARTUP"),
    "broker_connection_max_retries": (100, "BROKER_CONNECTION_MAX_RETRIES"),
    "broker_channel_error_retry": (False, "BROKER_CHANNEL_ERROR_RETRY"),
    "broker_failover_strategy": (None, "BROKER_FAILOVER_STRATEGY"),
    "broker_heartbeat": (120, "BROKER_HEARTBEAT"),
    "broker_heartbeat_checkrate": (3.0, "BROKER_HEARTBEAT_CHECKRATE"),
    "broker_login_method": (None, "BROKER_LOGIN_METHOD"),
    "broker_native_delayed_delivery_queue_type": (
        "quorum",
        "BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE",
    ),
    "broker_pool_limit": (10, "BROKER_POOL_LIMIT"),
    "broker_pool_acquire_timeout": (None, "BROKER_POOL_ACQUIRE_TIMEOUT"),
    "broker_use_ssl": (False, "BROKER_USE_SSL"),
    "broker_host": (None, "BROKER_HOST"),
    "broker_port": (None, "BROKER_PORT"),
    "broker_user": (None, "BROKER_USER"),
    "broker_password": (None, "BROKER_PASSWORD"),
    "broker_vhost": (None, "BROKER_VHOST"),
    # remote control
    "control_queue_ttl": (300.0, "CONTROL_QUEUE_TTL"),
    "control_queue_expires": (10.0, "CONTROL_QUEUE_EXPIRES"),
    "control_exchange": ("celery", "CONTROL_EXCHANGE"),
    "control_queue_durable": (False, "CONTROL_QUEUE_DURABLE"),
    "control_queue_exclusive": (True, "CONTROL_QUEUE_EXCLUSIVE"),
    # events
    "event_exchange": ("celeryev", _C + "EVENT_EXCHANGE"),
    "event_queue_expires": (60.0, _C + "EVENT_QUEUE_EXPIRES"),
    "event_queue_ttl": (5.0, _C + "EVENT_QUEUE_TTL"),
    "event_queue_prefix": ("celeryev", _C + "EVENT_QUEUE_PREFIX"),
    "event_serializer": ("json", _C + "EVENT_SERIALIZER"),
    "event_queue_durable": (False, _C + "EVENT_QUEUE_DURABLE"),
    "event_queue_exclusive": (True, _C + "EVENT_QUEUE_EXCLUSIVE"),
    # redis result backend
    "redis_backend_use_ssl": (None, _C + "REDIS_BACKEND_USE_SSL"),
    "redis_db": (None, _C + "REDIS_DB"),
    "redis_host": (None, _C + "REDIS_HOST"),
    "redis_max_connections": (None, _C + "REDIS_MAX_CONNECTIONS"),
    "redis_username": (None, _C + "REDIS_USERNAME"),
    "redis_password": (None, _C + "REDIS_PASSWORD"),
    "redis_port": (None, _C + "REDIS_PORT"),
    "redis_retry_on_timeout": (False, _C + "REDIS_RETRY_ON_TIMEOUT"),
    "redis_socket_connect_timeout": (None, _C + "REDIS_SOCKET_CONNECT_TIMEOUT"),
    "redis_socket_keepalive": (False, _C + "REDIS_SOCKET_KEEPALIVE"),
    "redis_socket_timeout": (120.0, _C + "REDIS_SOCKET_TIMEOUT"),
    # results
    "result_backend": (None, _C + "RESULT_BACKEND"),
    "result_backend_always_retry": (False, _C + "RESULT_BACKEND_ALWAYS_RETRY"),
    "result_backend_max_retries": (float("inf"), _C + "RESULT_BACKEND_MAX_RETRIES"),
    "result_backend_base_sleep_between_retries_ms": (
        10,
        _C + "RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS",
    ),
    "result_backend_max_sleep_between_retries_ms": (
        10000,
        _C + "RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS",
    ),
    "result_backend_transport_options": ({}, _C + "RESULT_BACKEND_TRANSPORT_OPTIONS"),
    "result_cache_max": (-1, _C + "MAX_CACHED_RESULTS"),
    "result_chord_expires": (None, _C + "RESULT_CHORD_EXPIRES"),
    "result_chord_join_timeout": (3.0, _C + "RESULT_CHORD_JOIN_TIMEOUT"),
    "result_chord_retry_interval": (1.0, _C + "RESULT_CHORD_RETRY_INTERVAL"),
    "result_compression": (None, _C + "RESULT_COMPRESSION"),
    "result_exchange": ("celeryresults", _C + "RESULT_EXCHANGE"),
    "result_exchange_type": ("direct", _C + "RESULT_EXCHANGE_TYPE"),
    "result_expires": (timedelta(days=1), _C + "TASK_RESULT_EXPIRES"),
    "result_extended": (False, _C + "RESULT_EXTENDED"),
    "result_failure_expires": (None, _C + "RESULT_FAILURE_EXPIRES"),
    "result_persistent": (None, _C + "RESULT_PERSISTENT"),
    "result_serializer": ("json", _C + "RESULT_SERIALIZER"),
    # message signing
    "security_certificate": (None, _C + "SECURITY_CERTIFICATE"),
    "security_cert_store": (None, _C + "SECURITY_CERT_STORE"),
    "security_key": (None, _C + "SECURITY_KEY"),
    "security_key_password": (None, _C + "SECURITY_KEY_PASSWORD"),
    "security_digest": ("sha256", _C + "SECURITY_DIGEST"),
    # tasks
    "task_acks_late": (False, _C + "ACKS_LATE"),
    "task_acks_on_failure": (None, _C + "ACKS_ON_FAILURE"),
    "task_acks_on_timeout": (None, _C + "ACKS_ON_TIMEOUT"),
    "task_acks_on_failure_or_timeout": (True, _C + "ACKS_ON_FAILURE_OR_TIMEOUT"),
    "task_allow_error_cb_on_chord_header": (False, _C + "ALLOW_ERROR_CB_ON_CHORD_HEADER"),
    "task_always_eager": (False, _C + "ALWAYS_EAGER"),
    "task_annotations": (None, _C + "ANNOTATIONS"),
    "task_compression": (None, _C + "MESSAGE_COMPRESSION"),
    "task_create_missing_queues": (True, _C + "CREATE_MISSING_QUEUES"),
    "task_create_missing_queue_type": ("classic", _C + "CREATE_MISSING_QUEUE_TYPE"),
    "task_create_missing_queue_exchange_type": (
        None,
        _C + "CREATE_MISSING_QUEUE_EXCHANGE_TYPE",
    ),
    "task_default_delivery_mode": (2, _C + "DEFAULT_DELIVERY_MODE"),
    "task_default_exchange": (None, _C + "DEFAULT_EXCHANGE"),
    "task_default_exchange_type": ("direct", _C + "DEFAULT_EXCHANGE_TYPE"),
    "task_default_priority": (None, _C + "DEFAULT_PRIORITY"),
    "task_default_queue": ("celery", _C + "DEFAULT_QUEUE"),
    "task_default_queue_type": ("classic", _C + "DEFAULT_QUEUE_TYPE"),
    "task_default_rate_limit": (None, _C + "DEFAULT_RATE_LIMIT"),
    "task_default_routing_key": (None, _C + "DEFAULT_ROUTING_KEY"),
    "task_eager_propagates": (False, _C + "EAGER_PROPAGATES_EXCEPTIONS"),
    "task_ignore_result": (False, _C + "IGNORE_RESULT"),
    "task_inherit_parent_priority": (False, _C + "INHERIT_PARENT_PRIORITY"),
    "task_protocol": (2, _C + "TASK_PROTOCOL"),
    "task_publish_retry": (True, _C + "TASK_PUBLISH_RETRY"),
    "task_publish_retry_policy": (
        {"max_retries": 3, "interval_start": 0, "interval_max": 1, "interval_step": 0.2},
        _C + "TASK_PUBLISH_RETRY_POLICY",
    ),
    "task_queues": (None, _C + "QUEUES"),
    "task_queue_max_priority": (None, _C + "QUEUE_MAX_PRIORITY"),
    "task_reject_on_worker_lost": (None, _C + "REJECT_ON_WORKER_LOST"),
    "task_remote_tracebacks": (False, _C + "REMOTE_TRACEBACKS"),
    "task_repr_maxlevels": (3, _C + "REPR_MAXLEVELS"),
    "task_retry_on_worker_lost": (False, _C + "RETRY_ON_WORKER_LOST"),
    "task_routes": (None, _C + "ROUTES"),
    "task_send_sent_event": (False, _C + "SEND_TASK_SENT_EVENT"),
    "task_serializer": ("json", _C + "TASK_SERIALIZER"),
    "task_soft_time_limit": (None, _CD + "TASK_SOFT_TIME_LIMIT"),
    "task_store_eager_result": (False, _C + "STORE_EAGER_RESULT"),
    "task_store_errors_even_if_ignored": (False, _C + "STORE_ERRORS_EVEN_IF_IGNORED"),
    "task_time_limit": (None, _CD + "TASK_TIME_LIMIT"),
    "task_track_started": (False, _C + "TRACK_STARTED"),
    # workers
    "worker_agent": (None, _CD + "AGENT"),
    "worker_autoscaler": ("celery.worker.autoscale:Autoscaler", _CD + "AUTOSCALER"),
    "worker_cancel_long_running_tasks_on_connection_loss": (
        False,
        _CD + "CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS",
    ),
    "worker_concurrency": (None, _CD + "CONCURRENCY"),
    "worker_consumer": ("celery.worker.consumer:Consumer", _CD + "CONSUMER"),
    "worker_deduplicate_successful_tasks": (False, _CD + "DEDUPLICATE_SUCCESSFUL_TASKS"),
    "worker_detect_quorum_queues": (True, _CD + "DETECT_QUORUM_QUEUES"),
    "worker_direct": (False, _C + "WORKER_DIRECT"),
    "worker_disable_prefetch": (False, _CD + "DISABLE_PREFETCH"),
    "worker_disable_rate_limits": (False, _C + "DISABLE_RATE_LIMITS"),
    "worker_enable_prefetch_count_reduction": (True, _CD + "ENABLE_PREFETCH_COUNT_REDUCTION"),
    "worker_enable_remote_control": (True, _C + "ENABLE_REMOTE_CONTROL"),
    "worker_enable_soft_shutdown_on_idle": (False, _CD + "ENABLE_SOFT_SHUTDOWN_ON_IDLE"),
    "worker_eta_task_limit": (None, _CD + "ETA_TASK_LIMIT"),
    "worker_hijack_root_logger": (True, _CD + "HIJACK_ROOT_LOGGER"),
    "worker_log_color": (None, _CD + "LOG_COLOR"),
    "worker_log_datefmt": (None, _CD + "LOG_DATEFMT"),
    "worker_log_format": (_LOG_FMT, _CD + "LOG_FORMAT"),
    "worker_lost_wait": (10.0, _CD + "WORKER_LOST_WAIT"),
    "worker_max_memory_per_child": (None, _CD + "MAX_MEMORY_PER_CHILD"),
    "worker_max_tasks_per_child": (None, _CD + "MAX_TASKS_PER_CHILD"),
    "worker_pool": ("prefork", _CD + "POOL"),
    "worker_pool_putlocks": (True, _CD + "POOL_PUTLOCKS"),
    "worker_pool_restarts": (False, _CD + "POOL_RESTARTS"),
    "worker_pool_start_method": ("fork", _CD + "POOL_START_METHOD"),
    "worker_prefetch_multiplier": (4, _CD + "PREFETCH_MULTIPLIER"),
    "worker_proc_alive_timeout": (4.0, _CD + "PROC_ALIVE_TIMEOUT"),
    "worker_redirect_stdouts": (True, _C + "REDIRECT_STDOUTS"),
    "worker_redirect_stdouts_level": ("WARNING", _C + "REDIRECT_STDOUTS_LEVEL"),
    "worker_send_task_events": (False, _C + "SEND_EVENTS"),
    "worker_soft_shutdown_timeout": (0.0, _CD + "SOFT_SHUTDOWN_TIMEOUT"),
    "worker_state_db": (None, _CD + "STATE_DB"),
    "worker_task_log_datefmt": (None, _CD + "TASK_LOG_DATEFMT"),
    "worker_task_log_format": (_TASK_LOG_FMT, _CD + "TASK_LOG_FORMAT"),
    "worker_timer": (None, _CD + "TIMER"),
    "worker_timer_precision": (1.0, _CD + "TIMER_PRECISION"),
}

#: Settings that exist only here (no old names).
DOCKET_DEFAULTS: dict[str, Any] = {
    "docket_max_payload_bytes": 10 * 1024 * 1024,
    "docket_lease_seconds": 30,
    "docket_max_deliveries": 5,
    "docket_key_prefix": "cd",
    "docket_celery_intake": False,
    "docket_celery_unacked_age": None,
    "docket_revoke_expires": 10800,
    "docket_revokes_max": 50_000,
    "docket_enqueue_wait_replicas": 0,
    "docket_enqueue_wait_timeout": 1.0,
    "docket_envelope_version": 2,
    "docket_queue_shards": {},
    "task_default_retry_delay": 180,
}

DEFAULTS: dict[str, Any] = {name: d for name, (d, _) in _CELERY_SETTINGS.items()}
DEFAULTS.update(DOCKET_DEFAULTS)
NEW_TO_OLD: dict[str, str] = {name: old for name, (_, old) in _CELERY_SETTINGS.items()}
OLD_TO_NEW: dict[str, str] = {old: name for name, old in NEW_TO_OLD.items()}
