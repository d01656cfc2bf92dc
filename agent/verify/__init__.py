"""Read-back verification: full, or sampled per NIST SP 800-88 Rev. 1 §4.7.

Callable on their own (after a firmware purge, to read back zeros or check that canaries
are gone) as well as at the end of an overwrite:

    verify_full(path_or_device, Content.zeros())
    verify_sample(path_or_device, Absent([canary_bytes]), seed=...)
"""

from agent.verify.expect import Absent, Content, Expectation
from agent.verify.full import verify_full
from agent.verify.sample import new_seed, sample_plan, verify_sample

__all__ = ["Absent", "Content", "Expectation", "new_seed", "sample_plan", "verify_full", "verify_sample"]
