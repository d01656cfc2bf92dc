"""Sanitization: the overwrite engine (``overwrite``, ``methods``, ``blockio``, ``journal``,
``progress``) and the firmware purge paths with the policy that chooses between them."""
