"""The exercises: one module per chapter (``ch00`` … ``ch12``), each holding that chapter's checkers.

A notebook imports its chapter's module (``from course_lib.exercises import ch03 as ex``) and ends an
exercise with ``ex.check_rank_for_mac_budget(my_rank_for_mac_budget)``. The chapter modules keep the idea,
its tested version and its explorer; this package keeps what judges a learner's answer, so that no
public function of the library is an exercise's answer key.

How a checker here is written (``checks.checker`` does the rest):

- it compares the submission with an **independent** computation — PyTorch's own op, brute force,
  autograd, a published number — never with a function it imports to copy from;
- ``answers=`` names the library's own versions of what the exercise asks the learner to write: a
  submission that calls one of them is refused, and the message says so;
- it rejects the stub and a **plausible wrong answer** (the mistake a learner would make), and
  ``tests/test_exercises_chNN.py`` proves both for every exercise, together with the library call;
  ``tests/test_exercises_contract.py`` keeps the rules for the whole course (no checker and no public
  ``reference_*`` answer in a chapter module, three exercises per chapter, one solution per checker).

Exercise kinds (every chapter has at least three, one of them *build it and measure it*): **derive**
(a formula the notebook has not shown), **build** (code a mechanism and measure it), **predict then
measure** (commit to a number, then the notebook measures), **decide** (read measurements, give a
verdict with its reason).
"""

__all__: list[str] = []
