"""The one way mailops sends: create log rows, deliver, record outcomes.

The admin action, the ``sendtestmail`` command and the self-service view all
call :func:`send_test_mail` (or :func:`send_test_mail_to_users` for a user
queryset); none of them talks to a mail backend directly.

Small batches are delivered in the caller's process, so the caller reports
each outcome. A batch above ``MAILOPS["ASYNC_THRESHOLD"]`` (or any batch
with ``queue=True``) is only written as ``queued`` rows and handed to the
task backend, and the call returns at once, provided that backend runs
tasks elsewhere: Django's ``ImmediateBackend`` runs them inside
``enqueue()``, so with it every batch is delivered inline and
:func:`plan_delivery` tells callers up front that a big one will block.
"""

from mailops.exceptions import UnknownMailer
from mailops.mailers.info import resolve_mailer
from mailops.sending.batches import plan_delivery, send_test_mail, send_test_mail_to_users
from mailops.sending.resend import ResendOutcome, ResendPlan, plan_resend, resend_logs
from mailops.sending.self_service import send_self_service_mail
from mailops.sending.summary import WORKER_UNREACHABLE, DeliveryPlan, SendSummary

__all__ = [
    "WORKER_UNREACHABLE",
    "DeliveryPlan",
    "ResendOutcome",
    "ResendPlan",
    "SendSummary",
    "UnknownMailer",
    "plan_delivery",
    "plan_resend",
    "resend_logs",
    "resolve_mailer",
    "send_self_service_mail",
    "send_test_mail",
    "send_test_mail_to_users",
]
