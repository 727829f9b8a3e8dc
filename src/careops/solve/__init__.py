"""A stuck learner's way on: see one exercise's solution, put it in place, and have it recorded.

``solve("NAME")`` in the answer cell (:mod:`.notebook`), or ``careops solve NAME``
in a terminal (``careops.apps.solve``), shows the solution of that answer cell
after a confirmation and puts it into the cell with a mark on its first line
(:mod:`.marks`). Grading reads the mark: that exercise scores 0, every other
one is graded as usual, and the next exercises work with the solution. Each
solution shown is also written to a journal (:mod:`.journal`).

Solutions come only from a trusted place (:mod:`.sources`): the hub's solve
service in workshop mode (:mod:`.service`), or the instructor's full checkout.
A learner's copy of the course and the learner image hold no solution; there
``solve`` says how to ask the instructor.
"""
from careops.solve.journal import SolveEntry, SolveJournal, workspace_journal
from careops.solve.marks import MARK, mark, solved_answers, zeroed_tests
from careops.solve.notebook import SolveCard, solve
from careops.solve.sources import CheckoutSolutions, HubSolutions, Solution, trusted_source

__all__ = ["MARK", "CheckoutSolutions", "HubSolutions", "Solution", "SolveCard", "SolveEntry", "SolveJournal",
           "mark", "solve", "solved_answers", "trusted_source", "workspace_journal", "zeroed_tests"]
