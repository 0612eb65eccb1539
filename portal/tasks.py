from celery import shared_task
from django.utils import timezone

from portal import audit


@shared_task(time_limit=120, soft_time_limit=100)
def seal_audit_task():
    """Seal the audit events committed since the last run into the hash chain (beat runs this
    every AUDIT_SEAL_INTERVAL_SECONDS); returns how many were sealed.

    Beat alone, no nudge from `audit.record()`: a nudge would put a broker round trip (or, to
    debounce it, a Redis `SET NX`) on the commit path of every audited request - the path this
    design takes the chain off - and with the embedded filesystem broker a file per message.
    Sealing sooner buys no tamper-evidence: until it is sealed, an event is already protected
    by the trigger, which refuses to change its content or delete it. So an event waits at most
    one interval (plus the run itself) while a worker and beat are up, and a backlog left by a
    stopped worker is sealed by the first run after it comes back, oldest first.
    """
    return audit.seal_all()


@shared_task(time_limit=120, soft_time_limit=100)
def checkpoint_audit_task():
    """Seal what has committed, then append a signed checkpoint of the chain's head to
    AUDIT_CHECKPOINT_DIR (beat runs this every 5 minutes); returns the head's seq, None while
    nothing is sealed. Fails loudly (CheckpointError, logged by the worker) rather than sign a
    chain that went back behind the last checkpoint."""
    audit.seal_all()
    checkpoint = audit.write_checkpoint(now=timezone.now())
    return checkpoint and checkpoint.seq
