"""What the approvals app tells the apps above it (the run that waits reacts to these).

Both are sent inside the transaction that records the change, so a receiver's writes
commit or roll back with it.
"""

from django.dispatch import Signal

approval_decided = Signal()  # request=ApprovalRequest (approved or rejected)
approval_expired = Signal()  # request=ApprovalRequest (its expiry action applies)
