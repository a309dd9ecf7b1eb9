"""Async image jobs: ``POST /v1/images/jobs`` answers 202 at once, the work runs in the gateway's
own processes, and a signed webhook says when it is done.

=====================  ===========================================================================
``record``             a job as stored: what was asked, who owns it, the credits held for it
``book``               job records in the durable state store; the first final state wins
``holds``              which of the job's holds a charge can land on now, from the ledger alone
``uncharge``           closes the current hold of a job that ended without its images
``queue``              the queue interface and the in-process queue (memory and SQLite state)
``redis_queue``        Redis Streams with a consumer group (Redis state): survives restarts
``service``            submit (hold the credits, enqueue), look up and cancel, for one key
``runner``             the consumer: runs jobs through the gateway, keeps them alive, cancels them
``signature``          the HMAC-SHA256 webhook signature, signing and verifying
``webhook_secret``     each key's webhook secret, derived from one root secret
``webhook``            delivery: outbound policy, retries with backoff, metrics
=====================  ===========================================================================

Money follows the synchronous path: credits are held at submit through the same ledger call
(a key over budget gets the same 402), the hold's id is the job's, so a job run twice (lost
mid-run, then retried) settles one hold once; a cancel closes the job's current hold before it
answers (a charge that landed on it taken back), and a run that settles after it finds the hold
closed and charges nothing.
"""
